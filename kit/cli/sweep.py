"""Sweeping knobs: options -> a campaign whose cells are knob values -> table, scaling, ladder."""

import inspect
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.request import CampaignRequest
from kit.campaign.run import execute, prepare, winner_profile
from kit.campaign.schedules.budget import MAX_ROUNDS, Budget
from kit.campaign.schedules.confirm import CONFIRM_REPEATS, confirmed_outcome
from kit.campaign.schedules.race import outcome
from kit.campaign.schedules.tuning import Strategy, Tuning
from kit.cli.common import FormatOpt, app, engine_maker, err, out
from kit.cli.measure import (
    exit_status,
    feedback_for,
    measure_command,
    show_findings,
    show_finished,
)
from kit.cli.measure_request import MeasureOptions, request_of
from kit.errors import UsageError
from kit.inputs import check_output_file, write_text
from kit.model.profiles import load_profiles, to_toml
from kit.planning.knobs import KnobKind, load_knobs, parse_knob
from kit.planning.sweep import Sweep
from kit.reporting.findings import format_outcome
from kit.reporting.table import Format, compact_table, listing, render_tables

KnobOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--knob", "-k",
        help="NAME=V1,V2,... to vary (placeholders {cores} {threads} {nodes}, ranges 1..{cores}); "
        "repeat for a grid. `kit knobs` lists them.",
    ),
]  # fmt: skip
WhereOpt = Annotated[
    str | None,
    typer.Option(help="Keep only cells where this holds, e.g. 'inter * intra <= threads'."),
]
KnobsFile = Annotated[
    Path | None, typer.Option("--knobs", help="TOML file with more knobs.", dir_okay=False)
]
BaseOpt = Annotated[
    str, typer.Option("--profile", "-p", help="The base profile the knobs are set on.")
]
_KW = inspect.Parameter.POSITIONAL_OR_KEYWORD
TEXT = (Format.table, Format.markdown)  # the formats findings are printed below
ImagesOpt = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[IMAGE]...", help="Flavors or image references (or give them as --knob image=...)."
    ),
]
SWEEP_EXTRA = (
    inspect.Parameter("images", _KW, annotation=ImagesOpt, default=None),
    inspect.Parameter("knob", _KW, annotation=KnobOpt, default=None),
    inspect.Parameter("where", _KW, annotation=WhereOpt, default=None),
    inspect.Parameter("knobs_file", _KW, annotation=KnobsFile, default=None),
)


def sweep_request(
    options: MeasureOptions, knob: list[str], where: str | None, knobs_file: Path | None
) -> CampaignRequest:
    registry = load_knobs(knobs_file)
    knobs = tuple(parse_knob(text, registry) for text in knob)
    images = [v for k in knobs if k.knob.kind is KnobKind.image for v in k.raw]
    if images and options.images:
        raise UsageError(
            "images are named twice: as arguments and as --knob image=...", "name them once"
        )
    if not images and not options.images:
        raise UsageError("no image to sweep", "e.g. kit sweep intel --knob intra=1,2")
    request = request_of(replace(options, images=options.images or images))
    what = replace(request.what, sweep=Sweep(knobs, where))
    return replace(request, what=what)


@measure_command(
    "sweep",
    drop=("images",),
    swap={"profile": ("profile", BaseOpt, "default")},
    extra=SWEEP_EXTRA,
)  # fmt: skip
def sweep(
    ctx: typer.Context,
    options: MeasureOptions,
    images: list[str] | None,
    knob: list[str] | None,
    where: str | None,
    knobs_file: Path | None,
) -> None:
    """Run every combination of knob values on a base profile, interleaved; cells that cannot
    differ here are merged and said. Prints a column per knob, the scaling curve when cores vary
    and what each change earned."""
    request = sweep_request(replace(options, images=images or []), knob or [], where, knobs_file)
    feedback = feedback_for(options)
    finished = execute(prepare(request, engine_maker(ctx), feedback), feedback)
    show_finished(finished, options, feedback)
    if options.fmt in TEXT:
        show_findings(finished.runs, options.baseline)
    exit_status(finished)


BudgetOpt = Annotated[
    str, typer.Option(help="What the search may spend: runs (40runs) or time (45m, 2h).")
]
StrategyOpt = Annotated[
    Strategy,
    typer.Option(
        help="race: drop cells once significantly slower than the leader; grid: every cell; "
        "model: Optuna's TPE sampler, for spaces too big to race."
    ),
]
SaveOpt = Annotated[
    Path | None,
    typer.Option(help="Write the winner as a profile to this TOML file.", dir_okay=False),
]
# A tune's search decides repeats and the baseline (default); it runs on this machine's engine.
TUNE_DROPS = ("images", "repeats", "ci_width", "min_repeats", "max_repeats", "baseline",
              "baseline_session", "baseline_history", "fail_if_slower", "host")  # fmt: skip
