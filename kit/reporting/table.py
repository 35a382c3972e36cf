"""Pure exporters: typed rows -> text (a terminal table, Markdown, CSV, JSON). tabulate is
imported here and nowhere else.

The terminal table fits 120 columns: the columns that matter for a verdict, with long status
text moved below it as numbered notes; ``wide`` (and Markdown) keep every column.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from tabulate import tabulate

from kit.judging.cells import cell_keys, cells, check_baseline
from kit.judging.stats import Verdict
from kit.model.results import RunResult
from kit.reporting.fit import WIDTH
from kit.reporting.formats import Format
from kit.reporting.narrow import dropped_to_fit, fit_listing
from kit.reporting.notes import host_notes, merged_notes, pairing_notes, undecided_notes
from kit.reporting.reference import reference_notes
from kit.reporting.rows import (
    ROW_SCHEMA,
    BestRow,
    Row,
    RowKind,
    RowStatus,
    best_rows,
    rows,
    several_engines,
    shape_line,
    spread_notes,
)
from kit.reporting.where import memory_text, per_cpu_text, threads_used_text, throttled_text

__all__ = ["cell_keys", "cells", "check_baseline", "render", "rows"]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _gflops(row: Row) -> str:
    if row.gflops is None:
        return "-"
    if row.peak_fraction is None:
        return f"{row.gflops:.1f}"
    return f"{row.gflops:.1f} ({row.peak_fraction:.0%} of peak)"


def _busy(row: Row) -> str:
    if row.busy_in is None:
        return "not sampled"
    outside = "-" if row.busy_out is None else f"{row.busy_out:.0f}%"
    return f"{row.busy_in:.0f}% / {outside}"


def speedup_text(speedup, low, high, verdict, baseline: bool = False) -> str:
    if speedup is None:
        return "-"
    if baseline or verdict in (None, Verdict.unknown):
        return f"{speedup:.2f}x"
    return f"{speedup:.2f}x [{low:.2f}, {high:.2f}]"


def _speedup(row: Row) -> str:
    return speedup_text(row.speedup, row.ci_low, row.ci_high, row.verdict, row.baseline)


def _verdict(row: Row, best_shown: bool) -> str:
    if row.baseline:
        verdict = "baseline"
    elif row.verdict is Verdict.unknown:
        verdict = "too few repeats"  # an interval needs 2 a side
    else:
        verdict = row.verdict.value if row.verdict else "-"
    return f"{verdict}, best" if row.best and best_shown else verdict


def _status(row: Row) -> str:
    if row.status is RowStatus.ok:
        return "ok"
    if row.status in (RowStatus.noisy, RowStatus.unsettled):
        return f"ok, {row.status.value} ({row.status_detail})"
    return f"{row.status_detail}"


Column = tuple[str, Callable[[Row], str]]
WIDE: tuple[Column, ...] = (
    ("image", lambda r: r.image),
    ("TF", lambda r: r.tf_version or ("-" if r.unit == "GB/s" else "?")),  # bandwidth: none
    ("profile", lambda r: r.label),
    ("cpus", lambda r: r.cpus),
    ("nodes", lambda r: r.nodes),
    ("numactl", lambda r: r.numactl),
    ("memory policy", lambda r: r.memory_policy),
    ("memory", memory_text),
    ("threads", lambda r: r.threads),
    ("threads used", threads_used_text),
    ("throttled", throttled_text),
    ("images/sec", lambda r: _num(r.images_per_sec, ".2f")),
    ("per CPU", per_cpu_text),
    ("cv", lambda r: _num(r.cv, ".1%") if r.repeats > 1 else "-"),
    ("runs", lambda r: str(r.repeats)),
    ("GFLOP/s", _gflops),
    ("CPU busy in/out", _busy),
    ("speedup [95% CI]", _speedup),
)


def _rate_cv(row: Row) -> str:
    rate = _num(row.images_per_sec, ".2f")
    return f"{rate} ±{row.cv:.1%}" if row.cv is not None and row.repeats > 1 else rate


def _rate_cv_n(row: Row) -> str:
    """With how many repeats, when cells took different numbers (adaptive repeats)."""
    return f"{_rate_cv(row)} n={row.repeats}" if row.repeats > 1 else _rate_cv(row)


NARROW_WIDTH = WIDTH  # every line of a narrow table and its notes
NARROW: tuple[Column, ...] = (
    *(c for c in WIDE[:4]),
    ("numactl", lambda r: " ".join(a.removeprefix("--") for a in r.numactl.split())),
    ("threads", lambda r: r.threads),
    ("images/sec", _rate_cv),  # ± the repeats' cv
    ("speedup [95% CI]", _speedup),
)
HEADERS = (*(name for name, _ in WIDE), "verdict", "status")


def knob_names(table: Sequence[Row]) -> list[str]:
    """The knobs a sweep's rows vary (the image has its own column)."""
    names = dict.fromkeys(k for r in table for k in r.knobs if k != "image")
    return list(names)


