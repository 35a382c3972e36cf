"""Measuring: compare, run, verify and plan -- options -> request -> core -> table -> exit status.

Their options are declared in ``kit.cli.options``; ``kit.cli.measure_request`` makes them one
typed request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from kit.cli.common import app, engine_maker, err, out
from kit.cli.declare import command
from kit.cli.options import ImageArg, ImagesArg, Options
from kit.engines.kinds import EngineKind
from kit.errors import KitError, RunFailed, UsageError
from kit.judging.choices import Undecided
from kit.reporting.formats import Format

if TYPE_CHECKING:
    from kit.campaign.request import CampaignRequest
    from kit.campaign.run import Finished
    from kit.cli.measure_request import MeasureRequest, Shown
    from kit.cli.ui import TerminalFeedback
    from kit.engines.base import Engine
    from kit.judging.gate import GateResult


def _measuring(name: str):
    return command(app, name, Options)


@_measuring("compare")
def compare(ctx: typer.Context, images: ImagesArg, o: Options) -> None:
    """Run every IMAGE under every profile and tabulate images/sec and speedup, then what the
    build and the settings each earned (the best cell against the baseline, change by change)."""
    from kit.cli.measure_request import measure_request

    _measure(ctx, measure_request("compare", tuple(images), o), findings=True)


@_measuring("run")
def run(ctx: typer.Context, image: ImageArg, o: Options) -> None:
    """Run one IMAGE under one profile."""
    from kit.cli.measure_request import measure_request

    _measure(ctx, measure_request("run", (image,), o))


@_measuring("verify")
def verify(ctx: typer.Context, images: ImagesArg, o: Options) -> None:
    """Prove which oneDNN path each IMAGE runs (a short run with oneDNN verbose on).

    Reports oneDNN's version, threading runtime, ISA, the primitives it executed, the time share
    of unoptimized ref: implementations, and settings that cannot have had an effect.
    """
    from kit.cli.measure_request import measure_request

    _measure(ctx, measure_request("verify", tuple(images), o))


@_measuring("plan")
def plan(ctx: typer.Context, images: ImagesArg, o: Options) -> None:
    """What `compare` with these options would run, and for about how long: the topology used,
    per cell its cpuset, memory nodes, CPUs, numactl, threads, env and limits, and the line
    that reruns it by hand in its engine's own form. Starts nothing (with --host, kit's probe
    reads the host's topology)."""
    from kit.cli.measure_request import measure_request

    show_plan(ctx, measure_request("plan", tuple(images), o))


def show_plan(ctx: typer.Context, measured: MeasureRequest) -> None:
    from kit.campaign.preview import plan_view
    from kit.images.delivery import check_named_images
    from kit.reporting.preview import format_plan

    request, shown = measured.campaign, measured.shown
    if shown.threads_per_core is not None and shown.topology is None:
        raise UsageError("--threads-per-core goes with --topology", "pass both, or neither")
    if shown.topology is not None and request.where.hosts:
        raise UsageError("--topology and --host each give the plan a machine", "pass one")
    maker = engine_maker(ctx)
    refs = request.what.image_refs
    named = []  # an image that is not a flavor is asked of its engine first: a typo is refused
    if not request.where.hosts and any(r.flavor is None for r in refs):  # before any plan line
        named = check_named_images(refs, _plan_engine(maker, request))
    view = plan_view(request, maker, shown.topology, shown.threads_per_core)
    for note in [*view.notes, *named]:
        err.print(note, markup=False)
    out.print(format_plan(view.runs, shown.fmt, view.summary), markup=False, fit=False)


def _plan_engine(maker, request: CampaignRequest) -> Engine | None:
    """The engine a plan's images would run on, to ask whether it has them (None: a cluster,
    or no engine to make here)."""
    kind = request.where.kinds[0]
    if kind is EngineKind.slurm:
        return None
    try:
        return maker.engine(kind)
    except KitError:
        return None


def _measure(ctx: typer.Context, measured: MeasureRequest, findings: bool = False) -> None:
    from kit.campaign.run import execute, prepare

    feedback = feedback_for(measured.shown)
    finished = execute(prepare(measured.campaign, engine_maker(ctx), feedback), feedback)
    show_finished(finished, measured.shown, feedback)
    if findings and measured.shown.fmt in (Format.table, Format.markdown):
        show_findings(finished.runs, measured.shown.baseline)
    exit_status(finished)


