"""Sweeping knobs: options -> a campaign whose cells are knob values -> table, scaling, ladder;
tuning: the same raced under a budget, its best confirmed."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from kit.cli.common import app, engine_maker, err, out
from kit.cli.declare import command
from kit.cli.options import Options, SweepImagesArg
from kit.inputs import write_text
from kit.reporting.formats import Format

TEXT = (Format.table, Format.markdown)  # the formats findings are printed below


@command(app, "sweep", Options)
def sweep(ctx: typer.Context, o: Options, images: SweepImagesArg = None) -> None:
    """Run every combination of knob values on a base profile, interleaved; cells that cannot
    differ here are merged and said. Prints a column per knob, the scaling curve when cores vary
    and what each change earned."""
    from kit.campaign.run import execute, prepare
    from kit.cli.measure import exit_status, feedback_for, show_findings, show_finished
    from kit.cli.measure_request import measure_request

    measured = measure_request("sweep", tuple(images or ()), o)
    feedback = feedback_for(measured.shown)
    finished = execute(prepare(measured.campaign, engine_maker(ctx), feedback), feedback)
    show_finished(finished, measured.shown, feedback)
    if measured.shown.fmt in TEXT:
        show_findings(finished.runs, measured.shown.baseline)
    exit_status(finished)


@command(app, "tune", Options)
def tune(ctx: typer.Context, o: Options, images: SweepImagesArg = None) -> None:
    """Search for the fastest settings under a budget: the built-in profiles and the knobs' grid,
    raced on kit's statistics (a cell is dropped once significantly slower than the leader). Ends
    with the best, its speedup over `default` with a 95% interval, the runs and minutes it took,
    the cells it could not tell apart from the best, and what each change earned."""
    from kit.campaign.run import execute, prepare, winner_profile
    from kit.cli.measure import exit_status, feedback_for, show_findings, show_finished
    from kit.cli.measure_request import measure_request
    from kit.reporting.findings import format_outcome

    measured = measure_request("tune", tuple(images or ()), o)
    shown, tuning = measured.shown, measured.campaign.how.tuning
    feedback = feedback_for(shown)
    prepared = prepare(measured.campaign, engine_maker(ctx), feedback)
    finished = execute(prepared, feedback)
    show_finished(finished, shown, feedback)
    baseline = prepared.baseline
    found = tuning.outcome(prepared.plan, baseline, finished.runs)
    if found is not None:  # with --format json/csv on stdout, the answer goes to stderr
        (out if shown.fmt in TEXT else err).print("\n" + format_outcome(found, baseline),
                                                  markup=False)  # fmt: skip
        if shown.fmt in TEXT:
            show_findings(finished.runs, baseline, found.best)
    if shown.save_profile is not None and found is not None:
        _save(winner_profile(prepared, found.best), found, shown.save_profile)
    exit_status(finished)


def _save(profile, found, path: Path) -> None:
    from kit.model.profiles import to_toml

    image = found.best.split(":", 1)[0]
    name = "best-" + re.sub(r"[^A-Za-z0-9]+", "-", image).strip("-")
    speed = "" if found.speedup is None else f", {found.speedup.ratio:.2f}x over default"
    text = to_toml(profile, name, f"kit tune's best on {image}: {profile.name}{speed}")
    write_text(path, text, "--save-profile")
    err.print(
        f"saved {found.best} as profile {name!r} in {path}: run it with "
        f"kit compare {image} --profiles {path} -p {name}"
    )


@command(app, "knobs", Options)
def knobs(o: Options) -> None:
    """List the knobs `kit sweep` and `kit tune` vary: how each is applied, when it can act."""
    from kit.planning.knobs import load_knobs
    from kit.reporting.table import compact_table, listing, render_tables

    body = [
        [k.name, f"{k.kind.value} {k.target}".strip(), k.acts.value, k.description, k.source]
        for k in load_knobs(o.knobs_file).values()
    ]
    table = listing("knobs", ["knob", "sets", "acts", "what", "from"], body)
    shown = render_tables([table], o.fmt, text=lambda t: compact_table(t.headers, t.body))
    out.print(shown, markup=False, fit=False)
