"""Racing: which cells of a tune run next, under a budget, so runs go where they decide something.
Pure: the race reads the runs so far and names the specs of the next round.

A tune's plan is its whole grid repeated ``max_repeats`` times in interleaved order, placed up
front like any session (so ``--resume`` finds the same plan); a schedule picks the runs of each
round from it. Its decisions are a function of the recorded runs alone, so a resumed tune makes
the same ones again and goes on where it stopped.

Racing: every cell runs once, then again each round; after each round, a cell significantly
slower than the leader is dropped. "Significantly" keeps its promise over the whole race: the
true best can only be dropped by its one comparison with the leader each round, and each is made
at confidence 1 - alpha / rounds (Bonferroni over the looks), so the chance that the best is
ever dropped stays near alpha (simulated: under 1% at 3-5% noise). Nothing is dropped after
one run a cell: one run measures no noise, and on a shared host one run can be 30% off (a
screen that assumed kit's 5% noise ceiling dropped a good cell on ResNet-50 here).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import MAX_ROUNDS, Budget, room, wall_s
from kit.judging.cells import cell_speedup, cells
from kit.judging.stats import MIN_REPEATS, Verdict, compare
from kit.judging.tuned import Dropped, Tuned
from kit.model.results import RunResult
from kit.model.spec import RunSpec


@dataclass(frozen=True)
class RaceState:
    alive: tuple[str, ...]  # cell keys still racing, in plan order
    dropped: tuple[Dropped, ...]
    rounds: int  # complete rounds so far

    @property
    def dropped_keys(self) -> set[str]:
        return {d.key for d in self.dropped}


def _samples(runs: Sequence[RunResult]) -> dict[str, dict[int, float]]:
    """Cell key -> repeat -> images/sec, from the one grouping of a cell's samples (a repeat's
    instances summed; a repeat with a failed run is no sample)."""
    out: dict[str, dict[int, float]] = {}
    for cell in cells(runs):
        out.setdefault(cell.key, cell.samples_by_repeat())
    return out


@dataclass(frozen=True)
class Race:
    """Racing on kit's own statistics; ``baseline`` (the ``default`` cell) is never dropped,
    as the best's speedup is measured against it."""

    keys: tuple[str, ...]  # every cell, in plan order
    baseline: str
    budget: Budget
    alpha: float = 0.05
    max_rounds: int = MAX_ROUNDS

    def confidence(self) -> float:
        return 1 - self.alpha / self.max_rounds

    def state(self, runs: Sequence[RunResult]) -> RaceState:
        samples = _samples(runs)
        dropped: list[Dropped] = []
        alive = list(self.keys)
        rounds = 0
        for r in range(self.max_rounds):
            if any(r not in samples.get(k, {}) for k in alive):
                break
            rounds = r + 1
            dropped += self._drops(alive, samples, rounds)
            alive = [k for k in alive if k not in {d.key for d in dropped}]
        return RaceState(tuple(alive), tuple(dropped), rounds)

    def _drops(self, alive, samples, rounds: int) -> list[Dropped]:
        first = {k: [samples[k][r] for r in range(rounds)] for k in alive}
        leader = max(alive, key=lambda k: statistics.fmean(math.log(v) for v in first[k]))
        out = []
        for key in alive:
            if key in (leader, self.baseline):
                continue
            slower, ratio = self._slower(first[key], first[leader])
            if slower:
                out.append(Dropped(key, rounds, leader, ratio))
        return out

    def _slower(self, cell: list[float], leader: list[float]) -> tuple[bool, float]:
        # unpaired: a drop comes after 2-3 rounds, where pairing leaves 1-2 degrees of freedom
        # and races spend more (tests/test_tune.py); one run a side: no verdict
        s = compare(cell, leader, confidence=self.confidence())
        return s.verdict is Verdict.slower, s.ratio

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        state = self.state(runs)
        done = {r.index for r in runs}
        rivals = [k for k in state.alive if k != self.baseline]
        if len(rivals) <= 1 and state.rounds >= MIN_REPEATS:
            return []  # one cell left beside the baseline, and it has an interval
        rest = room(self.budget, runs)
        if rest < 1:
            return []
        for r in range(state.rounds, self.max_rounds):
            pending = [s for s in plan if s.repeat == r and s.key in state.alive]
            pending = [s for s in pending if s.index not in done]
            if pending:
                return self._fit(pending, rest, runs)
        return []

    def _fit(self, pending: list[RunSpec], room: float, runs) -> list[RunSpec]:
        """The round, or as much of it as the budget allows: the baseline, then the leaders."""
        if len(pending) <= room:
            return pending
        means = {k: statistics.fmean(v.values()) for k, v in _samples(runs).items()}
        ranked = sorted(pending, key=lambda s: (s.key != self.baseline, -means.get(s.key, 0.0)))
        return sorted(ranked[: int(room)], key=lambda s: s.index)


def outcome(plan: Sequence[RunSpec], baseline: str, schedule, runs: Sequence[RunResult]):
    """The best cell still in the running (highest geometric mean), its speedup over the
    baseline, what it cost, and the cells it cannot be told apart from; None if nothing ran."""
    samples = {k: list(v.values()) for k, v in _samples(runs).items()}
    state = schedule.state(runs) if isinstance(schedule, Race) else None
    dropped = state.dropped if state is not None else ()
    gone = {d.key for d in dropped}
    keys = dict.fromkeys(s.key for s in plan)
    alive = [k for k in keys if k in samples and k not in gone]
    if not alive:
        return None
    best = max(alive, key=lambda k: statistics.fmean(math.log(v) for v in samples[k]))
    table = {c.key: c for c in cells(runs)}
    speedup = (cell_speedup(table[best], table[baseline])
               if baseline in samples and best != baseline else None)  # fmt: skip
    tied = tuple(
        k for k in alive
        if k != best and (s := cell_speedup(table[k], table[best])) is not None
        and s.verdict is not Verdict.slower
    )  # fmt: skip
    seconds = sum(wall_s(r) for r in runs)
    return Tuned(best, speedup, len(runs), seconds / 60, tied, dropped)
