"""How long a plan will take on a machine, from that machine's recorded runs of the same cells
and workload (`kit plan`'s header; the session's ETA starts from it). Pure: specs and stored
sessions in, an estimate out. A cell this machine never ran is said as unknown, never guessed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kit.judging.judge import workload_record
from kit.judging.series import SessionRuns, describe_workload, describe_workload_json
from kit.model.results import RunResult, Status
from kit.model.spec import RunSpec


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the runs of the cells this machine has run, summed (instances at once)
    recorded: int  # the recorded runs that gave it
    unknown: tuple[str, ...]  # cells (IMAGE:PROFILE) this machine has no recorded run of

    def line(self) -> str:
        if not self.recorded:
            return "estimate: unknown (no recorded run of these cells and workload on this host)"
        known = f"{_duration(self.seconds)} (from {self.recorded} recorded runs here)"
        if self.unknown:
            return f"estimate: over {known}; unknown for {', '.join(self.unknown)} (never run here)"
        return f"estimate: about {known}"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 2 else f"{minutes:.0f} min"


def _seconds(run: RunResult) -> float | None:
    try:
        wall = datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)
    except (TypeError, ValueError):
        return None
    return wall.total_seconds()


def estimate(specs: Sequence[RunSpec], history: Sequence[SessionRuns], machine: str) -> Estimate:
    """Each planned run costs the median wall time of this machine's ok runs of its cell and
    workload; the runs of one cell's instances go at once, so only the first counts."""
    recorded: dict[tuple[str, str, str], list[float]] = {}
    for session in history:
        for run in session.runs:
            seconds = _seconds(run)
            here = (run.host or {}).get("hostname") == machine
            if here and run.status is Status.ok and run.instance == 1 and seconds is not None:
                key = (run.image, run.profile, describe_workload(run))
                recorded.setdefault(key, []).append(seconds)
    total, used, unknown = 0.0, set(), []
    for spec in specs:
        if spec.instance != 1:
            continue
        workload = describe_workload_json(workload_record(spec))
        key = (spec.image.label, spec.profile.name, workload)
        if key in recorded:
            total += statistics.median(recorded[key])
            used.add(key)
        elif (cell := f"{key[0]}:{key[1]}") not in unknown:
            unknown.append(cell)
    return Estimate(total, sum(len(recorded[k]) for k in used), tuple(unknown))
