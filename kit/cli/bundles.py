"""Sessions that travel: export, import, replay, diff -- options -> request -> core -> table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.replay import (
    ExportRequest,
    ReplayRequest,
    check_tolerance,
    compare_sessions,
    export_session,
    import_bundle,
    load_source,
)
from kit.campaign.replay import replay as run_replay
from kit.campaign.request import How, Where
from kit.campaign.schedules.adaptive import Adaptive
from kit.cli.common import (
    DbOpt,
    EngineOpt,
    FormatOpt,
    GateUndecidedOpt,
    HostOpt,
    ResultsOpt,
    ResumeOpt,
    app,
    engine_maker,
    err,
    existing_db,
    out,
)
from kit.cli.measure import gate_status
from kit.cli.ui import TerminalFeedback
from kit.engines.endpoints import parse_hosts
from kit.engines.factory import EngineKind
from kit.errors import RunFailed, UsageError
from kit.judging.gate import Gate, Undecided, judge_cells
from kit.judging.reproduce import DIFF_HEADERS, diff_rows
from kit.reporting.table import Format, listing, render_tables
from kit.store.bundle import open_bundle
from kit.store.database import ResultsDB
from kit.store.folder import check_writable

BundleArg = Annotated[
    Path, typer.Argument(help="A bundle made by `kit export` (.tar.zst/.tar.gz).")
]
ToleranceOpt = Annotated[
    float,
    typer.Option(
        help="A cell reproduces when within noise, or within this many percent.",
    ),
]
DiffFailOpt = Annotated[
    float | None,
    typer.Option(
        help="Exit 1 when a cell is significantly slower in the second session by more than "
        "this many percent.",
    ),
]


@app.command("export")
def export(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id, unique prefix or 'latest'.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The bundle to write (.tar.zst or .tar.gz).")
    ],
    with_images: Annotated[
        bool, typer.Option(help="Carry the images too (one archive, shared layers once).")
    ] = False,
    host: Annotated[
        str | None, typer.Option("--host", "-H", help="The Docker engine holding the images.")
    ] = None,
    results: ResultsOpt = Path("results"),
    db: DbOpt = None,
) -> None:
    """One session as one file: plan, recipe, profiles, every run's record and log, a system
    description per machine, the images' ids and digests, a manifest of sha256 sums."""

    endpoint = parse_hosts([host])[0] if host else None
    request = ExportRequest(session, output, results, existing_db(db, results), with_images,
                            endpoint)  # fmt: skip
    written = export_session(request, engine_maker(ctx), TerminalFeedback(err))
    out.print(
        f"{written.path}: {written.members} members, {written.size / 2**20:.1f} MB",
        markup=False,
    )


@app.command("import")
def import_(bundle: BundleArg, results: ResultsOpt = Path("results"), db: DbOpt = None) -> None:
    """Put a bundle's session into the results folder and database (`kit report`, `kit diff`)."""

    check_writable(results)
    db_path = How(results, db).db_path
    ResultsDB.check(db_path)
    with open_bundle(bundle) as opened, ResultsDB(db_path) as store:
        done = import_bundle(opened, results, store)
    said = "imported" if done.new else "already imported"
    out.print(f"{said}: session {done.session_id} in {done.folder}", markup=False)


@app.command()
def replay(
    ctx: typer.Context,
    bundle: BundleArg,
    repeats: Annotated[
        str | None,
        typer.Option(help="Runs per cell, or auto (default: as many as the original had)."),
    ] = None,
    allow_different_image: Annotated[
        bool,
        typer.Option(
            help="Run even where this engine's image differs from the session's "
            "(recorded in the replay)."
        ),
    ] = False,
    tolerance: ToleranceOpt = 5.0,
    registry: Annotated[
        str | None,
        typer.Option(help="Pull images this engine lacks by their recorded digests from here."),
    ] = None,
    engine: EngineOpt = None,
    host: HostOpt = None,
    resume: ResumeOpt = None,
    results: ResultsOpt = Path("results"),
    db: DbOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run a bundle's plan on this host (its images from the bundle or the same ids here),
    placed on this host's CPUs, then per cell: there, here, ratio, verdict; and what differs
    between the two machines."""

    count, adaptive = None, None
    if repeats is not None and repeats.strip().lower() == "auto":
        adaptive = Adaptive()
    elif repeats is not None:
        if not repeats.strip().isdigit() or not 1 <= int(repeats) <= 1000:
            raise UsageError(f"--repeats {repeats!r} is neither a number (1-1000) nor auto")
        count = int(repeats)
    where = Where(tuple(engine or [EngineKind.auto]), tuple(parse_hosts(host or [])))
    request = ReplayRequest(
        bundle, where, How(results, db, resume), count, adaptive,
        allow_different_image=allow_different_image, tolerance=check_tolerance(tolerance),
        registry=registry,
    )  # fmt: skip
    feedback = TerminalFeedback(err)
    done = run_replay(request, engine_maker(ctx), feedback)
    _show_comparison(done.comparison, fmt)
    err.print(f"results: {done.finished.folder} (a replay of {done.comparison.there})")
    if done.finished.failed:
        raise RunFailed(
            f"{len(done.finished.failed)} of {len(done.finished.runs)} runs were not ok "
            "(failed, INVALID or disturbed)",
            f"see the logs in {done.finished.folder}",
        )


@app.command()
def diff(
    first: Annotated[str, typer.Argument(help="Session id (or 'latest') or a bundle file.")],
    second: Annotated[str, typer.Argument(help="Session id (or 'latest') or a bundle file.")],
    tolerance: ToleranceOpt = 5.0,
    fail_if_slower: DiffFailOpt = None,
    gate_undecided: GateUndecidedOpt = Undecided.fail,
    results: ResultsOpt = Path("results"),
    db: DbOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Two sessions cell by cell (there = FIRST, here = SECOND) and what differs between
    their machines."""

    if fail_if_slower is not None and not 0 <= fail_if_slower < 100:
        raise UsageError(f"--fail-if-slower takes a percentage in [0, 100), got {fail_if_slower}")
    share = check_tolerance(tolerance)
    db_path = How(results, db).db_path
    a, b = load_source(first, results, db_path), load_source(second, results, db_path)
    comparison = compare_sessions(a, b, share)
    _show_comparison(comparison, fmt)
    if fail_if_slower is not None:
        gate = Gate(a[0], fail_if_slower, undecided=gate_undecided)
        gate_status(judge_cells(b[1], a[1], gate, comparison.there))


def _show_comparison(comparison, fmt: Format = Format.table) -> None:
    """The cells there and here, and what differs between the machines, in ``fmt``."""
    tables = [listing("cells", DIFF_HEADERS, diff_rows(comparison.cells))]
    title = "what differs between the machines:"
    if comparison.systems or fmt is not Format.table:
        tables.append(listing("machines", ["what", "there", "here"], comparison.systems, title))
    meta = {"there": comparison.there, "here": comparison.here}
    out.print(render_tables(tables, fmt, meta), markup=False)
    if not comparison.systems and fmt is Format.table:
        out.print("\nthe two machines' descriptions are the same", markup=False)
