"""Sessions that travel: export, import, replay, diff -- options -> request -> core -> table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kit.cli.common import app, engine_maker, err, existing_db, out
from kit.cli.declare import command
from kit.cli.options import Options
from kit.engines.kinds import EngineKind
from kit.errors import RunFailed, UsageError
from kit.judging.choices import Undecided
from kit.reporting.formats import Format

BundleArg = Annotated[
    Path, typer.Argument(help="A bundle made by `kit export` (.tar.zst/.tar.gz).")
]


@command(app, "export", Options)
def export(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id, unique prefix or 'latest'.")],
    o: Options,
) -> None:
    """One session as one file: plan, recipe, profiles, every run's record and log, a system
    description per machine, the images' ids and digests, a manifest of sha256 sums."""
    from kit.campaign.replay import ExportRequest, export_session
    from kit.cli.hosts import one_host
    from kit.cli.ui import TerminalFeedback
    from kit.engines.endpoints import parse_hosts

    host = one_host(o.host, "kit export reads the images of one engine")
    endpoint = parse_hosts([host])[0] if host else None
    request = ExportRequest(session, o.output, o.results, existing_db(o.db, o.results),
                            o.with_images, endpoint)  # fmt: skip
    written = export_session(request, engine_maker(ctx), TerminalFeedback(err))
    out.print(
        f"{written.path}: {written.members} members, {written.size / 2**20:.1f} MB",
        markup=False,
    )


@command(app, "import", Options)
def import_(bundle: BundleArg, o: Options) -> None:
    """Put a bundle's session into the results folder and database (`kit report`, `kit diff`)."""
    from kit.campaign.replay import import_bundle
    from kit.campaign.request import How
    from kit.store.bundle import open_bundle
    from kit.store.database import ResultsDB
    from kit.store.folder import check_writable

    results = o.results
    check_writable(results)
    db_path = How(results, o.db).db_path
    ResultsDB.check(db_path)
    with open_bundle(bundle) as opened, ResultsDB(db_path) as store:
        done = import_bundle(opened, results, store)
    said = "imported" if done.new else "already imported"
    out.print(f"{said}: session {done.session_id} in {done.folder}", markup=False)


@command(app, "replay", Options)
def replay(ctx: typer.Context, bundle: BundleArg, o: Options) -> None:
    """Run a bundle's plan on this host (its images from the bundle or the same ids here),
    placed on this host's CPUs, then per cell: there, here, ratio, verdict; and what differs
    between the two machines."""
    from kit.campaign.replay import ReplayRequest, check_tolerance
    from kit.campaign.replay import replay as run_replay
    from kit.campaign.request import How, Where
    from kit.campaign.schedules.adaptive import Adaptive
    from kit.cli.ui import TerminalFeedback
    from kit.engines.endpoints import parse_hosts

    repeats = o.repeats
    count, adaptive = None, None
    if repeats is not None and repeats.strip().lower() == "auto":
        adaptive = Adaptive()
    elif repeats is not None:
        if not repeats.strip().isdigit() or not 1 <= int(repeats) <= 1000:
            raise UsageError(f"--repeats {repeats!r} is neither a number (1-1000) nor auto")
        count = int(repeats)
    where = Where(tuple(o.engine or (EngineKind.auto,)), tuple(parse_hosts(list(o.host))))
    request = ReplayRequest(
        bundle, where, How(o.results, o.db, o.resume), count, adaptive,
        allow_different_image=o.allow_different_image, tolerance=check_tolerance(o.tolerance),
        registry=o.registry,
    )  # fmt: skip
    feedback = TerminalFeedback(err)
    done = run_replay(request, engine_maker(ctx), feedback)
    _show_comparison(done.comparison, o.fmt)
    err.print(f"results: {done.finished.folder} (a replay of {done.comparison.there})")
    if done.finished.failed:
        raise RunFailed(
            f"{len(done.finished.failed)} of {len(done.finished.runs)} runs were not ok "
            "(failed, INVALID or disturbed)",
            f"see the logs in {done.finished.folder}",
        )


@command(app, "diff", Options)
def diff(
    first: Annotated[str, typer.Argument(help="Session id (or 'latest') or a bundle file.")],
    second: Annotated[str, typer.Argument(help="Session id (or 'latest') or a bundle file.")],
    o: Options,
) -> None:
    """Two sessions cell by cell (there = FIRST, here = SECOND) and what differs between
    their machines."""
    from kit.campaign.replay import check_tolerance, compare_sessions, load_source
    from kit.campaign.request import How
    from kit.cli.measure import gate_status
    from kit.judging.gate import Gate, judge_cells

    fail_if_slower = o.fail_if_slower
    if fail_if_slower is None and o.gate_undecided is not Undecided.fail:
        raise UsageError("--gate-undecided goes with --fail-if-slower", "pass it too")
    if fail_if_slower is not None and not 0 <= fail_if_slower < 100:
        raise UsageError(f"--fail-if-slower takes a percentage in [0, 100), got {fail_if_slower}")
    share = check_tolerance(o.tolerance)
    db_path = How(o.results, o.db).db_path
    a, b = load_source(first, o.results, db_path), load_source(second, o.results, db_path)
    comparison = compare_sessions(a, b, share)
    _show_comparison(comparison, o.fmt)
    if fail_if_slower is not None:
        gate = Gate(a[0], fail_if_slower, undecided=o.gate_undecided)
        gate_status(judge_cells(b[1], a[1], gate, comparison.there))


def _show_comparison(comparison, fmt: Format = Format.table) -> None:
    """The cells there and here, and what differs between the machines, in ``fmt``."""
    from kit.judging.reproduce import ANSWER_HEADERS, DIFF_HEADERS, answer_rows, diff_rows
    from kit.reporting.table import listing, render_tables

    tables = [listing("cells", DIFF_HEADERS, diff_rows(comparison.cells))]
    if comparison.answers or fmt is not Format.table:
        title = "the session's answer: each cell over the baseline, within each round:"
        tables.append(listing("answers", ANSWER_HEADERS, answer_rows(comparison.answers),
                              title))  # fmt: skip
    title = "what differs between the machines:"
    if comparison.systems or fmt is not Format.table:
        tables.append(listing("machines", ["what", "there", "here"], comparison.systems, title))
    meta = {"there": comparison.there, "here": comparison.here}
    out.print(render_tables(tables, fmt, meta), markup=False, fit=False)
    if not comparison.systems and fmt is Format.table:
        out.print("\nthe two machines' descriptions are the same", markup=False)
