"""The attribution ladder and scaling curves as text, below a session's table. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from kit.judging.analysis import Attribution, Curve
from kit.judging.stats import Speedup, Verdict
from kit.judging.tuned import Tuned
from kit.reporting.table import compact_table, speedup_text


def _speedup(s: Speedup | None) -> tuple[str, str]:
    if s is None:
        return "not measured", "-"
    verdict = "too few repeats" if s.verdict is Verdict.unknown else s.verdict.value
    return speedup_text(s.ratio, s.low, s.high, s.verdict), verdict


def format_attribution(a: Attribution) -> str:
    """Each change alone from the baseline, then the ladder to the best, biggest first."""
    total, verdict = _speedup(a.total)
    lines = [f"What each change earned: best {a.best} over {a.baseline}: {total}, {verdict}"]
    alone = [[c.describe(), *_speedup(s)] for c, s in a.alone]
    lines += ["", "Each change alone, from the baseline:"]
    lines.append(compact_table(["change", "speedup [95% CI]", "verdict"], alone))
    if a.ladder:
        ladder = [
            [("" if i == 0 else "+ ") + step.describe(), step.cell, *_speedup(step.speedup)]
            for i, step in enumerate(a.ladder)
        ]
        lines += ["", "Ladder from baseline to best, one change at a time, each vs the rung below:"]
        lines.append(compact_table(["step", "cell", "speedup [95% CI]", "verdict"], ladder))
    return "\n".join(lines)


def format_scaling(curves: Sequence[Curve]) -> str:
    """Images/sec per core count, the ideal line from the fewest cores, parallel efficiency."""
    blocks = []
    for curve in curves:
        body = [
            [str(p.cores), f"{p.images_per_sec:.2f}", f"{p.ideal:.2f}", f"{p.efficiency:.0%}"]
            for p in curve.points
        ]
        title = f"Scaling ({curve.label})" if curve.label else "Scaling"
        table = compact_table(["cores", "images/sec", "ideal (linear)", "efficiency"], body)
        blocks.append(f"{title}:\n{table}")
    return "\n\n".join(blocks)


def format_outcome(found: Tuned, baseline: str) -> str:
    """A tune's answer: the best, by how much, at what cost, and what it could not separate."""
    if found.speedup is None:
        versus = f"the baseline {baseline}" if found.best == baseline else "no baseline run"
        lines = [f"Best: {found.best} ({versus})"]
    else:
        text, verdict = _speedup(found.speedup)
        lines = [f"Best: {found.best}: {text} over {baseline}, {verdict}"]
    if found.searched_best is not None:
        told = (f"{found.searched_speedup.ratio:.2f}x"
                if found.searched_speedup is not None else "no speedup")  # fmt: skip
        lines.append(
            f"From {found.confirm_runs} fresh runs of the search's best cells and the baseline; "
            f"the search's own figures said {found.searched_best} at {told} (chosen by the same "
            "runs, so flattered by their noise)."
        )
    lines.append(f"It took {found.runs} runs, {found.minutes:.1f} min of runs.")
    if found.tied:
        lines.append(f"Not told apart from the best: {', '.join(found.tied)}")
    for d in found.dropped:
        lines.append(f"  dropped {d.key} after {d.after} run(s): {d.ratio:.2f}x of {d.by}")
    return "\n".join(lines)
