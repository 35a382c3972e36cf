"""Measuring: compare, run, verify and plan -- options -> request -> core -> table -> exit status.

The four commands share one option set, ``MeasureOptions`` (``kit.cli.measure_request``).
"""

import inspect
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.plan import plan_view
from kit.campaign.request import CampaignRequest
from kit.campaign.run import Finished, execute, prepare
from kit.cli.common import (
    app,
    engine_maker,
    err,
    out,
)
from kit.cli.measure_request import (
    ImageArg,
    MeasureOptions,
    OneProfileOpt,
    exports_of,
    request_of,
)
from kit.cli.ui import TerminalFeedback
from kit.engines.base import Engine
from kit.engines.factory import EngineKind
from kit.errors import KitError, RunFailed, UsageError
from kit.images.delivery import check_named_images
from kit.judging.analysis import attribute, scaling
from kit.judging.gate import GateResult, Outcome, Undecided
from kit.judging.verify import VERIFY_HEADERS, verify_rows
from kit.reporting.files import write_exports
from kit.reporting.findings import format_attribution, format_scaling
from kit.reporting.plan import PlanFormat, format_plan
from kit.reporting.table import (
    Format,
    fit_with_notes,
    listing,
    render,
    render_tables,
    tabulate_rows,
)


def measure_command(
    name: str,
    *,
    drop: tuple[str, ...] = (),
    defaults: dict | None = None,
    swap: dict[str, tuple[str, object, object]] | None = None,
    extra: tuple[inspect.Parameter, ...] = (),
) -> Callable:
    """Register ``body(ctx, options, **extra)`` as command ``name`` taking MeasureOptions'
    options, less ``drop``, with other ``defaults``; ``swap`` gives an option another name and
    type (name -> (new name, annotation, default)), the value wrapped in a list."""
    defaults, swap = defaults or {}, swap or {}
    keep = [f for f in fields(MeasureOptions) if f.name not in drop]
    given = inspect.signature(MeasureOptions, eval_str=True).parameters

    def parameter(f) -> inspect.Parameter:
        if f.name in swap:
            new, annotation, default = swap[f.name]
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
            return inspect.Parameter(new, kind, annotation=annotation, default=default)
        return given[f.name].replace(default=defaults.get(f.name, given[f.name].default))

    ctx = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    params = [ctx, *(parameter(f) for f in keep), *extra]
    extra_names = {p.name for p in extra}

    def decorate(body: Callable) -> Callable:
        def command(ctx: typer.Context, **values: object) -> None:
            for old, (new, _, _) in swap.items():
                values[old] = [values.pop(new)]
            more = {k: values.pop(k) for k in list(values) if k in extra_names}
            options = replace(MeasureOptions(images=[]), **{**defaults, **values})
            body(ctx, options, **more)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = body.__doc__
        app.command(name)(command)
        return body

    return decorate


@measure_command("compare")
def compare(ctx: typer.Context, options: MeasureOptions) -> None:
    """Run every IMAGE under every profile and tabulate images/sec and speedup, then what the
    build and the settings each earned (the best cell against the baseline, change by change)."""
    _measure(ctx, options, findings=True)


@measure_command(
    "run",
    drop=("baseline", "baseline_session", "baseline_history", "fail_if_slower"),
    defaults={"repeats": "1"},
    swap={"images": ("image", ImageArg, inspect.Parameter.empty),
          "profile": ("profile", OneProfileOpt, "default")},
)  # fmt: skip
def run(ctx: typer.Context, options: MeasureOptions) -> None:
    """Run one IMAGE under one profile."""
    _measure(ctx, options)


VERIFY_KEEPS = ("images", "profile", "profiles_file", "model", "results", "engine", "host", "db",
                "fmt", "cpus", "allow_concurrent", "mode", "precision", "allocator",
                "allow_emulated")  # fmt: skip


@measure_command(
    "verify",
    drop=tuple(f.name for f in fields(MeasureOptions) if f.name not in VERIFY_KEEPS),
    defaults={"timeout": 1800.0, "repeats": "1", "profile": None},
)
def verify(ctx: typer.Context, options: MeasureOptions) -> None:
    """Prove which oneDNN path each IMAGE runs (a short run with oneDNN verbose on).

    Reports oneDNN's version, threading runtime, ISA, the primitives it executed, the time share
    of unoptimized ref: implementations, and settings that cannot have had an effect.
    """
    _measure(ctx, replace(options, profile=options.profile or ["default"]), measure=False)


