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
         vertical-align: top; white-space: nowrap; }
ol.notes { list-style: none; padding-left: 0; font-size: 0.9rem; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
.wide { overflow-x: auto; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.85rem; }
""".strip()


NOTE_CHARS = 24  # a status longer than this becomes a numbered note below the table


def with_notes(
    table_headers: Sequence[str], table_rows: Sequence[Sequence[str]], column: str = "status"
) -> tuple[list[list[str]], list[str]]:
    """The rows with each long value of ``column`` replaced by a marker ``[n]``, and the notes
    in marker order: the table stays one line a row, as in the terminal."""
    if column not in table_headers:
        return [list(r) for r in table_rows], []
    at = list(table_headers).index(column)
    notes: dict[str, str] = {}
    fitted = []
    for row in table_rows:
        cells = list(row)
        if len(cells) > at and len(str(cells[at])) > NOTE_CHARS:
            head = str(cells[at]).split(", ")[0]
            short = head if len(head) <= NOTE_CHARS else head[: NOTE_CHARS - 1] + "…"
            cells[at] = f"{short} {notes.setdefault(str(row[at]), f'[{len(notes) + 1}]')}"
        fitted.append(cells)
    return fitted, [f"{marker} {text}" for text, marker in notes.items()]


def html_report(
    title: str,
    table_headers: Sequence[str],
    table_rows: Sequence[Sequence[str]],
    images: Mapping[str, bytes],
    sections: Mapping[str, object],
    back: tuple[str, str] | None = None,
) -> str:
    """The page: title, results table (a long status as a numbered note below it), each PNG
    captioned with its name, then each section as pretty-printed JSON, or as plain text when it
    is a string. Every given string is escaped. ``back``: (href, text) of a link above the
    title, for a page inside a site."""
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
    table_rows, notes = with_notes(table_headers, table_rows)
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
        *([f'<p><a href="{esc(back[0])}">{esc(back[1])}</a></p>'] if back else []),
        f"<h1>{esc(title)}</h1>",
        '<h2>Results</h2>\n<div class="wide">\n<table>',
        "<thead><tr>"
        + "".join(f'<th scope="col">{esc(str(h))}</th>' for h in table_headers)
        + "</tr></thead>",
        "<tbody>",
        *("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in table_rows),
        "</tbody>\n</table>\n</div>",
    ]
    if notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in notes)
        parts.append(f'<ol class="notes">{items}</ol>')
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
