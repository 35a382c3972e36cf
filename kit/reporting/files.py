"""The one place report files are written: plots (PNG) and the HTML report of a session.

What goes into them is decided by pure functions here and in kit.reporting.table;
kit.reporting.plots and kit.reporting.html only draw.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kit.cpus import parse_cpu_list
from kit.errors import KitError
from kit.judging.analysis import (
    attribute,
    lines_through_best,
    medians,
    over_two,
    scaling,
    varying,
)
from kit.judging.cells import cells
from kit.model.results import RunResult
from kit.reporting import knob_plots
from kit.reporting.formats import Format
from kit.reporting.html import html_report
from kit.reporting.plots import Bar, TrendPlot, UtilSeries, bar_chart_png, heatmap_png, trend_png
from kit.reporting.rows import RowKind, RowStatus, rows, several_engines
from kit.reporting.site import SessionEntry, cell_page, index_page, page_name, sessions_page
from kit.reporting.table import headers, render, speedup_text, table_cells
from kit.reporting.trend import Trend
from kit.store.folder import slug

BAR_CHART = "plot-images-per-sec.png"


def bars(results: Sequence[RunResult], baseline: str | None = None) -> list[Bar]:
    """One bar per measured cell: median with min-max whiskers, speedup and verdict above."""
    out = []
    where = several_engines(results)
    for row in rows(results, baseline):
        if row.images_per_sec is None or row.kind is RowKind.instance:
            continue
        speedup = None
        if row.speedup is not None:
            speedup = speedup_text(row.speedup, row.ci_low, row.ci_high, row.verdict, row.baseline)
            if not row.baseline and row.verdict is not None and row.verdict.value != "unknown":
                speedup += f" {row.verdict.value}"
        out.append(
            Bar(
                label=f"{row.image}:{row.label}" + (f"@{row.engine}" if where else ""),
                median=row.images_per_sec,
                low=row.min,
                high=row.max,
                speedup=speedup,
                noisy=row.status is RowStatus.noisy,
            )
        )
    return out


def util_series(result: RunResult) -> UtilSeries | None:
    util = result.utilization
    if util is None or not util.times_s:
        return None
    busy = tuple(tuple(min(100.0, max(0.0, v)) for v in row) for row in util.busy)
    return UtilSeries(
        title=f"run {result.index}: {result.key} (repeat {result.repeat + 1}), CPU busy %",
        cpus=tuple(range(len(busy))),
        times_s=util.times_s,
        busy=busy,
        pinned=parse_cpu_list(result.effective_cpus or result.cpus),
    )


def write_plots(
    folder: Path, results: Sequence[RunResult], baseline: str | None = None
) -> dict[str, Path]:
    """The bar chart and one utilization heatmap per sampled run, written into ``folder``."""
    written: dict[str, Path] = {}
    measured = bars(results, baseline)
    if measured:
        path = folder / BAR_CHART
        path.write_bytes(bar_chart_png(measured, "images/sec per image and profile"))
        written[path.name] = path
    written.update(write_knob_plots(folder, results, baseline))
    for result in results:
        series = util_series(result)
        if series is not None:
            path = folder / f"plot-cpu-busy-{result.index:02d}-{slug(result.key)}.png"
            path.write_bytes(heatmap_png(series))
            written[path.name] = path
    return written


def run_sections(results: Sequence[RunResult]) -> list[dict]:
    """Each run's provenance for the report (without the utilization samples, which are plotted)."""
    keep = (
        "index", "image", "image_ref", "image_id", "profile", "repeat", "instance", "status",
        "images_per_sec", "error", "cpus", "effective_cpus", "nodes", "mems", "numactl",
        "command", "env", "started", "ended", "exit_code", "log_path", "workload", "provenance",
        "rerun",
    )  # fmt: skip
    out = []
    for r in results:
        record = r.to_json()
        entry = {k: record.get(k) for k in keep}
        busy_in, busy_out = r.busy()
        entry["cpu_busy"] = {"own_cpus": busy_in, "other_cpus": busy_out}
        out.append(entry)
    return out


def write_html(
    path: Path,
    title: str,
    results: Sequence[RunResult],
    meta: Mapping[str, object],
    plots: Mapping[str, Path],
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
) -> Path:
    images = {name: p.read_bytes() for name, p in plots.items()}
    path.write_text(
        html_report(title, headers(results), table_cells(results, baseline, peaks), images,
                    report_sections(results, meta)),
        encoding="utf-8",
    )  # fmt: skip
    return path


def report_sections(results: Sequence[RunResult], meta: Mapping[str, object]) -> dict:
    """What a session's page shows below its table: hosts, oneDNN's proof, the session, runs."""
    return {
        "Hosts": meta.get("hosts") or meta.get("host_record") or meta.get("host") or "unknown",
        "oneDNN verify": meta.get("verify") or "not run (pass --verify)",
        "Session": {k: v for k, v in meta.items() if k not in ("verify", "host_record", "hosts")},
        "Runs": run_sections(results),
    }


