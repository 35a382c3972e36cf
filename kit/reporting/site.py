"""Pure exporter: every series of the results database -> a static site (``kit site``): an index
of machines x cells with the latest figure, its trend and its cost, one page per series with its
plot, change points and what changed in provenance, and a list of sessions. Pages link each
other by relative paths, so the folder opens from a file or from any static host; nothing is
fetched. The index lists series, not sessions, so it stays small with hundreds of sessions.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kit.judging.changes import MIN_SESSIONS
from kit.judging.series import Point, SeriesKey
from kit.reporting.trend import Trend

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1280px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
border-bottom: 1px solid #ddd; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.45rem; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; } th[data-sort] { cursor: pointer; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
td.wrap { white-space: normal; min-width: 14rem; }
.up { color: #1e7d32; } .down { color: #c0392b; } .muted { color: #666; }
input#filter { font-size: 1rem; padding: 0.3rem 0.5rem; width: 24rem; margin: 0.5rem 0; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
li.change { margin-bottom: 1rem; }
""".strip()

# Filter rows by the text typed; sort by a header's column (numbers by data-value).
_SCRIPT = """
const table = document.getElementById("cells");
const filter = document.getElementById("filter");
function shown() {
  const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
  let count = 0;
  for (const row of table.tBodies[0].rows) {
    const text = row.textContent.toLowerCase();
    row.hidden = !words.every(w => text.includes(w));
    if (!row.hidden) count++;
  }
  document.getElementById("count").textContent = count;
}
filter.addEventListener("input", shown);
for (const [i, th] of [...table.tHead.rows[0].cells].entries()) {
  if (!th.dataset.sort) continue;
  th.addEventListener("click", () => {
    const down = th.getAttribute("aria-sort") === "ascending";
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    const key = r => {
      const cell = r.cells[i];
      return th.dataset.sort === "num" ? parseFloat(cell.dataset.value ?? "NaN") : cell.textContent;
    };
    const rows = [...table.tBodies[0].rows].sort((a, b) => {
      const x = key(a), y = key(b);
      if (th.dataset.sort === "num") {
        if (isNaN(x)) return 1; if (isNaN(y)) return -1;
        return down ? y - x : x - y;
      }
      return down ? y.localeCompare(x) : x.localeCompare(y);
    });
    table.tBodies[0].append(...rows);
  });
}
shown();
""".strip()


@dataclass(frozen=True)
class SessionEntry:
    """A session as the site lists it."""

    session_id: str
    started: str
    hosts: str
    runs: int
    best: str


def page_name(key: SeriesKey) -> str:
    """A series' page: readable, and unique by a hash of the whole key."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{key.machine}-{key.cell}")
    return f"{readable[:60]}-{digest}"


def _page(title: str, body: Sequence[str], script: str = "") -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>\n{_STYLE}\n</style>", "</head>", "<body>",
        *body,
    ]  # fmt: skip
    if script:
        parts.append(f"<script>\n{script}\n</script>")
    return "\n".join([*parts, "</body>", "</html>", ""])


def _table(table_id: str, headers: Sequence[tuple[str, str]], rows: Sequence[str]) -> str:
    """headers: (name, sort kind: "text", "num" or "" for none); rows: ready <tr> lines."""
    ths = "".join(
        f'<th scope="col"{f" data-sort={kind!r}" if kind else ""}>{html.escape(name)}</th>'
        for name, kind in headers
    )
    return "\n".join([f'<div class="scroll"><table id="{table_id}">',
                      f"<thead><tr>{ths}</tr></thead>", "<tbody>", *rows,
                      "</tbody></table></div>"])  # fmt: skip


def _td(text: object, value: float | None = None, cls: str = "") -> str:
    attrs = f' data-value="{value:.6g}"' if value is not None else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{html.escape(str(text))}</td>"


def _arrow(trend: Trend) -> tuple[str, str]:
    """The latest change's direction, or steady."""
    if not trend.changes:
        steady = len(trend.series.points) >= MIN_SESSIONS
        return ("steady" if steady else "too few sessions"), "muted"
    last = trend.changes[-1]
    return (f"▲ {last.magnitude}", "up") if last.percent > 0 else (f"▼ {last.magnitude}", "down")


def cost_per_million(images_per_sec: float, usd_per_hour: float) -> float:
    """What a million images cost at this speed and hourly price."""
    return usd_per_hour / (images_per_sec * 3600) * 1e6


def _index_row(trend: Trend, prices: Mapping[str, float]) -> str:
    key, last = trend.series.key, trend.series.points[-1]
    low, high = last.interval
    arrow, cls = _arrow(trend)
    price = prices.get(key.machine)
    cells = [
        _td(key.machine), _td(key.engine),
        f'<td><a href="cells/{page_name(key)}.html">{html.escape(key.cell)}</a></td>',
        _td(key.workload, cls="wrap"), _td(len(trend.series.points), len(trend.series.points)),
        _td(f"{last.value:.2f} [{low:.2f}, {high:.2f}]", last.value),
        _td(arrow, trend.changes[-1].percent if trend.changes else 0.0, cls),
        _td(last.started[:10]),
    ]  # fmt: skip
    if prices:
        cost = cost_per_million(last.value, price) if price is not None else None
        cells.append(_td("-" if cost is None else f"${cost:.2f}", cost))
    return "<tr>" + "".join(cells) + "</tr>"