LATENCY: tuple[Column, ...] = (
    ("p50 ms", lambda r: _num(r.latency_p50, ".1f")),
    ("p99 ms", lambda r: _num(r.latency_p99, ".1f")),
)


def _columns(table: Sequence[Row], wide: bool) -> list[Column]:
    """The table's columns; a sweep's knobs replace the profile column, one column each; an
    inference session's per-batch latency follows images/sec."""
    columns = list(WIDE if wide else NARROW)
    if any(r.mode == "infer" and r.latency_p50 is not None for r in table):
        at = [name for name, _ in columns].index("images/sec") + 1
        columns[at:at] = LATENCY
    if not wide and len({r.repeats for r in table if r.kind is RowKind.cell and r.repeats}) > 1:
        columns = [("images/sec", _rate_cv_n) if n == "images/sec" else (n, f) for n, f in columns]
    knobs = knob_names(table)
    if not knobs:
        return columns
    at = [name for name, _ in columns].index("profile")
    per_knob = [(k, lambda r, k=k: r.knobs.get(k, "-")) for k in knobs]
    if any(r.instances > 1 for r in table):
        per_knob.append(("instance", lambda r: r.label if r.kind is RowKind.instance else ""))
    return [*columns[:at], *per_knob, *columns[at + 1 :]]


def _lines(
    table: Sequence[Row], wide: bool, with_engine: bool, cut: bool = True
) -> tuple[list, list, list[str]]:
    """Headers, cells and (narrow) the notes that long status texts became; ``cut``: a wide
    table's long status is shortened (HTML makes it a note of its own, whole)."""
    columns = _columns(table, wide)
    per_engine = Counter(r.engine for r in table if r.kind is RowKind.cell)
    notes: list[str] = []
    body = []
    for row in table:
        status = _status(row)
        if not wide and row.status is not RowStatus.ok:
            note = f"[{len(notes) + 1}] {row.image}:{row.label.strip()}: {status}"
            notes.append(textwrap.fill(note, NARROW_WIDTH, subsequent_indent="    "))
            status = f"{row.status.value} [{len(notes)}]"
        elif cut and len(status) > 90:
            status = status[:87] + "..."
        body.append([
            *([row.engine] if with_engine else []), *(get(row) for _, get in columns),
            _verdict(row, per_engine[row.engine] > 1), status,
        ])  # fmt: skip
    headers = [*(["engine"] if with_engine else []), *(n for n, _ in columns), "verdict", "status"]
    units = {r.unit for r in table}
    if len(units) == 1 and units != {"images/sec"}:  # the bandwidth workload's GB/s
        headers = [units.pop() if h == "images/sec" else h for h in headers]
    return headers, body, notes


def headers(results: Sequence[RunResult]) -> tuple[str, ...]:
    """The wide table's columns: an engine column first when there was more than one."""
    names = (*(name for name, _ in _columns(rows(results), True)), "verdict", "status")
    return ("engine", *names) if several_engines(results) else names


def table_cells(
    results: Sequence[RunResult],
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
) -> list[list[str]]:
    """The wide table as strings, in ``headers(results)`` order (for HTML)."""
    return _lines(rows(results, baseline, peaks), True, several_engines(results), cut=False)[1]


BEST_HEADERS = ("engine", "host", "best", "images/sec", "vs its baseline", "vs fastest")


def _best_cells(best: BestRow) -> list[str]:
    speedup = speedup_text(best.speedup, best.ci_low, best.ci_high, best.verdict)
    return [best.engine, best.host, best.cell, f"{best.images_per_sec:.2f}", speedup,
            f"{best.of_fastest:.2f}x"]  # fmt: skip


def to_json(table: Sequence[Row], best: Sequence[BestRow]) -> str:
    data = {"schema": ROW_SCHEMA, "rows": [asdict(r) for r in table]}
    if best:
        data["best_per_engine"] = [asdict(b) for b in best]
    return json.dumps(data, indent=2)


def to_csv(table: Sequence[Row]) -> str:
    buffer = io.StringIO()
    knobs = list(dict.fromkeys(k for r in table for k in r.knobs))
    nodes = sorted({n for r in table for n in r.memory_share}, key=int)
    names = ["schema", *(n for n in Row.__dataclass_fields__ if n not in ("knobs", "memory_share"))]
    names += [f"knob:{k}" for k in knobs] + [f"memory_share:{n}" for n in nodes]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in table:
        data = asdict(r)
        values, shares = data.pop("knobs"), data.pop("memory_share")
        shares = {f"memory_share:{n}": shares.get(n, "") for n in nodes}
        knob_values = {f"knob:{k}": values.get(k, "") for k in knobs}
        writer.writerow({"schema": ROW_SCHEMA, **data, **knob_values, **shares})
    return buffer.getvalue()


