"""Past sessions: history, report (and the gate), and the peak the reports compare with."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.peak import measure_peak
from kit.campaign.run import gate_baseline
from kit.cli import common
from kit.cli.common import (
    BaselineOpt,
    BaselineSessionOpt,
    CpusOpt,
    DbOpt,
    FailIfSlowerOpt,
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
from kit.inputs import check_output_file, write_text
from kit.judging.gate import Gate, GateOn, Undecided, judge_cells
from kit.planning.placement import CpuSelection
from kit.reporting.files import write_html, write_plots
from kit.reporting.table import Format, check_baseline, render, tabulate_rows
from kit.store.folder import DB_NAME
from kit.store.past import load_stored


@app.command()
def history(
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
    limit: Annotated[
        int, typer.Option(help="How many sessions, newest first.", min=1, max=100_000)
    ] = 20,
) -> None:
    """Past sessions: when, host, images, profiles, best cell."""

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
    out.print(tabulate_rows(rows, headers), markup=False)


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
    gate = Gate.from_options(baseline_session, fail_if_slower, gate_on, gate_undecided)
    gate_runs = gate_baseline(gate, results, db or results / DB_NAME) if gate is not None else None
    stored = load_stored(existing_db(db, results), session)
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
        gate_status(judge_cells(found, gate_runs, gate))


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
