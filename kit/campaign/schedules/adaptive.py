"""``--repeats auto``: each cell repeats, round by round, until its verdict is clear or its
interval narrow. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import MAX_ROUNDS, Budget, room
from kit.errors import UsageError
from kit.judging.cells import cell_speedup, cells, first_repeats
from kit.judging.gate import Gate, Outcome
from kit.judging.history import History, judge
from kit.judging.stats import MIN_REPEATS, Verdict, sequential_confidence
from kit.model.results import RunResult
from kit.model.spec import RunSpec


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
    # --budget: no round past min_repeats starts unless it fits what is left (its runs, or
    # its runs at the mean run's time so far)
    budget: Budget | None = None

    def __post_init__(self) -> None:
        if not 0 < self.width < 1:
            raise UsageError(
                f"--ci-width is the interval's half-width in percent, above 0 and below 100, "
                f"not {self.width * 100:g}",
                "e.g. --ci-width 3",
            )
        if not MIN_REPEATS <= self.min_repeats <= self.max_repeats <= 100:
            raise UsageError(
                f"--min-repeats {self.min_repeats} and --max-repeats {self.max_repeats} must "
                f"satisfy {MIN_REPEATS} <= min <= max <= 100"
            )

    @property
    def looks(self) -> int:
        return self.max_repeats - self.min_repeats + 1

    def describe(self) -> str:
        within = f" within {self.budget.describe()}" if self.budget else ""
        return (
            f"repeats until the interval is within {self.width:.0%} or the verdict is clear, "
            f"{self.min_repeats}-{self.max_repeats} a cell{within}"
        )

    def settled(self, runs: Sequence[RunResult], baseline: str) -> dict[tuple[str, str], int]:
        """Cells (engine, key) whose repeats are done, and after how many."""
        table = {(c.engine, c.key): c for c in cells(runs)}
        base = next((c for (_, key), c in table.items() if key == baseline), None)
        confidence = sequential_confidence(self.looks)
        done: dict[tuple[str, str], int] = {}
        for n in range(self.min_repeats, self.max_repeats + 1):
            if base is None or len(base.samples()) < n:
                break
            for cell, found in table.items():
                if cell in done or cell[1] == baseline or len(found.samples()) < n:
                    continue
                # the same comparison the table draws (paired by round where they ran side by
                # side), on the first n repeats of each
                s = cell_speedup(first_repeats(found, n), first_repeats(base, n), confidence)
                assert s is not None
                narrow = (s.high - s.low) / 2 <= self.width * s.ratio
                if s.verdict is not Verdict.same or narrow or n == self.max_repeats:
                    done[cell] = n
        return done


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Round by round until every cell is settled; with a gate, also until each cell's gate
    decision (at the same sequential confidence) is made, or ``max_repeats`` is reached."""

    rule: Adaptive
    baseline: str
    gate: Gate | None = None
    gate_runs: tuple[RunResult, ...] | History = ()

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        batch = self._round(plan, runs)
        return [] if self._over_budget(batch, runs) else batch

    def _round(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        """The next round the verdicts ask for, whatever the budget."""
        ran = {r.index for r in runs}
        pending = [s for s in plan if s.index not in ran]
        if not pending:
            return []
        done = self.rule.settled(runs, self.baseline)
        open_ = self.gate_open(plan, runs)
        others = {(s.engine, s.key) for s in plan if s.key != self.baseline}
        if others and others <= set(done) and not open_:
            return []  # every cell decided: the baseline needs no more repeats either
        if self.gate is not None and not open_ and not others:
            return []  # one cell, its gate decided
        pending = [s for s in pending if (s.engine, s.key) not in done or s.key in open_]
        first = min((s.repeat for s in pending), default=None)
        return [s for s in pending if s.repeat == first]

    def _over_budget(self, batch: Sequence[RunSpec], runs: Sequence[RunResult]) -> bool:
        """A round past the least repeats that the budget has no room for."""
        budget = self.rule.budget
        if budget is None or not batch or batch[0].repeat < self.rule.min_repeats:
            return False
        return room(budget, runs) < len(batch)

    def budget_spent(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[str]:
        """What to say when the budget, not the verdicts, ended the repeats."""
        budget = self.rule.budget
        if budget is None or not self._over_budget(self._round(plan, runs), runs):
            return []
        rounds = 1 + max((r.repeat for r in runs), default=-1)
        return [
            f"--repeats auto stopped after {rounds} round(s): another would not fit the budget "
            f"of {budget.describe()}; the undecided cells say what would decide them"
        ]

    def gate_open(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> set[str]:
        """Cells whose gate decision more repeats can still make (none without a gate)."""
        if self.gate is None or not runs:
            return set()
        confidence = sequential_confidence(self.rule.looks)
        result = judge(runs, self.gate_runs, self.gate, confidence=confidence)
        return {d.key for d in result.of(Outcome.undecided) if d.repeatable}
