"""How long a plan will take on a machine, from that machine's recorded runs of the same cells
and workload (`kit plan`'s header; the session's ETA starts from it). Pure: specs and stored
sessions in, an estimate out. A cell this machine never ran is said as unknown, never guessed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kit.judging.series import SessionRuns, describe_workload
from kit.model.results import RunResult, Status
from kit.model.spec import RunSpec
from kit.model.workload_record import WorkloadRecord

# Runs that ran their work to its end, whatever their verdict: their wall time is what a run of
# the cell takes here (a disturbed run took as long as an ok one).
COMPLETED = (Status.ok, Status.disturbed, Status.invalid)


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the runs of the cells this machine has run, summed (instances at once)
    recorded: int  # the recorded runs that gave it
    unknown: tuple[str, ...]  # cells (IMAGE:PROFILE) with no completed run on this machine
    # --repeats auto: the runs of its least rounds alone, and how many rounds (least, most)
    least_seconds: float | None = None
    rounds: tuple[int, int] | None = None

    def line(self) -> str:
        if not self.recorded:
            return "estimate: unknown (no recorded run of these cells and workload on this host)"
        source = f"from {self.recorded} recorded runs here"
        amount = _duration(self.seconds)
        if self.least_seconds is not None and self.rounds is not None:
            least, most = self.rounds
            amount = (f"{_duration(self.least_seconds)} ({least} rounds) to {amount} ({most} "
                      "rounds, as --repeats auto decides)")  # fmt: skip
        if self.unknown:
            cells = ", ".join(self.unknown)
            return f"estimate: over {amount}, {source}; unknown for {cells} (no run here yet)"
        return f"estimate: about {amount}, {source}"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 2 else f"{minutes:.0f} min"


def _seconds(run: RunResult) -> float | None:
    try:
        wall = datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)
    except (TypeError, ValueError):
        return None
    return wall.total_seconds()


def estimate(
    specs: Sequence[RunSpec],
    history: Sequence[SessionRuns],
    machine: str,
    rounds: tuple[int, int] | None = None,
) -> Estimate:
    """Each planned run costs the median wall time of this machine's completed runs of its cell
    and workload (ok, disturbed or INVALID: each ran its work); the runs of one cell's instances
    go at once, so only the first counts. ``rounds`` (--repeats auto: least, most) also sums
    the least rounds alone."""
    recorded: dict[tuple[str, str, str], list[float]] = {}
    for session in history:
        for run in session.runs:
            seconds = _seconds(run)
            here = (run.host or {}).get("hostname") == machine
            if here and run.status in COMPLETED and run.instance == 1 and seconds is not None:
                key = (run.image, run.profile, describe_workload(run))
                recorded.setdefault(key, []).append(seconds)
    total, least, used, unknown = 0.0, 0.0, set(), []
    for spec in specs:
        if spec.instance != 1:
            continue
        workload = WorkloadRecord.of(spec.workload).describe()
        key = (spec.image.label, spec.profile.name, workload)
        if key in recorded:
            seconds = statistics.median(recorded[key])
            total += seconds
            least += seconds if rounds is None or spec.repeat < rounds[0] else 0.0
            used.add(key)
        elif (cell := f"{key[0]}:{key[1]}") not in unknown:
            unknown.append(cell)
    count = sum(len(recorded[k]) for k in used)
    if rounds is None:
        return Estimate(total, count, tuple(unknown))
    return Estimate(total, count, tuple(unknown), least, rounds)