def write_knob_plots(
    folder: Path, results: Sequence[RunResult], baseline: str | None = None
) -> dict[str, Path]:
    """A sweep's or tune's figures, for what its cells vary: two knobs' heatmap, a line per
    knob, the scaling curve, and the attribution waterfall (also for a compare)."""

    figures: dict[str, bytes] = {}
    rates = medians(results)
    names = varying(rates) if any(r.knobs for r in results) else []
    if len(names) >= 2:
        x, y = names[-1], names[-2]
        figures[PLOT_KNOBS] = knob_plots.knob_heatmap_png(
            x, y, over_two(rates, x, y), f"images/sec over {x} and {y}"
        )
    lines = lines_through_best(rates) if names else {}
    if lines:
        figures[PLOT_LINES] = knob_plots.knob_lines_png(lines, "each knob, the others at the best")
    curves = scaling(results)
    if curves:
        figures[PLOT_SCALING] = knob_plots.scaling_png(curves, "images/sec per core count")
    found = attribute(results, baseline)
    if found is not None and found.ladder:
        base = next(c for c in cells(results) if c.key == found.baseline)
        base_rate = base.summary().median  # type: ignore[union-attr]
        figures[PLOT_LADDER] = knob_plots.waterfall_png(
            found, base_rate, f"from {found.baseline} to {found.best}, one change at a time"
        )
    written = {}
    for name, data in figures.items():
        (folder / name).write_bytes(data)
        written[name] = folder / name
    return written


PLOT_KNOBS, PLOT_LINES = "plot-knobs-heatmap.png", "plot-knob-lines.png"
PLOT_SCALING, PLOT_LADDER = "plot-scaling.png", "plot-ladder.png"


@dataclass(frozen=True)
class StoredForSite:
    """One session as the site shows it: its listing and what its own page renders."""

    entry: SessionEntry
    runs: tuple[RunResult, ...]
    meta: Mapping[str, object]


@dataclass(frozen=True)
class SiteWritten:
    folder: Path
    pages: int
    plots: int


def write_site(
    folder: Path,
    found: Sequence[Trend],
    sessions: Sequence[StoredForSite],
    prices: Mapping[str, float],
    bundles: Sequence[str] = (),
) -> SiteWritten:
    """The static site into ``folder``: index.html, sessions.html, cells/ (a page and a plot a
    series), sessions/ (a page a session). ``bundles``: the sessions whose bundle is in
    bundles/ (written by the caller)."""
    for sub in ("cells", "sessions"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    index = index_page(found, len(sessions), prices)
    (folder / "index.html").write_text(index, encoding="utf-8")
    (folder / "sessions.html").write_text(
        sessions_page([s.entry for s in sessions], bundles), encoding="utf-8"
    )
    for trend in found:
        name = page_name(trend.series.key)
        (folder / "cells" / f"{name}.png").write_bytes(trend_png(_trend_plot(trend)))
        page = cell_page(trend, f"{name}.png")
        (folder / "cells" / f"{name}.html").write_text(page, encoding="utf-8")
    for stored in sessions:
        sid = stored.entry.session_id
        page = html_report(f"kit session {sid}", headers(stored.runs), table_cells(stored.runs),
                           {}, report_sections(stored.runs, stored.meta),
                           back=("../sessions.html", "All sessions"))  # fmt: skip
        (folder / "sessions" / f"{sid}.html").write_text(page, encoding="utf-8")
    pages = 2 + len(found) + len(sessions)
    return SiteWritten(folder, pages, len(found))


def _trend_plot(trend: Trend) -> TrendPlot:
    points = trend.series.points
    intervals = [p.interval for p in points]
    return TrendPlot(
        title=f"{trend.series.key.label}",
        values=tuple(p.value for p in points),
        lows=tuple(lo for lo, _ in intervals),
        highs=tuple(hi for _, hi in intervals),
        changes=tuple(c.at for c in trend.changes),
        labels=tuple(p.started[5:19].replace("T", " ") for p in points),
    )


def write_exports(
    results: Sequence[RunResult], exports: Mapping[Format, Path], baseline: str | None = None
) -> None:
    """The table in each --export-* file, replaced whole (a reader never sees half of one)."""
    for fmt, path in exports.items():
        part = path.with_name(path.name + ".part")
        try:
            part.write_text(render(results, fmt, baseline) + "\n", encoding="utf-8")
            os.replace(part, path)
        except OSError as exc:
            raise KitError(f"cannot write --export-{fmt.value} {path}: {exc.strerror}") from None
