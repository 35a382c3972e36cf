"""Sweeping knobs: options -> a campaign whose cells are knob values -> table, scaling, ladder."""

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign import CampaignRequest, Sweep, execute, prepare
from kit.cli.common import engine_maker, err, out
from kit.cli.measure import MeasureOptions, _exit_status, _show, measure_command, request_of
from kit.errors import UsageError
from kit.knobs import KnobKind, load_knobs, parse_knob

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
    """Run every combination of knob values on a base profile, interleaved as compare does; cells
    that cannot differ on this build and host are merged and said. Prints the table (one column
    per knob), the scaling curve when cores vary, and what each change earned."""
    from kit.ui import TerminalFeedback

    request = sweep_request(replace(options, images=images or []), knob or [], where, knobs_file)
    feedback = TerminalFeedback(err)
    finished = execute(prepare(request, engine_maker(ctx), feedback), feedback)
    _show(finished, options)
    show_findings(finished.runs, options.baseline)
    _exit_status(finished, options.fail_if_slower)


def show_findings(runs, baseline: str | None) -> None:
    from kit.analysis import attribute, scaling
    from kit.reporting.findings import format_attribution, format_scaling

    curves = scaling(runs)
    if curves:
        out.print("\n" + format_scaling(curves), markup=False)
    found = attribute(runs, baseline)
    if found is not None:
        out.print("\n" + format_attribution(found), markup=False)
