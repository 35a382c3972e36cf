"""Past sessions: history, report (and the gate), and the peak the reports compare with."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kit.cli import common
from kit.cli.common import app, err, existing_db, open_db, out
from kit.cli.declare import command
from kit.cli.options import Options
from kit.cpus import parse_cpu_list
from kit.errors import UsageError
from kit.inputs import check_output_file, prepare_folder, write_text
from kit.reporting.formats import Format, ReportFormat

if TYPE_CHECKING:
    from kit.judging.gate import Gate
    from kit.reporting.site import SessionEntry


@command(app, "history", Options)
def history(o: Options) -> None:
    """Past sessions (when, host, images, profiles, best cell), or with --cell one cell's
    series over sessions and its change points."""
    if o.cell is None and o.machine is not None:
        raise UsageError("--machine goes with --cell", "pass --cell IMAGE:PROFILE too")
    if o.cell is not None:
        _cell_history(o)
        return
    from kit.reporting.table import LISTING_SCHEMA, render_listing

    with open_db(o.db, o.results) as store:
        sessions = store.sessions(o.limit)
        knobs = {s.id: store.knob_values(s.id) for s in sessions}
    if o.fmt is Format.json:  # data as data: numbers, lists, ISO 8601 times
        doc = {"schema": LISTING_SCHEMA, "sessions": [_session_json(s, knobs[s.id])
                                                      for s in sessions]}  # fmt: skip
        out.print(json.dumps(doc, indent=2), markup=False, fit=False)
        return
    rows = [
        [
            s.id,
            (s.started or "?")[:19].replace("T", " "),
            s.host or "?",
            _command(s.meta),
            s.runs,
            ", ".join(s.images),
            _cells(s.profiles, knobs[s.id]),
            f"{s.best[0]} {s.best[1]:.2f}" if s.best else "-",
        ]
        for s in sessions
    ]
    headers = ["session", "started (UTC)", "host", "command", "runs", "images", "profiles",
               "best images/sec"]  # fmt: skip
    out.print(render_listing(rows, headers, o.fmt, "sessions"), markup=False, fit=False)


def _cell_history(o: Options) -> None:
    """One cell's series over sessions, with its change points."""
    from kit.judging.series import select, series_of, split_cell
    from kit.reporting.trend import render_trends, trends

    split_cell(o.cell)  # refused before the database is opened
    with open_db(o.db, o.results) as store:
        # every cell's series only when this one has none, to name the ones there are
        found = series_of(store.history(o.cell)) or series_of(store.history())
    found = select(found, o.cell, o.machine)
    out.print(render_trends(trends(found), o.fmt), markup=False, fit=False)


def _session_json(s, knobs: dict[str, dict[str, str]]) -> dict:
    varied = list(dict.fromkeys(k for values in knobs.values() for k in values))
    return {
        "session": s.id, "started": s.started, "host": s.host, "command": _command(s.meta),
        "runs": s.runs, "images": list(s.images), "profiles": list(s.profiles),
        "knobs": varied,
        "best": {"cell": s.best[0], "images_per_sec": s.best[1]} if s.best else None,
    }  # fmt: skip


def _command(meta: dict) -> str:
    if meta.get("replay_of"):
        return f"replay of {meta['replay_of']}"
    argv = meta.get("argv") or []
    return str(argv[0]) if argv and not str(argv[0]).startswith("-") else "?"


def _cells(profiles: tuple[str, ...], knobs: dict[str, dict[str, str]]) -> str:
    """The profiles, or for a sweep or tune the knobs it varied."""
    names = list(dict.fromkeys(k for values in knobs.values() for k in values))
    return f"knobs {', '.join(names)}" if names else ", ".join(profiles)


@command(app, "report", Options)
def report(
    o: Options,
    session: Annotated[
        str, typer.Argument(help="Session id, a unique prefix of one, or 'latest'.")
    ] = "latest",
) -> None:
    """Re-render a past session: table, CSV, JSON, or one HTML file with plots.

    The HTML holds the table, the plots, every run's provenance and the verify results. With
    --baseline-session and --fail-if-slower this is also the regression gate, for CI.
    """
    from kit.campaign.run import gate_baseline
    from kit.judging.gate import Gate
    from kit.reporting.table import check_baseline, render
    from kit.store.folder import DB_NAME
    from kit.store.past import load_stored

    output, db, results, baseline, fmt = o.output, o.db, o.results, o.baseline, o.report_format
    if output is not None:
        check_output_file(output, "--output")
    gate = Gate.from_options(o.baseline_session, o.fail_if_slower, o.gate_on, o.gate_undecided,
                             o.baseline_history)  # fmt: skip
    stored = load_stored(existing_db(db, results), session)
    gate_runs = (
        gate_baseline(gate, results, db or results / DB_NAME, stored.session_id)
        if gate is not None
        else None
    )
    found = list(stored.runs)
    check_baseline([r.key for r in found], baseline)
    if fmt is ReportFormat.html or o.plot:
        _write_files(stored, results / stored.session_id, fmt, baseline, output)
    if fmt is not ReportFormat.html:
        text = render(found, Format(fmt.value), baseline, stored.peaks)
        if output is None:
            out.print(text, markup=False, fit=False)
        else:
            write_text(output, text + "\n", "--output")
            err.print(f"report: {output}", markup=False)
    _gate(found, gate, gate_runs)