def index_page(trends: Sequence[Trend], sessions: int, prices: Mapping[str, float]) -> str:
    machines = len({t.series.key.machine for t in trends})
    headers = [("machine", "text"), ("engine", "text"), ("cell", "text"), ("workload", "text"),
               ("sessions", "num"), ("img/s [95%]", "num"), ("trend", "num"),
               ("latest", "text")]  # fmt: skip
    if prices:
        headers.append(("$/1M images", "num"))
    rows = [_index_row(t, prices) for t in trends]
    body = [
        "<h1>kit results</h1>",
        f"<p>{machines} machine(s), {len(trends)} series, {sessions} session(s); img/s: the "
        "latest session's. "
        '<a href="sessions.html">All sessions</a>.</p>',
        '<label>Filter <input id="filter" type="search" placeholder="machine, cell, workload">'
        '</label> <span class="muted"><span id="count"></span> shown</span>',
        _table("cells", headers, rows),
        '<p class="muted">trend: the latest change point with its 95% interval; steady: none '
        "beyond the noise. Click a header to sort.</p>",
    ]
    return _page("kit results", body, _SCRIPT)


def _change_item(trend: Trend, i: int) -> str:
    change = trend.changes[i]
    esc = html.escape
    diff = (
        "".join(f"<tr><td>{esc(f)}</td>{_short(a)}{_short(b)}</tr>" for f, a, b in change.diff)
        or '<tr><td colspan="3">nothing recorded changed</td></tr>'
    )
    return (
        f'<li class="change"><strong>{esc(change.magnitude)}</strong> at '
        f'<a href="../sessions/{esc(change.after.session_id)}.html">{esc(change.after.session_id)}'
        f"</a> ({change.sessions[0]} sessions before, {change.sessions[1]} after): "
        f"{esc(change.line(trend.image).split(': ', 1)[1])}"
        '<div class="scroll"><table class="diff"><thead><tr><th>what</th><th>before</th>'
        f"<th>after</th></tr></thead><tbody>{diff}</tbody></table></div></li>"
    )


def _short(value: str) -> str:
    """A long value (a digest, an environment) cut to fit, whole in its tooltip."""
    if len(value) <= 40:
        return f"<td>{html.escape(value)}</td>"
    return f'<td title="{html.escape(value)}">{html.escape(value[:39])}…</td>'


def _point_row(point: Point, moved: str) -> str:
    low, high = point.interval
    sid = html.escape(point.session_id)
    return "<tr>" + "".join([
        f'<td><a href="../sessions/{sid}.html">{sid}</a></td>', _td(point.started[:19]),
        _td(f"{point.value:.2f}", point.value), _td(f"[{low:.2f}, {high:.2f}]"),
        _td(len(point.samples)), _td(point.said("TF")),
        _td(point.said("image digest").removeprefix("sha256:")[:12]), _td(point.said("kernel")),
        _td(moved),
    ]) + "</tr>"  # fmt: skip


def cell_page(trend: Trend, plot_file: str) -> str:
    key = trend.series.key
    at = {c.at: c.magnitude for c in trend.changes}
    points = list(enumerate(trend.series.points))[::-1]  # newest first
    rows = [_point_row(p, at.get(i, "")) for i, p in points]
    changes = [_change_item(trend, i) for i in range(len(trend.changes))]
    said = "<ol>" + "".join(changes) + "</ol>" if changes else (
        "<p>None beyond the noise.</p>" if len(trend.series.points) >= MIN_SESSIONS
        else f"<p>Too few sessions to tell ({MIN_SESSIONS} or more are needed).</p>"
    )  # fmt: skip
    headers = [("session", ""), ("started (UTC)", ""), ("img/s", ""), ("95% interval", ""),
               ("n", ""), ("TF", ""), ("image", ""), ("kernel", ""), ("change", "")]  # fmt: skip
    body = [
        '<p><a href="../index.html">All cells</a></p>',
        f"<h1>{html.escape(key.cell)} on {html.escape(key.machine)}</h1>",
        f"<p>{html.escape(key.engine)} engine; {html.escape(key.workload)}; "
        f"{len(trend.series.points)} session(s).</p>",
        f'<img class="plot" src="{html.escape(plot_file)}" alt="images/sec of '
        f'{html.escape(key.cell)} over sessions" width="1000" height="420">',
        "<h2>Changes</h2>", said,
        "<h2>Sessions</h2>", _table("points", headers, rows),
    ]  # fmt: skip
    return _page(f"kit: {key.cell} on {key.machine}", body)


BUNDLE_SUFFIX = ".kit.tar.zst"


def sessions_page(sessions: Sequence[SessionEntry], bundles: Sequence[str]) -> str:
    """Every session, newest first; ``bundles``: the sessions whose bundle is in bundles/."""
    rows = []
    for s in sessions:
        sid = html.escape(s.session_id)
        link = f'<a href="bundles/{sid}{BUNDLE_SUFFIX}">download</a>' if sid in bundles else "-"
        bundle = f"<td>{link}</td>" if bundles else ""
        rows.append(
            f'<tr><td><a href="sessions/{sid}.html">{sid}</a></td>{_td(s.started[:19])}'
            f"{_td(s.hosts)}{_td(s.runs)}{_td(s.best)}{bundle}</tr>"
        )
    headers = [("session", ""), ("started (UTC)", ""), ("hosts", ""), ("runs", ""),
               ("best", "")] + ([("bundle", "")] if bundles else [])  # fmt: skip
    body = ['<p><a href="index.html">All cells</a></p>', "<h1>Sessions</h1>",
            _table("sessions", headers, rows)]  # fmt: skip
    return _page("kit sessions", body)
