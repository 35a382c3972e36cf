"""Pure exporter: a results table, charts and JSON sections -> one self-contained HTML page.

Self-contained so the page can be mailed or attached to a ticket and still show everything:
images are inlined as base64 data URIs, the style is inline, nothing is fetched.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence

from kit.errors import UsageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
.wide { overflow-x: auto; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.85rem; }
""".strip()


def html_report(
    title: str,
    table_headers: Sequence[str],
    table_rows: Sequence[Sequence[str]],
    images: Mapping[str, bytes],
    sections: Mapping[str, object],
) -> str:
    """The page: title, results table, each PNG captioned with its name, then each section as
    pretty-printed JSON, or as plain text when it is a string. Every given string is escaped."""
    for i, row in enumerate(table_rows, 1):
        if len(row) != len(table_headers):
            raise UsageError(
                f"table row {i} has {len(row)} cells for {len(table_headers)} headers",
                "give one cell per header",
            )
    for name, png in images.items():
        if not png.startswith(PNG_SIGNATURE):
            raise UsageError(f"image {name!r} is not a PNG", "embed the bytes a plotter returned")
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        '<h2>Results</h2>\n<div class="wide">\n<table>',
        "<thead><tr>"
        + "".join(f'<th scope="col">{esc(str(h))}</th>' for h in table_headers)
        + "</tr></thead>",
        "<tbody>",
        *("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in table_rows),
        "</tbody>\n</table>\n</div>",
    ]
    for name, png in images.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure>\n<img src="data:image/png;base64,{data}" alt="{esc(name)}">\n'
            f"<figcaption>{esc(name)}</figcaption>\n</figure>"
        )
    for name, content in sections.items():
        parts.append(f"<h2>{esc(name)}</h2>\n<pre>{esc(_text(content))}</pre>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    # default=str: a provenance record may hold paths or timestamps; the page should still render.
    return json.dumps(content, indent=2, default=str, ensure_ascii=False)
