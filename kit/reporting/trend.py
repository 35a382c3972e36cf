"""A cell's history as text: each series' points and its change points, as a table, markdown,
CSV or versioned JSON (``kit history --cell``). Pure: series in, a string out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from kit.judging.changes import MIN_SESSIONS, Change, changes
from kit.judging.series import Point, Series, split_cell
from kit.reporting.formats import Format
from kit.reporting.table import compact_table, dropped_to_fit, markdown_table

# The JSON's version (2: changes[].span; 3: points' memory), checked before the rest is read
TREND_SCHEMA = 3
HEADERS = ["session", "started (UTC)", "img/s", "95% interval", "n", "memory", "TF", "image",
           "kit", "kernel", "change"]  # fmt: skip


@dataclass(frozen=True)
class Trend:
    """One series with the changes found in it."""

    series: Series
    changes: tuple[Change, ...]

    @property
    def image(self) -> str:
        return split_cell(self.series.key.cell)[0]


def trends(found: Sequence[Series]) -> list[Trend]:
    return [Trend(s, tuple(changes(s))) for s in found]


def _started(point: Point) -> str:
    return point.started[:16].replace("T", " ") or "?"


def _row(point: Point, change: Change | None) -> list[str]:
    low, high = point.interval
    interval = "-" if len(point.samples) < 2 else f"[{low:.2f}, {high:.2f}]"
    moved = "-" if change is None else change.magnitude
    memory = point.memory.short() if point.memory else "-"
    return [point.session_id, _started(point), f"{point.value:.2f}", interval,
            str(len(point.samples)), memory, point.said("TF"), _digest(point.said("image digest")),
            point.said("kit"), point.said("kernel"), moved]  # fmt: skip


def _digest(text: str) -> str:
    return text.removeprefix("sha256:")[:12]


def _body(trend: Trend) -> list[list[str]]:
    at = {c.at: c for c in trend.changes}
    return [_row(p, at.get(i)) for i, p in enumerate(trend.series.points)]


def _said_changes(trend: Trend) -> list[str]:
    if len(trend.series.points) < MIN_SESSIONS:
        return [f"changes: too few sessions to tell ({MIN_SESSIONS} or more are needed)"]
    if not trend.changes:
        return ["changes: none beyond the noise"]
    return ["changes:", *(f"  {c.line(trend.image)}" for c in trend.changes)]


def to_table(found: Sequence[Trend]) -> str:
    blocks = []
    for trend in found:
        count = len(trend.series.points)
        head = f"{trend.series.key.label}: {count} session{'s' if count != 1 else ''}"
        headers, body, left = dropped_to_fit(HEADERS, _body(trend), ("kernel", "kit", "memory"))
        table = compact_table(headers, body)
        if left:
            table += f"\n(left out to fit: {', '.join(left)}; -f json has every field)"
        blocks.append("\n".join([head, table, *_said_changes(trend)]))
    return "\n\n".join(blocks)


def to_markdown(found: Sequence[Trend]) -> str:
    blocks = []
    for trend in found:
        lines = _said_changes(trend)
        blocks.append(
            f"### {trend.series.key.label}\n\n"
            + markdown_table(HEADERS, _body(trend))
            + "\n\n"
            + "\n".join(f"- {line.strip()}" for line in lines[1:] or lines)
        )
    return "\n\n".join(blocks)


def to_csv(found: Sequence[Trend]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["machine", "engine", "cell", "workload", *HEADERS])
    for trend in found:
        key = trend.series.key
        for row in _body(trend):
            writer.writerow([key.machine, key.engine, key.cell, key.workload, *row])
    return buffer.getvalue().rstrip("\n")


def _point_json(point: Point) -> dict:
    low, high = point.interval
    memory = point.memory
    return {
        "session": point.session_id, "started": point.started,
        "images_per_sec": point.value, "low": low, "high": high,
        "samples": list(point.samples), "provenance": dict(point.provenance),
        "memory_mb": memory.total_kb / 1024 if memory else None,
        "memory_share": {str(n): s for n, s in memory.shares().items()} if memory else None,
    }  # fmt: skip


def _change_json(change: Change, image: str) -> dict:
    s = change.speedup
    return {
        "session": change.after.session_id, "after_session": change.before.session_id,
        "span": [p.session_id for p in change.span] if change.span else None,
        "ratio": s.ratio, "low": s.low, "high": s.high,
        "sessions": list(change.sessions),
        "provenance": [{"field": f, "before": a, "after": b} for f, a, b in change.diff],
        "text": change.line(image),
    }  # fmt: skip


def _trend_json(trend: Trend) -> dict:
    key = trend.series.key
    return {
        "machine": key.machine, "engine": key.engine, "cell": key.cell, "workload": key.workload,
        "points": [_point_json(p) for p in trend.series.points],
        "changes": [_change_json(c, trend.image) for c in trend.changes],
    }  # fmt: skip


def to_json(found: Sequence[Trend]) -> str:
    doc = {"schema": TREND_SCHEMA, "series": [_trend_json(t) for t in found]}
    return json.dumps(doc, indent=2, sort_keys=True)


def render_trends(found: Sequence[Trend], fmt: Format) -> str:
    writers = {Format.table: to_table, Format.markdown: to_markdown, Format.csv: to_csv,
               Format.json: to_json}  # fmt: skip
    return writers[fmt](found)
