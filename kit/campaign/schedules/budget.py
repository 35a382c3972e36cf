"""What a budget allows: runs or seconds of measuring, the room left after the runs so far, and
the fixed schedule (everything at once, or the first runs that fit). Pure."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kit.errors import UsageError
from kit.model.results import RunResult
from kit.model.spec import RunSpec

MAX_ROUNDS = 8


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


def check_budget(budget: Budget, cells: int) -> None:
    """A budget must buy at least one run of every cell (the first round)."""
    if budget.runs is not None and budget.runs < cells:
        raise UsageError(
            f"--budget {budget.runs}runs is too small for one round of {cells} cells",
            f"give at least --budget {cells}runs (twice that for intervals), or fewer knob values",
        )