TopologyOpt = Annotated[
    Path | None,
    typer.Option(
        help="Plan for another host: its `lscpu -p`, `kit topology --json` or `numactl -H` "
        "(with --threads-per-core) output saved to a file (default: this host).",
        dir_okay=False,
    ),
]
ThreadsPerCoreOpt = Annotated[
    int | None,
    typer.Option(
        min=1, max=8,
        help="With a `numactl -H` --topology: SMT threads per core (it does not say; 1 without "
        "SMT). Siblings are taken as Linux numbers most x86 servers: n and n + CPUs/2.",
    ),
]  # fmt: skip
PlanFormatOpt = Annotated[PlanFormat, typer.Option("--format", "-f", help="How to print the plan.")]
# What plan leaves out: it starts nothing, so nothing of resume, image delivery or the gate.
PLAN_DROPS = ("baseline", "fmt", "export_json", "export_csv", "export_markdown", "wide",
              "build_missing", "allow_concurrent", "resume", "verify", "pull", "registry",
              "baseline_session", "baseline_history", "fail_if_slower", "gate_undecided",
              "keep_disturbed", "wait_quiet")  # fmt: skip
_KW = inspect.Parameter.POSITIONAL_OR_KEYWORD


@measure_command(
    "plan",
    drop=PLAN_DROPS,
    extra=(inspect.Parameter("topology", _KW, annotation=TopologyOpt, default=None),
           inspect.Parameter("threads_per_core", _KW, annotation=ThreadsPerCoreOpt,
                             default=None),
           inspect.Parameter("plan_format", _KW, annotation=PlanFormatOpt,
                             default=PlanFormat.table)),
)  # fmt: skip
def plan(
    ctx: typer.Context,
    options: MeasureOptions,
    topology: Path | None,
    threads_per_core: int | None,
    plan_format: PlanFormat,
) -> None:
    """What `compare` with these options would run, and for about how long: the topology used,
    per cell its cpuset, memory nodes, CPUs, numactl, threads, env and limits, and the line
    that reruns it by hand in its engine's own form. Starts nothing (with --host, kit's probe
    reads the host's topology)."""
    request = request_of(options)
    if threads_per_core is not None and topology is None:
        raise UsageError("--threads-per-core goes with --topology", "pass both, or neither")
    if topology is not None and request.where.hosts:
        raise UsageError("--topology and --host each give the plan a machine", "pass one")
    maker = engine_maker(ctx)
    view = plan_view(request, maker, topology, threads_per_core)
    for note in view.notes:
        err.print(note, markup=False)
    refs = request.what.image_refs
    if not request.where.hosts and any(r.flavor is None for r in refs):
        for note in check_named_images(refs, _plan_engine(maker, request)):
            err.print(note, markup=False)  # a flavor is kit's own: nothing to ask an engine
    out.print(format_plan(view.runs, plan_format, view.summary), markup=False)


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


def _measure(
    ctx: typer.Context, options: MeasureOptions, measure: bool = True, findings: bool = False
) -> None:
    request = request_of(options, measure=measure)
    feedback = feedback_for(options)
    finished = execute(prepare(request, engine_maker(ctx), feedback), feedback)
    show_finished(finished, options, feedback)
    if findings and options.fmt in (Format.table, Format.markdown):
        show_findings(finished.runs, options.baseline)
    exit_status(finished)


def show_findings(runs, baseline: str | None, best: str | None = None) -> None:

    curves = scaling(runs)
    if curves:
        out.print("\n" + format_scaling(curves), markup=False)
    found = attribute(runs, baseline, best)
    if found is not None:
        out.print("\n" + format_attribution(found), markup=False)


def feedback_for(options: MeasureOptions) -> TerminalFeedback:
    """A measuring command's feedback: its --export-* files (checked now, before any work), and
    the table after each round when the output is text."""
    rounds = options.fmt in (Format.table, Format.markdown)
    return TerminalFeedback(err, exports_of(options), rounds=rounds)


def show_finished(finished: Finished, options: MeasureOptions, feedback: TerminalFeedback) -> None:
    """The table (and verify's), and the --export-* files of the whole session (a resumed one's
    earlier runs too)."""
    if feedback.exports:
        write_exports(finished.runs, feedback.exports, options.baseline)
    if finished.runs:
        text = render(finished.runs, options.fmt, options.baseline, wide=options.wide)
        out.print(text, markup=False)
    one_document = options.fmt in (Format.json, Format.csv) and finished.runs
    if finished.verified and one_document:  # stdout holds the runs' document alone
        err.print(
            "verify: oneDNN's proof is in the session's record and its HTML report "
            "(`kit report latest -f html`)"
        )
    elif finished.verified:
        table = verify_rows(list(finished.verified))
        if options.fmt is not Format.table:
            text = render_tables([listing("verify", VERIFY_HEADERS, table)], options.fmt)
        elif options.wide:
            text = tabulate_rows(table, VERIFY_HEADERS)
        else:
            text = fit_with_notes(VERIFY_HEADERS, table, ("ISA", "primitives executed", "notes"))
        out.print(text, markup=False)
    err.print(f"results: {finished.folder} (summary.md, a log and a JSON record per run)")


def gate_status(result: GateResult | None) -> None:
    """The gate's verdict: RunFailed naming each cell that fails it (slower, or undecided unless
    --gate-undecided pass), else one line saying it held."""
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
