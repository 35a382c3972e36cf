"""How ``kit tune`` spends its budget: a strategy (race, grid, model) and the schedule it makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import AllAtOnce, Budget, Schedule
from kit.campaign.schedules.confirm import Confirmed, confirmed_outcome
from kit.campaign.schedules.model import ModelSearch
from kit.campaign.schedules.race import Race
from kit.campaign.schedules.race import outcome as race_outcome
from kit.campaign.schedules.strategy import Strategy
from kit.judging.tuned import Tuned
from kit.model.results import RunResult
from kit.model.spec import RunSpec


@dataclass(frozen=True)
class Tuning:
    """How ``kit tune`` spends its budget."""

    budget: Budget
    strategy: Strategy = Strategy.race

    def describe(self) -> str:
        return f"{self.strategy.value} within {self.budget.describe()}"

    def schedule(self, plan: Sequence[RunSpec], baseline: str) -> Confirmed:
        """The search, then its best cells confirmed by fresh runs (the plan's last repeats)."""
        return Confirmed(self.search(plan, baseline), baseline)

    def outcome(
        self, plan: Sequence[RunSpec], baseline: str, runs: Sequence[RunResult]
    ) -> Tuned | None:
        """What the tune found in its runs: the search's outcome on the search's own runs,
        then its best and speedup taken from the confirmation runs (None: nothing to rank)."""
        schedule = self.schedule(plan, baseline)
        searched, _ = schedule.split(plan, runs)
        search_plan = [s for s in plan if s.repeat < schedule.cut(plan)]
        found = race_outcome(search_plan, baseline, schedule.search, searched)
        return confirmed_outcome(found, schedule, plan, runs) if found is not None else None

    def search(self, plan: Sequence[RunSpec], baseline: str) -> Schedule:
        keys = tuple(dict.fromkeys(s.key for s in plan))
        if self.strategy is Strategy.grid:
            return AllAtOnce(self.budget)
        if self.strategy is Strategy.model:
            return ModelSearch(keys, baseline, self.budget)
        return Race(keys, baseline, self.budget)
