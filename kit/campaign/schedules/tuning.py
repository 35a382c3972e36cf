"""How ``kit tune`` spends its budget: a strategy (race, grid, model) and the schedule it makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import AllAtOnce, Budget, Schedule
from kit.campaign.schedules.confirm import Confirmed
from kit.campaign.schedules.model import ModelSearch
from kit.campaign.schedules.race import Race
from kit.campaign.schedules.strategy import Strategy
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

    def search(self, plan: Sequence[RunSpec], baseline: str) -> Schedule:
        keys = tuple(dict.fromkeys(s.key for s in plan))
        if self.strategy is Strategy.grid:
            return AllAtOnce(self.budget)
        if self.strategy is Strategy.model:
            return ModelSearch(keys, baseline, self.budget)
        return Race(keys, baseline, self.budget)
