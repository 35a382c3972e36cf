import base64
import json
import re

import pytest

from kit.errors import UsageError
from kit.reporting.html import html_report
from kit.reporting.plots import Bar, UtilSeries, bar_chart_png, heatmap_png

HEADERS = ("image", "profile", "images/sec", "speedup")
ROWS = (
    ("stock", "default", "100.00", "-"),
    ("intel", "tuned", "614.00", "6.14x"),
    ("<script>alert(1)</script>", "a & b", '"quoted"', "x"),
)
PROVENANCE = {"host": {"cpu": "Xeon <8360Y>", "cpus": 72}, "images": ["stock", "intel"]}


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    return {
        "images/sec per cell": bar_chart_png([Bar("stock:default", 100.0, 95.0, 104.0)], "t"),
        "cpu busy <run 1>": heatmap_png(UtilSeries("u", (0, 1), (0.0,), ((10.0,), (90.0,)), (0,))),
    }


@pytest.fixture(scope="module")
def page(images) -> str:
    return html_report(
        "TF on <this> host",
        HEADERS,
        ROWS,
        images,
        {"Provenance": PROVENANCE, "Verify": "all 3 runs ok\n<pinned> as asked"},
    )


def test_page_is_a_whole_document(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in page
    assert "<title>TF on &lt;this&gt; host</title>" in page
    assert "<h1>TF on &lt;this&gt; host</h1>" in page


def test_table_cells_are_escaped(page):
    for header in HEADERS:
        assert f">{header}</th>" in page
    assert "<td>614.00</td>" in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    assert "<td>a &amp; b</td>" in page
    assert "<td>&quot;quoted&quot;</td>" in page
    assert "<script" not in page
    assert page.count("<tr>") == len(ROWS) + 1


def test_images_are_embedded_and_decode_to_the_same_png(page, images):
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(u) for u in uris] == list(images.values())
    assert "<figcaption>images/sec per cell</figcaption>" in page
    assert "<figcaption>cpu busy &lt;run 1&gt;</figcaption>" in page


def test_sections_are_pretty_printed_json_or_text(page):
    blocks = re.findall(r"<h2>([^<]*)</h2>\n<pre>(.*?)</pre>", page, re.DOTALL)
    assert [name for name, _ in blocks] == ["Provenance", "Verify"]
    provenance = blocks[0][1]
    assert "&lt;8360Y&gt;" in provenance
    unescaped = provenance.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    assert json.loads(unescaped) == PROVENANCE
    assert unescaped == json.dumps(PROVENANCE, indent=2)
    assert blocks[1][1] == "all 3 runs ok\n&lt;pinned&gt; as asked"


def test_section_that_is_a_list_or_holds_other_types():
    page = html_report("t", ("a",), (), {}, {"Steps": [1, "two"], "When": {"at": object}})
    assert "<pre>[\n  1,\n  &quot;two&quot;\n]</pre>" in page
    assert "&lt;class &#x27;object&#x27;&gt;" in page  # rendered with str(), not refused


def test_page_fetches_nothing(page):
    # base64 may hold "//" itself, so look outside the data URIs.
    outside = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", page)
    assert not re.search(r"https?:", outside, re.IGNORECASE)
    assert "//" not in outside  # no protocol-relative URLs either
    assert re.findall(r'src="([^"]{0,22})', page) == ["data:image/png;base64,"] * 2
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page


def test_empty_report_still_renders():
    page = html_report("empty", ("a", "b"), (), {}, {})
    assert "<thead><tr><th" in page
    assert "<figure>" not in page


def test_refuses_row_of_the_wrong_width():
    with pytest.raises(UsageError, match="row 2 has 1 cells for 2 headers"):
        html_report("t", ("a", "b"), (("1", "2"), ("3",)), {}, {})


def test_refuses_an_image_that_is_not_png():
    with pytest.raises(UsageError, match="not a PNG"):
        html_report("t", ("a",), (), {"chart": b"GIF89a..."}, {})