TUNE_EXTRA = (
    *SWEEP_EXTRA,
    inspect.Parameter("budget", _KW, annotation=BudgetOpt, default="45m"),
    inspect.Parameter("strategy", _KW, annotation=StrategyOpt, default=Strategy.race),
    inspect.Parameter("save_profile", _KW, annotation=SaveOpt, default=None),
)


@measure_command(
    "tune",
    drop=TUNE_DROPS,
    swap={"profile": ("profile", BaseOpt, "default")},
    extra=TUNE_EXTRA,
)  # fmt: skip
def tune(
    ctx: typer.Context,
    options: MeasureOptions,
    images: list[str] | None,
    knob: list[str] | None,
    where: str | None,
    knobs_file: Path | None,
    budget: str,
    strategy: Strategy,
    save_profile: Path | None,
) -> None:
    """Search for the fastest settings under a budget: the built-in profiles and the knobs' grid,
    raced on kit's statistics (a cell is dropped once significantly slower than the leader). Ends
    with the best, its speedup over `default` with a 95% interval, the runs and minutes it took,
    the cells it could not tell apart from the best, and what each change earned."""

    if save_profile is not None:
        check_output_file(save_profile, "--save-profile")
    tuning = Tuning(Budget.parse(budget), strategy)
    request = tune_request(replace(options, images=images or []), knob or [], where, knobs_file,
                           tuning)  # fmt: skip
    feedback = feedback_for(options)
    prepared = prepare(request, engine_maker(ctx), feedback)
    finished = execute(prepared, feedback)
    show_finished(finished, options, feedback)
    baseline = prepared.plan[0].key
    schedule = tuning.schedule(prepared.plan, baseline)
    searched, _ = schedule.split(prepared.plan, finished.runs)
    cut = schedule.cut(prepared.plan)
    search_plan = [s for s in prepared.plan if s.repeat < cut]
    found = outcome(search_plan, baseline, schedule.search, searched)
    if found is not None:
        found = confirmed_outcome(found, schedule, prepared.plan, finished.runs)
    if found is not None:  # with --format json/csv on stdout, the answer goes to stderr
        (out if options.fmt in TEXT else err).print("\n" + format_outcome(found, baseline),
                                                    markup=False)  # fmt: skip
        if options.fmt in TEXT:
            show_findings(finished.runs, baseline, found.best)
    if save_profile is not None and found is not None:
        _save(winner_profile(prepared, found.best), found, save_profile)
    exit_status(finished)


def tune_request(
    options: MeasureOptions, knob: list[str], where: str | None, knobs_file: Path | None,
    tuning: Tuning,
) -> CampaignRequest:  # fmt: skip
    """A sweep seeded with the built-in profiles, planned for as many rounds as a race may take
    (the grid strategy: three repeats), its runs chosen by ``tuning``."""
    search = 3 if tuning.strategy is Strategy.grid else MAX_ROUNDS
    repeats = str(search + CONFIRM_REPEATS)  # the last ones confirm the search's best
    request = sweep_request(replace(options, repeats=repeats), knob, where, knobs_file)
    seeds = tuple(load_profiles())  # the built-in profiles; the base's grid beside them
    what = replace(request.what, sweep=replace(request.what.sweep, seeds=seeds))
    return replace(request, what=what, how=replace(request.how, tuning=tuning))


def _save(profile, found, path: Path) -> None:
    image = found.best.split(":", 1)[0]
    name = "best-" + re.sub(r"[^A-Za-z0-9]+", "-", image).strip("-")
    speed = "" if found.speedup is None else f", {found.speedup.ratio:.2f}x over default"
    text = to_toml(profile, name, f"kit tune's best on {image}: {profile.name}{speed}")
    write_text(path, text, "--save-profile")
    err.print(
        f"saved {found.best} as profile {name!r} in {path}: run it with "
        f"kit compare {image} --profiles {path} -p {name}"
    )


@app.command("knobs")
def knobs(knobs_file: KnobsFile = None, fmt: FormatOpt = Format.table) -> None:
    """List the knobs `kit sweep` and `kit tune` vary: how each is applied, when it can act."""
    body = [
        [k.name, f"{k.kind.value} {k.target}".strip(), k.acts.value, k.description, k.source]
        for k in load_knobs(knobs_file).values()
    ]
    table = listing("knobs", ["knob", "sets", "acts", "what", "from"], body)
    shown = render_tables([table], fmt, text=lambda t: compact_table(t.headers, t.body))
    out.print(shown, markup=False)