def show_findings(runs, baseline: str | None, best: str | None = None) -> None:

    from kit.judging.analysis import attribute, scaling
    from kit.reporting.findings import format_attribution, format_scaling

    curves = scaling(runs)
    if curves:
        out.print("\n" + format_scaling(curves), markup=False, fit=False)
    found = attribute(runs, baseline, best)
    if found is not None:
        out.print("\n" + format_attribution(found), markup=False, fit=False)


def feedback_for(shown: Shown) -> TerminalFeedback:
    """A measuring command's feedback: its --export-* files, and the table after each round
    when the output is text."""
    from kit.cli.ui import TerminalFeedback

    rounds = shown.fmt in (Format.table, Format.markdown)
    return TerminalFeedback(err, dict(shown.exports), rounds=rounds)


def show_finished(finished: Finished, shown: Shown, feedback: TerminalFeedback) -> None:
    """The table (and verify's), and the --export-* files of the whole session (a resumed one's
    earlier runs too)."""
    from kit.judging.verify import VERIFY_HEADERS, verify_rows
    from kit.reporting.files import write_exports
    from kit.reporting.table import fit_with_notes, listing, render, render_tables, tabulate_rows

    if feedback.exports:
        write_exports(finished.runs, feedback.exports, shown.baseline)
    if finished.runs:
        text = render(finished.runs, shown.fmt, shown.baseline, wide=shown.wide)
        out.print(text, markup=False, fit=False)
    one_document = shown.fmt in (Format.json, Format.csv) and finished.runs
    if finished.verified and one_document:  # stdout holds the runs' document alone
        err.print(
            "verify: oneDNN's proof is in the session's record and its HTML report "
            "(`kit report latest -f html`)"
        )
    elif finished.verified:
        table = verify_rows(list(finished.verified))
        if shown.fmt is not Format.table:
            text = render_tables([listing("verify", VERIFY_HEADERS, table)], shown.fmt)
        elif shown.wide:
            text = tabulate_rows(table, VERIFY_HEADERS)
        else:
            text = fit_with_notes(VERIFY_HEADERS, table, ("ISA", "primitives executed", "notes"))
        out.print(text, markup=False, fit=False)
    err.print(f"results: {finished.folder} (summary.md, a log and a JSON record per run)")


def gate_status(result: GateResult | None) -> None:
    """The gate's verdict: RunFailed naming each cell that fails it (slower, or undecided unless
    --gate-undecided pass), else one line saying it held."""
    from kit.judging.gate import Outcome

    if result is None:
        return
    than = result.than
    percent, undecided = result.percent, result.of(Outcome.undecided)
    if result.undecided is Undecided.passed:
        for d in undecided:
            err.print(f"gate: undecided, passed as --gate-undecided asks: {d.line}", markup=False)
    if result.held:
        passed = len(result.of(Outcome.passed))
        err.print(f"gate: no cell is more than {percent:g}% slower than {than} ({passed} decided)")
        return
    failed = result.of(Outcome.failed)
    parts = []
    if failed:
        lines = "; ".join(d.line for d in failed)
        parts.append(f"{len(failed)} cell(s) slower than {than} by more than {percent:g}%: {lines}")
    if undecided and result.undecided is Undecided.fail:
        lines = "; ".join(d.line for d in undecided)
        parts.append(f"{len(undecided)} cell(s) undecided: {lines}")
    hint = "an undecided cell fails the gate: repeat more (--repeats auto), or pass "
    raise RunFailed(". ".join(parts), None if failed else hint + "--gate-undecided pass")


def exit_status(finished: Finished) -> None:
    gate_status(finished.gate)
    lost = finished.lost
    if lost:
        others = len(finished.failed) - len(lost)
        raise RunFailed(
            f"{len(lost)} of {len(finished.runs)} runs were lost by their engine before they "
            f"ended ({lost[0].cause})" + (f"; {others} more were not ok" if others else ""),
            f"finish them with the same command plus --resume {finished.session_id} (it runs "
            "only what is missing, the lost runs included)",
        )
    if finished.failed:
        raise RunFailed(
            f"{len(finished.failed)} of {len(finished.runs)} runs were not ok (failed, INVALID "
            "or disturbed)",
            f"see the status column and the logs in {finished.folder}",
        )
