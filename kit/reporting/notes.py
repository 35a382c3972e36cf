"""The lines under a table that say what its rows cannot: cells merged into others, how the
speedups were drawn (within rounds or not), what would decide a cell the noise left open, and
the runs the host itself ran slower for."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from kit.judging.stats import MIN_PAIRED_ROUNDS, Verdict, repeats_to_decide
from kit.model.results import RunResult
from kit.reporting.rows import Row, RowKind


def merged_notes(results: Sequence[RunResult]) -> list[str]:
    """A cell that stands for others (merged: they run the same on this host) says which."""
    merged = {(r.image, r.profile): r.stands_for for r in results if r.stands_for}
    return [
        f"{image}:{profile} stands for {', '.join(f'{image}:{o}' for o in others)} too: "
        "they run the same on this host, so it was measured once (--keep-equivalent runs both)"
        for (image, profile), others in merged.items()
    ]


def pairing_notes(table: Sequence[Row]) -> list[str]:
    """How the speedups were drawn: within repeat rounds (the round a block), or unpaired."""
    compared = [r for r in table if r.kind is RowKind.cell and r.speedup is not None
                and not r.baseline]  # fmt: skip
    paired = [r for r in compared if r.paired_rounds]
    if not paired:
        return []
    rounds = sorted({r.paired_rounds for r in paired})
    counted = f"{rounds[0]}" if len(rounds) == 1 else f"{rounds[0]}-{rounds[-1]}"
    notes = [
        f"speedups are paired by round: each cell against the baseline's run of the same "
        f"repeat round ({counted} rounds), so the host's drift between rounds cancels"
    ]
    unpaired = [f"{r.image}:{r.label.strip()}" for r in compared if not r.paired_rounds]
    if unpaired:
        notes.append(
            f"unpaired (Welch on all repeats): {', '.join(unpaired)}: fewer than "
            f"{MIN_PAIRED_ROUNDS} rounds beside the baseline"
        )
    return notes


def undecided_notes(table: Sequence[Row]) -> list[str]:
    """For each cell the noise left undecided: what would decide it, said from its own spread."""
    notes = []
    for row in table:
        if row.kind is not RowKind.cell or row.verdict is not Verdict.same or row.baseline:
            continue
        need = repeats_to_decide(
            row.speedup,
            row.ci_low,
            row.ci_high,  # type: ignore[arg-type]
            row.paired_rounds or row.repeats,
            row.confidence or 0.95,
            paired=bool(row.paired_rounds),
        )
        if need is not None:
            notes.append(f"undecided, {row.image}:{row.label.strip()} at {need}")
    return notes


SLOWED = 0.8  # below this share of the typical host speed a run is said (~4 sd of the probe)


def host_notes(results: Sequence[RunResult]) -> list[str]:
    """Runs whose host was markedly slower than the session's typical speed, as the workload's
    probe on the run's own CPUs measured it just before and after its work (kit_workload.speed):
    a slowdown from outside (a shared VM's neighbours) that neither steal time nor other
    processes show."""
    speeds = {r.index: statistics.fmean(r.host_speed) for r in results if r.host_speed}
    if len(speeds) < 3:
        return []
    typical = statistics.median(speeds.values())
    notes = []
    for r in results:
        share = speeds.get(r.index, typical) / typical
        if share < SLOWED:
            before, after = r.host_speed or (0.0, 0.0)
            notes.append(
                f"host slowed: run {r.index} ({r.key}) ran on a host at {share:.0%} of the "
                f"session's typical speed (its probe {before:.1f} before, {after:.1f} after, "
                f"against a median {typical:.1f} M loop iterations/s)"
            )
    return notes