def render(
    results: Sequence[RunResult],
    fmt: Format = Format.table,
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
    wide: bool = False,
) -> str:
    table = rows(results, baseline, peaks)
    several = several_engines(results)
    best = best_rows(results, table) if several else []
    if fmt is Format.json:
        return to_json(table, best)
    if fmt is Format.csv:
        return to_csv(table)
    tablefmt = "github" if fmt is Format.markdown else "simple"
    names, body, notes = _lines(table, wide or fmt is Format.markdown, several)
    if fmt is Format.markdown:
        text = tabulate(body, headers=names, tablefmt=tablefmt, disable_numparse=True)
    else:
        names, body, left = (names, body, []) if wide else dropped_to_fit(names, body)
        text = compact_table(names, body)
        if left:
            notes.insert(0, f"left out to fit {NARROW_WIDTH} columns: {', '.join(left)} "
                            "(--wide shows every column)")  # fmt: skip
    said = [
        *merged_notes(results),
        *spread_notes(results),
        *pairing_notes(table),
        *undecided_notes(table),
        *host_notes(results),
        *reference_notes(results, table),
    ]
    notes += [textwrap.fill(n, NARROW_WIDTH, subsequent_indent="    ") for n in said]
    if notes:
        text += "\n\n" + "\n".join(notes)
    shape = shape_line(results)
    if shape is not None:
        text = f"{shape}\n{text}"
    if best:
        cells_ = [_best_cells(b) for b in best]
        text += "\n\nBest per engine:\n" + tabulate(
            cells_, headers=BEST_HEADERS, tablefmt=tablefmt, disable_numparse=True
        )
    return text


def compact_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """tabulate's "simple" layout without the padding it adds to every header (two columns a
    header is what keeps the table within a terminal's width)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *body, strict=True)]
    first, *rest = tabulate([headers, *body], tablefmt="plain", disable_numparse=True).splitlines()
    return "\n".join([first, "  ".join("-" * w for w in widths), *rest])


def fit_with_notes(
    headers: Sequence[str], body: Sequence[Sequence[str]], movable: Sequence[str], longest: int = 24
) -> str:
    """A table within a terminal's width: in the ``movable`` columns, each distinct value longer
    than ``longest`` becomes a marker ``[n]``, and the values are listed below the table."""
    notes: dict[str, str] = {}
    columns = {i for i, name in enumerate(headers) if name in movable}
    fitted = []
    for row in body:
        cells_ = []
        for i, cell in enumerate(row):
            text = str(cell)
            if i in columns and len(text) > longest:
                text = notes.setdefault(text, f"[{len(notes) + 1}]")
            cells_.append(text)
        fitted.append(cells_)
    lines = [textwrap.fill(f"{marker} {text}", NARROW_WIDTH, subsequent_indent="    ")
             for text, marker in notes.items()]  # fmt: skip
    table = compact_table(headers, fitted)
    return table + ("\n\n" + "\n".join(lines) if lines else "")


def tabulate_rows(table: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)


# The version of a listing's JSON (history, diff, replay, verify, profiles, knobs, topology):
# 2 keys each row by its column's name in snake case ("started (UTC)" -> "started_utc").
LISTING_SCHEMA = 3  # 3: kit history and kit profiles show as typed data


def markdown_table(headers: Sequence[str], body: Sequence[Sequence[object]]) -> str:
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


@dataclass(frozen=True)
class Listing:
    """One table of a command's output: its JSON name, headers, rows and (in text) a title."""

    name: str
    headers: tuple[str, ...]
    body: tuple[tuple[object, ...], ...]
    title: str = ""


def listing(name: str, headers: Sequence[str], body: Sequence[Sequence[object]],
            title: str = "") -> Listing:  # fmt: skip
    return Listing(name, tuple(headers), tuple(tuple(row) for row in body), title)


def json_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_") or "value"


def render_tables(
    tables: Sequence[Listing], fmt: Format, meta: Mapping[str, object] | None = None,
    text: Callable[[Listing], str] | None = None,
) -> str:  # fmt: skip
    """A command's tables in any output format: text (``text``, else tabulate's) and markdown
    each under its title, CSV of the first table, JSON as ``{"schema": 2, **meta, NAME: [...]}``
    with snake-case keys."""
    if fmt is Format.json:
        data: dict[str, object] = {"schema": LISTING_SCHEMA, **(meta or {})}
        for t in tables:
            keys = [json_key(h) for h in t.headers]
            data[t.name] = [dict(zip(keys, row, strict=True)) for row in t.body]
        return json.dumps(data, indent=2)
    if fmt is Format.csv:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([tables[0].headers, *tables[0].body])
        return buffer.getvalue().rstrip("\n")
    parts = [f"{k}: {v}" for k, v in (meta or {}).items()] if fmt is Format.table else []
    for t in tables:
        title = (f"### {t.title}" if fmt is Format.markdown else t.title) if t.title else ""
        shown = markdown_table(t.headers, t.body) if fmt is Format.markdown else (
            text(t) if text else fit_listing(t.headers, t.body))  # fmt: skip
        parts.append("\n".join(x for x in (title, shown) if x))
    return "\n\n".join(parts)


def render_listing(
    body: Sequence[Sequence[object]], headers: Sequence[str], fmt: Format, name: str
) -> str:
    """One table in any output format (``render_tables``)."""
    return render_tables([listing(name, headers, body)], fmt)
