"""The results site (`kit site`) as a person sees it: Debian's chromium, driven by Playwright,
opens every page of a site built from real stored sessions (a step made by a rebuilt image).
Every page loads without console errors, every link resolves, the plots are drawn, the index
filters and sorts, and the cell with a change shows it with what changed."""

from __future__ import annotations

import io
import math
import os
import random
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.conftest import invoke_with
from tests.fakes import FakeEngine

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Rebuilt(FakeEngine):
    def image_id(self, reference: str) -> str:
        return "sha256:" + "c" * 64


def _rates(session: int, rebuilt: bool):
    """stock 10 (8 once rebuilt), intel 9 images/sec, with 2% noise; 15% for intel in the first
    session, so its report has a long status."""
    rng = random.Random(session)
    levels = {"stock:default": 8.0 if rebuilt else 10.0, "intel:default": 9.0}

    def rate(spec):
        noisy = session == 0 and spec.key == "intel:default"
        return levels[spec.key] * math.exp(rng.gauss(0, 0.15 if noisy else 0.02))

    return rate


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Ten sessions of stock and intel; stock's image rebuilt and 20% slower from the sixth."""
    root = tmp_path_factory.mktemp("site")
    results = root / "results"
    for i in range(10):
        rebuilt = i >= 5
        engine = (_Rebuilt if rebuilt else FakeEngine)(_rates(i, rebuilt))
        code, text = invoke_with(engine, "compare", "stock", "intel", "-p", "default",
                                 "--repeats", "3", "--results", str(results))  # fmt: skip
        assert code == 0, text
    code, text = invoke_with(None, "site", "-o", str(root / "site"), "--results", str(results),
                             "--price", "fake-host=0.75", "--bundles")  # fmt: skip
    assert code == 0 and "2 series, 10 sessions, 14 pages" in text, text
    return root / "site"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("KIT_REQUIRE_DOCKER") or os.environ.get("CI"):
            pytest.fail(
                "chromium is missing: make test-hosts installs it (apt-get install chromium)"
            )
        pytest.skip("no chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    opened = context.new_page()
    opened.errors = []  # type: ignore[attr-defined]
    opened.on("console", lambda m: m.type == "error" and opened.errors.append(m.text))
    opened.on("pageerror", lambda e: opened.errors.append(str(e)))
    yield opened
    context.close()


def _local(href: str, base: Path) -> Path:
    url = urlparse(href)
    return Path(unquote(url.path)) if url.scheme == "file" else (base.parent / href).resolve()


def test_every_page_loads_clean_and_every_link_resolves(site, page):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 14
    for path in pages:
        page.goto(path.as_uri())
        assert page.errors == [], (path, page.errors)
        # the page never runs off the right edge: a wide table scrolls inside itself
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path.name, overflow)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            assert _local(href, path).is_file(), (path.name, href)
        srcs = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
        for src in srcs:
            assert _local(src, path).is_file(), (path.name, src)


def test_every_plot_is_drawn_and_not_blank(site, page):
    from PIL import Image

    for path in sorted((site / "cells").glob("*.html")):
        page.goto(path.as_uri())
        plot = page.locator("img.plot")
        assert plot.evaluate("img => img.complete && img.naturalWidth") == 1000
        shot = Image.open(io.BytesIO(plot.screenshot())).convert("RGB")
        colours = shot.getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 50, path.name  # a drawn chart, not a blank


def test_the_index_filters_and_sorts(site, page):
    page.goto((site / "index.html").as_uri())
    rows = page.locator("#cells tbody tr")
    assert rows.count() == 2 and page.locator("#count").inner_text() == "2"
    page.fill("#filter", "intel")
    assert page.locator("#count").inner_text() == "1"
    visible = [r for r in rows.all() if r.is_visible()]
    assert len(visible) == 1 and "intel:default" in visible[0].inner_text()
    page.fill("#filter", "")
    header = page.locator("#cells th", has_text="img/s [95%]")
    header.click()
    first = [r.locator("td").nth(2).inner_text() for r in rows.all()]
    assert first == ["stock:default", "intel:default"], first  # 8.0 before 9.0
    header.click()
    again = [r.locator("td").nth(2).inner_text() for r in rows.all()]
    assert again == ["intel:default", "stock:default"], again
    assert header.get_attribute("aria-sort") == "descending"
    row = page.locator("#cells tbody tr", has_text="intel:default").locator("td")
    latest = float(row.nth(5).get_attribute("data-value"))
    assert 8.5 < latest < 9.5
    assert row.last.inner_text() == f"${0.75 / (latest * 3600) * 1e6:.2f}"  # price / images


def test_the_cell_with_a_change_shows_it_and_what_changed(site, page):
    page.goto((site / "index.html").as_uri())
    page.click("text=stock:default")
    assert "stock:default on fake-host" in page.locator("h1").inner_text()
    change = page.locator("li.change")
    assert change.count() == 1
    said = change.inner_text()
    assert "-20%" in said and "5 sessions before, 5 after" in said, said
    assert "image stock rebuilt" in said and "c" * 12 in said, said
    page.goto((site / "index.html").as_uri())
    page.click("text=intel:default")
    assert page.locator("li.change").count() == 0
    assert "None beyond the noise" in page.content()


def test_each_session_is_listed_with_its_bundle_to_download(site, page):
    from kit.store.bundle import open_bundle

    page.goto((site / "sessions.html").as_uri())
    links = page.locator("a", has_text="download")
    assert links.count() == 10
    href = links.first.get_attribute("href")
    with open_bundle(site / href) as bundle:  # a real bundle, as kit import reads it
        assert href.startswith(f"bundles/{bundle.session_id}") and len(bundle.runs) == 6


def test_a_session_report_keeps_its_table_on_the_page(site, page):
    """The table's rows stay one line each: long statuses become numbered notes below it."""
    noted = []
    for path in sorted((site / "sessions").glob("*.html")):
        page.goto(path.as_uri())
        notes = page.locator("ol.notes li")
        if notes.count():
            noted.append(notes.first.inner_text())
        heights = page.eval_on_selector_all(
            "table tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        assert heights and max(heights) < 40, (path.name, heights)
    assert any("noisy (cv" in n for n in noted), noted  # the first session's intel is noisy
