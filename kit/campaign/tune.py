"""Tuning: which cells to run next, under a budget, so runs go where they decide something.
Pure: a schedule reads the runs so far and names the specs of the next round.

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
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from kit.errors import UsageError
from kit.judging.stats import (
    MIN_REPEATS,
    Speedup,
    Verdict,
    compare,
    sequential_confidence,
)
from kit.model.results import RunResult
from kit.model.spec import RunSpec

MAX_ROUNDS = 8


class Strategy(StrEnum):
    race = "race"
    grid = "grid"
    model = "model"


@dataclass(frozen=True)
class Budget:
    """At most ``runs`` runs, or ``seconds`` of measuring (a round is cut to fit)."""

    runs: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(runs?|s|m|min|h)\s*", text)
        if match is None:
            raise UsageError(
                f"--budget {text!r} is neither runs nor a duration", "e.g. --budget 40runs or 45m"
            )
        amount, unit = float(match.group(1)), match.group(2)
        if unit.startswith("run"):
            if not amount.is_integer() or amount < 1:
                raise UsageError(f"--budget {text!r}: give a whole number of runs")
            return cls(runs=int(amount))
        seconds = amount * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit]
        if seconds <= 0:
            raise UsageError(f"--budget {text!r} leaves no time")
        return cls(seconds=seconds)

    def describe(self) -> str:
        return f"{self.runs} runs" if self.runs is not None else f"{self.seconds / 60:g} min"


@dataclass(frozen=True)
class Tuning:
    """How ``kit tune`` spends its budget."""

    budget: Budget
    strategy: Strategy = Strategy.race

    def describe(self) -> str:
        return f"{self.strategy.value} within {self.budget.describe()}"

    def schedule(self, plan: Sequence[RunSpec], baseline: str) -> Schedule:
        keys = tuple(dict.fromkeys(s.key for s in plan))
        if self.strategy is Strategy.grid:
            return AllAtOnce(self.budget)
        if self.strategy is Strategy.model:
            from kit.campaign.model_search import ModelSearch

            return ModelSearch(keys, baseline, self.budget)
        return Race(keys, baseline, self.budget)


class Schedule(Protocol):
    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        """The specs to run now (none: the session is done)."""
        ...


def wall_s(run: RunResult) -> float:
    try:
        spent = datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)
        return spent.total_seconds()
    except ValueError:
        return 0.0


def room(budget: Budget, runs: Sequence[RunResult]) -> float:
    """Runs the budget still allows; by time, as many as the mean run so far fits in what is
    left (the runs' own wall time counts, so a resumed tune goes on with what remains)."""
    if budget.runs is not None:
        return budget.runs - len(runs)
    assert budget.seconds is not None
    spent = [wall_s(r) for r in runs]
    left = budget.seconds - sum(spent)
    if not spent:
        return math.inf
    each = max(statistics.fmean(spent), 1e-3)
    return left / each


@dataclass(frozen=True)
class AllAtOnce:
    """A fixed plan: everything not yet run, at once (compare, run, sweep); with a budget, the
    first runs of the plan that fit it (a tune's grid strategy)."""

    budget: Budget | None = None

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        done = {r.index for r in runs}
        pending = [s for s in plan if s.index not in done]
        if self.budget is None or not pending:
            return pending
        first = min(s.repeat for s in pending)  # round by round, so time is checked between
        pending = [s for s in pending if s.repeat == first]
        fits = room(self.budget, runs)
        return pending[: int(min(fits, len(pending)))] if fits >= 1 else []


# --- the race's state, from the runs alone ------------------------------------------------------


@dataclass(frozen=True)
class Dropped:
    key: str
    after: int  # repeats it had
    by: str  # the leader it lost to
    ratio: float


@dataclass(frozen=True)
class RaceState:
    alive: tuple[str, ...]  # cell keys still racing, in plan order
    dropped: tuple[Dropped, ...]
    rounds: int  # complete rounds so far

    @property
    def dropped_keys(self) -> set[str]:
        return {d.key for d in self.dropped}


def _samples(runs: Sequence[RunResult]) -> dict[str, dict[int, float]]:
    """Cell key -> repeat -> images/sec (failed runs count as no sample)."""
    out: dict[str, dict[int, float]] = {}
    for r in runs:
        if r.ok and r.images_per_sec:
            out.setdefault(r.key, {})[r.repeat] = r.images_per_sec
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
        s = compare(cell, leader, confidence=self.confidence())  # one run a side: no verdict
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


# --- what a tune found ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    best: str
    speedup: Speedup | None  # over the baseline
    runs: int
    minutes: float
    tied: tuple[str, ...]  # cells still racing that the best could not be told apart from
    dropped: tuple[Dropped, ...]


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
    base = samples.get(baseline)
    speedup = compare(samples[best], base) if base and best != baseline else None
    tied = tuple(
        k for k in alive
        if k != best and compare(samples[k], samples[best]).verdict is not Verdict.slower
    )  # fmt: skip
    seconds = sum(wall_s(r) for r in runs)
    return Outcome(best, speedup, len(runs), seconds / 60, tied, dropped)


def check_budget(budget: Budget, cells: int) -> None:
    """A budget must buy at least one run of every cell (the first round)."""
    if budget.runs is not None and budget.runs < cells:
        raise UsageError(
            f"--budget {budget.runs}runs is too small for one round of {cells} cells",
            f"give at least --budget {cells}runs (twice that for intervals), or fewer knob values",
        )


# --- adaptive repeats -------------------------------------------------------------------------


@dataclass(frozen=True)
class Adaptive:
    """``--repeats auto``: each cell repeats, round by round, until its interval on the speedup
    over the baseline is narrower than ``width`` (a fraction, each side) or its verdict is
    clear, between ``min_repeats`` and ``max_repeats``. Every look draws its interval at
    ``sequential_confidence(looks)``, so stopping when a verdict "looks clear" keeps its error
    rate; the table shows the same intervals. The baseline repeats while any cell does."""

    width: float = 0.03
    min_repeats: int = MIN_REPEATS
    max_repeats: int = MAX_ROUNDS

    def __post_init__(self) -> None:
        if not 0 < self.width < 1:
            raise UsageError(f"--ci-width must be between 0 and 100%, got {self.width:.1%}")
        if not MIN_REPEATS <= self.min_repeats <= self.max_repeats <= 100:
            raise UsageError(
                f"--min-repeats {self.min_repeats} and --max-repeats {self.max_repeats} must "
                f"satisfy {MIN_REPEATS} <= min <= max <= 100"
            )

    @property
    def looks(self) -> int:
        return self.max_repeats - self.min_repeats + 1

    def describe(self) -> str:
        return (
            f"repeats until the interval is within {self.width:.0%} or the verdict is clear, "
            f"{self.min_repeats}-{self.max_repeats} a cell"
        )

    def settled(self, runs: Sequence[RunResult], baseline: str) -> dict[tuple[str, str], int]:
        """Cells (engine, key) whose repeats are done, and after how many."""
        from kit.judging.cells import cells

        samples = {(c.engine, c.key): c.samples() for c in cells(runs)}
        base = next((v for (_, key), v in samples.items() if key == baseline), [])
        confidence = sequential_confidence(self.looks)
        done: dict[tuple[str, str], int] = {}
        for n in range(self.min_repeats, self.max_repeats + 1):
            if len(base) < n:
                break
            for cell, values in samples.items():
                if cell in done or cell[1] == baseline or len(values) < n:
                    continue
                s = compare(values[:n], base[:n], confidence=confidence)
                narrow = (s.high - s.low) / 2 <= self.width * s.ratio
                if s.verdict is not Verdict.same or narrow or n == self.max_repeats:
                    done[cell] = n
        return done


@dataclass(frozen=True)
class AdaptiveSchedule:
    rule: Adaptive
    baseline: str

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        ran = {r.index for r in runs}
        pending = [s for s in plan if s.index not in ran]
        if not pending:
            return []
        done = self.rule.settled(runs, self.baseline)
        others = {(s.engine, s.key) for s in plan if s.key != self.baseline}
        if others and others <= set(done):
            return []  # every cell decided: the baseline needs no more repeats either
        pending = [s for s in pending if (s.engine, s.key) not in done]
        first = min((s.repeat for s in pending), default=None)
        return [s for s in pending if s.repeat == first]