def _write_files(stored, folder: Path, fmt, baseline: str | None, output: Path | None) -> None:
    from kit.reporting.files import write_html, write_plots

    folder.mkdir(parents=True, exist_ok=True)
    plots = write_plots(folder, stored.runs, baseline)
    for path in plots.values():
        err.print(f"plot: {path}", markup=False)
    if fmt is ReportFormat.html:
        title = f"kit session {stored.session_id}"
        path = write_html(output or folder / "report.html", title, stored.runs, stored.meta,
                          plots, baseline, stored.peaks)  # fmt: skip
        err.print(f"report: {path}", markup=False)


def _gate(found: list, gate: Gate | None, gate_runs: list | None) -> None:
    from kit.cli.measure import gate_status
    from kit.judging.history import judge

    if gate is not None and gate_runs is not None:
        gate_status(judge(found, gate_runs, gate))


@command(app, "peak", Options)
def peak(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="A flavor or image reference.")],
    o: Options,
) -> None:
    """Measure this host's float32 GEMM peak inside IMAGE; reports then show % of peak."""
    from kit.campaign.peak_session import measure_peak
    from kit.cli.ui import TerminalFeedback
    from kit.planning.placement import CpuSelection

    cpus, db, results = o.cpus, o.db, o.results
    selection = CpuSelection(cpus=parse_cpu_list(cpus, what="--cpus") if cpus else None)
    found = measure_peak(
        image, selection, common.engine_maker(ctx), results, db, TerminalFeedback(err)
    )
    out.print(f"{found.image}: {found.gflops:.1f} GFLOP/s float32 GEMM on {found.host}")


@command(app, "site", Options)
def site(ctx: typer.Context, o: Options) -> None:
    """Write a static results site: every machine x cell with its latest figure, trend and
    cost; a page a cell with its plot, change points and what changed; a page a session."""
    from kit.judging.series import series_of
    from kit.reporting.files import StoredForSite, write_site
    from kit.reporting.trend import trends

    output, db, results = o.output, o.db, o.results
    prices = parse_prices(list(o.price))
    folder = prepare_folder(output, "--output")
    with open_db(db, results) as store:
        history = store.history()
        listed = store.sessions()
    runs = {s.session_id: s.runs for s in history}
    sessions = [StoredForSite(_entry(s), runs.get(s.id, ()), s.meta) for s in listed]
    carried = _bundles(ctx, folder, [s.id for s in listed], results, db) if o.bundles else []
    written = write_site(folder, trends(series_of(history)), sessions, prices, carried)
    err.print(
        f"site: {written.folder / 'index.html'} ({written.plots} series, {len(sessions)} "
        f"sessions, {written.pages} pages)",
        markup=False,
    )


def _bundles(ctx, folder: Path, ids: list[str], results: Path, db: Path | None) -> list[str]:
    """Each session that still has its folder, exported into the site's bundles/."""
    from kit.campaign.replay import ExportRequest, export_session
    from kit.cli.ui import TerminalFeedback
    from kit.reporting.site import BUNDLE_SUFFIX

    (folder / "bundles").mkdir(exist_ok=True)
    carried = []
    for sid in ids:
        if not (results / sid).is_dir():
            err.print(f"site: no folder for session {sid} in {results}: no bundle", markup=False)
            continue
        out_path = folder / "bundles" / f"{sid}{BUNDLE_SUFFIX}"
        request = ExportRequest(sid, out_path, results, db)
        export_session(request, common.engine_maker(ctx), TerminalFeedback(err))
        carried.append(sid)
    return carried


def _entry(s) -> SessionEntry:
    from kit.reporting.site import SessionEntry

    best = f"{s.best[0]} {s.best[1]:.2f}" if s.best else "-"
    return SessionEntry(s.id, s.started or "", s.host or "?", s.runs, best)


def parse_prices(given: list[str]) -> dict[str, float]:
    prices = {}
    for text in given:
        machine, sep, usd = text.partition("=")
        try:
            value = float(usd)
        except ValueError:
            value = math.nan
        if not sep or not machine or not math.isfinite(value) or value <= 0:
            raise UsageError(
                f"--price takes MACHINE=USD (a price per hour above 0), got {text!r}",
                "e.g. --price c4.8xlarge=1.59",
            )
        prices[machine] = value
    return prices
