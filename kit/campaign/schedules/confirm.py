"""A tune's best, confirmed: after the search, its best cells and the baseline run again, fresh
and interleaved; the reported speedup comes from those runs alone, for the search's leader
unless the fresh runs find another finalist significantly faster. The search's
own figures favour whichever cell its noise flattered (the winner's curse: with 16 cells at
3-15% noise the best-looking one is the luckiest as often as the fastest). Pure: the plan's last
``CONFIRM_REPEATS`` repeats are the confirmation's, so a resumed tune knows which runs are which.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import Schedule, wall_s
from kit.judging.cells import cell_speedup, cells
from kit.judging.stats import Verdict
from kit.judging.tuned import Tuned
from kit.model.results import RunResult
from kit.model.spec import RunSpec

CONFIRM_TOP = 3  # the search's best cells run again (besides the baseline)
CONFIRM_REPEATS = 3  # fresh runs of each, interleaved


def _geomeans(runs: Sequence[RunResult]) -> dict[str, float]:
    return {
        c.key: statistics.fmean(math.log(v) for v in c.samples())
        for c in cells(runs)
        if c.samples()
    }


@dataclass(frozen=True)
class Confirmed:
    search: Schedule
    baseline: str
    top: int = CONFIRM_TOP
    repeats: int = CONFIRM_REPEATS

    def cut(self, plan: Sequence[RunSpec]) -> int:
        """The first repeat that is the confirmation's."""
        return max(s.repeat for s in plan) + 1 - self.repeats

    def split(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]):
        cut = self.cut(plan)
        return [r for r in runs if r.repeat < cut], [r for r in runs if r.repeat >= cut]

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        cut = self.cut(plan)
        searched, _ = self.split(plan, runs)
        if batch := self.search.next([s for s in plan if s.repeat < cut], searched):
            return batch
        finalists = self.finalists(searched)
        done = {r.index for r in runs}
        pending = [s for s in plan if s.repeat >= cut and s.key in finalists]
        pending = [s for s in pending if s.index not in done]
        first = min((s.repeat for s in pending), default=None)
        return [s for s in pending if s.repeat == first]

    def ranked(self, searched: Sequence[RunResult]) -> list[str]:
        """The search's best cells by geometric mean, best first (the baseline apart)."""
        means = _geomeans(searched)
        ranked = sorted((k for k in means if k != self.baseline), key=lambda k: -means[k])
        return ranked[: self.top]

    def finalists(self, searched: Sequence[RunResult]) -> set[str]:
        return {*self.ranked(searched), self.baseline}


def confirmed_outcome(found: Tuned, schedule: Confirmed, plan, runs) -> Tuned:
    """The search's outcome with its best and speedup taken from the confirmation runs only
    (the search's stay beside them)."""
    searched, fresh = schedule.split(plan, runs)
    table = {c.key: c for c in cells(fresh) if c.samples()}
    rivals = [k for k in schedule.ranked(searched) if k in table]
    if not rivals:
        return found

    def verdict(one: str, other: str) -> Verdict:  # paired by round where side by side
        s = cell_speedup(table[one], table[other])
        return s.verdict if s is not None else Verdict.unknown

    # The search's leader stays the best unless the fresh runs find another finalist
    # significantly faster: choosing by the fresh runs' own luck would bring the curse back.
    best = rivals[0]
    for other in rivals[1:]:
        if verdict(other, best) is Verdict.faster:
            best = other
    base = table.get(schedule.baseline)
    speedup = cell_speedup(table[best], base) if base is not None else None
    tied = tuple(k for k in rivals if k != best and verdict(k, best) is not Verdict.slower)
    minutes = found.minutes + sum(wall_s(r) for r in fresh) / 60
    return Tuned(
        best, speedup, found.runs + len(fresh), minutes, tied, found.dropped,
        searched_best=found.best, searched_speedup=found.speedup, confirm_runs=len(fresh),
    )  # fmt: skip
