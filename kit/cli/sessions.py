"""Past sessions: history, report (and the gate), and the peak the reports compare with."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.peak import measure_peak
from kit.campaign.replay import ExportRequest, export_session
from kit.campaign.run import gate_baseline
from kit.cli import common
from kit.cli.common import (
    BaselineHistoryOpt,
    BaselineOpt,
    BaselineSessionOpt,
    CpusOpt,
    DbOpt,
    FailIfSlowerOpt,
    FormatOpt,
    GateOnOpt,
    GateUndecidedOpt,
    ResultsOpt,
    app,
    err,
    existing_db,
    open_db,
    out,
)
from kit.cli.measure import gate_status
from kit.cli.ui import TerminalFeedback
from kit.cpus import parse_cpu_list
from kit.errors import UsageError
from kit.inputs import check_output_file, prepare_folder, write_text
from kit.judging.gate import Gate, GateOn, Undecided
from kit.judging.history import judge
from kit.judging.series import select, series_of, split_cell
from kit.planning.placement import CpuSelection
from kit.reporting.files import StoredForSite, write_html, write_plots, write_site
from kit.reporting.site import BUNDLE_SUFFIX, SessionEntry
from kit.reporting.table import Format, check_baseline, render, render_listing
from kit.reporting.trend import render_trends, trends
from kit.store.folder import DB_NAME
from kit.store.past import load_stored


@app.command()
def history(
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
    limit: Annotated[
        int, typer.Option(help="How many sessions, newest first.", min=1, max=100_000)
    ] = 20,
    cell: Annotated[
        str | None,
        typer.Option(
            help="One cell over time (IMAGE:PROFILE): every session's figure with its interval "
            "and provenance, and the change points found, with what changed at each.",
            metavar="IMAGE:PROFILE",
        ),
    ] = None,
    machine: Annotated[
        str | None, typer.Option(help="With --cell: only this machine's series (its hostname).")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Past sessions (when, host, images, profiles, best cell), or with --cell one cell's
    series over sessions and its change points."""

    if cell is None and machine is not None:
        raise UsageError("--machine goes with --cell", "pass --cell IMAGE:PROFILE too")
    if cell is not None:
        split_cell(cell)  # refused before the database is opened
        with open_db(db, results) as store:
            # every cell's series only when this one has none, to name the ones there are
            found = series_of(store.history(cell)) or series_of(store.history())
        found = select(found, cell, machine)
        out.print(render_trends(trends(found), fmt), markup=False)
        return
    with open_db(db, results) as store:
        sessions = store.sessions(limit)
        knobs = {s.id: store.knob_values(s.id) for s in sessions}
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
    out.print(render_listing(rows, headers, fmt, "sessions"), markup=False)


def _command(meta: dict) -> str:
    if meta.get("replay_of"):
        return f"replay of {meta['replay_of']}"
    argv = meta.get("argv") or []
    return str(argv[0]) if argv and not str(argv[0]).startswith("-") else "?"


def _cells(profiles: tuple[str, ...], knobs: dict[str, dict[str, str]]) -> str:
    """The profiles, or for a sweep or tune the knobs it varied."""
    names = list(dict.fromkeys(k for values in knobs.values() for k in values))
    return f"knobs {', '.join(names)}" if names else ", ".join(profiles)


class ReportFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


@app.command()
def report(
    session: Annotated[
        str, typer.Argument(help="Session id, a unique prefix of one, or 'latest'.")
    ] = "latest",
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
    plot: Annotated[
        bool, typer.Option(help="Write PNG plots (bar chart, per-CPU heatmaps) to the session.")
    ] = False,
    baseline: BaselineOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the report here (html's default: SESSION/report.html)."),
    ] = None,
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
    baseline_session: BaselineSessionOpt = None,
    baseline_history: BaselineHistoryOpt = None,
    fail_if_slower: FailIfSlowerOpt = None,
    gate_on: GateOnOpt = GateOn.throughput,
    gate_undecided: GateUndecidedOpt = Undecided.fail,
) -> None:
    """Re-render a past session: table, CSV, JSON, or one HTML file with plots.

    The HTML holds the table, the plots, every run's provenance and the verify results. With
    --baseline-session and --fail-if-slower this is also the regression gate, for CI.
    """
    if output is not None:
        check_output_file(output, "--output")
    gate = Gate.from_options(baseline_session, fail_if_slower, gate_on, gate_undecided,
                             baseline_history)  # fmt: skip
    stored = load_stored(existing_db(db, results), session)
    gate_runs = (
        gate_baseline(gate, results, db or results / DB_NAME, stored.session_id)
        if gate is not None
        else None
    )
    found = list(stored.runs)
    check_baseline([r.key for r in found], baseline)
    if fmt is ReportFormat.html or plot:
        _write_files(stored, results / stored.session_id, fmt, baseline, output)
    if fmt is not ReportFormat.html:
        text = render(found, Format(fmt.value), baseline, stored.peaks)
        if output is None:
            out.print(text, markup=False)
        else:
            write_text(output, text + "\n", "--output")
            err.print(f"report: {output}", markup=False)
    _gate(found, gate, gate_runs)


def _write_files(stored, folder: Path, fmt, baseline: str | None, output: Path | None) -> None:
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
    if gate is not None and gate_runs is not None:
        gate_status(judge(found, gate_runs, gate))


@app.command()
def peak(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="A flavor or image reference.")],
    cpus: CpusOpt = None,
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
) -> None:
    """Measure this host's float32 GEMM peak inside IMAGE; reports then show % of peak."""

    selection = CpuSelection(cpus=parse_cpu_list(cpus, what="--cpus") if cpus else None)
    found = measure_peak(
        image, selection, common.engine_maker(ctx), results, db, TerminalFeedback(err)
    )
    out.print(f"{found.image}: {found.gflops:.1f} GFLOP/s float32 GEMM on {found.host}")


@app.command()
def site(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to write the site to.")
    ] = Path("site"),
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="MACHINE=USD: the machine's price per hour, for the cost of a million images "
            "(repeatable; MACHINE is the hostname the sessions recorded).",
            metavar="MACHINE=USD",
        ),
    ] = None,
    bundles: Annotated[
        bool,
        typer.Option(help="Write each session's bundle into the site to download (kit export)."),
    ] = False,
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
) -> None:
    """Write a static results site: every machine x cell with its latest figure, trend and
    cost; a page a cell with its plot, change points and what changed; a page a session."""

    prices = parse_prices(price or [])
    folder = prepare_folder(output, "--output")
    with open_db(db, results) as store:
        history = store.history()
        listed = store.sessions()
    runs = {s.session_id: s.runs for s in history}
    sessions = [StoredForSite(_entry(s), runs.get(s.id, ()), s.meta) for s in listed]
    carried = _bundles(ctx, folder, [s.id for s in listed], results, db) if bundles else []
    written = write_site(folder, trends(series_of(history)), sessions, prices, carried)
    err.print(
        f"site: {written.folder / 'index.html'} ({written.plots} series, {len(sessions)} "
        f"sessions, {written.pages} pages)",
        markup=False,
    )


def _bundles(ctx, folder: Path, ids: list[str], results: Path, db: Path | None) -> list[str]:
    """Each session that still has its folder, exported into the site's bundles/."""
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
