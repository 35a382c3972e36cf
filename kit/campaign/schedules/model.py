"""The model strategy of ``kit tune``: Optuna's TPE sampler proposes the next cell from the runs so
far, for grids too big to race (it need not run every cell once). Pure apart from Optuna, and
deterministic: the study is rebuilt from the recorded runs on every call with a fixed seed, so a
resumed tune proposes the same cells again.

Each proposal is one run. The baseline runs twice first (the best's speedup needs its interval);
the budget's last runs go to the best so far until it has two, so it ends with an interval too.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kit.campaign.schedules.budget import Budget, room
from kit.judging.cells import cells
from kit.judging.stats import MIN_REPEATS
from kit.model.results import RunResult
from kit.model.spec import RunSpec

SEED = 0


@dataclass(frozen=True)
class ModelSearch:
    keys: tuple[str, ...]
    baseline: str
    budget: Budget

    def next(self, plan: Sequence[RunSpec], runs: Sequence[RunResult]) -> list[RunSpec]:
        if room(self.budget, runs) < 1:
            return []
        ran = {r.index for r in runs}
        pending = {}
        for spec in plan:
            if spec.index not in ran:
                pending.setdefault(spec.key, spec)  # each cell's next repeat, in plan order
        counts = Counter(r.key for r in runs)
        if not pending:
            return []
        key = self._choose(plan, runs, counts, room(self.budget, runs))
        if key not in pending:  # every repeat of it ran: the least-run cell instead
            key = min(pending, key=lambda k: counts.get(k, 0))
        return [pending[key]]

    def _choose(self, plan, runs, counts: dict[str, int], left: float) -> str | None:
        if counts.get(self.baseline, 0) < MIN_REPEATS:
            return self.baseline
        best = _best(runs)
        if best is not None and counts[best] < MIN_REPEATS and left <= MIN_REPEATS - counts[best]:
            return best  # the budget's end: give the best so far its interval
        return self._propose(plan, runs, counts)

    def _propose(self, plan, runs, counts: dict[str, int]) -> str | None:
        import optuna  # noqa: PLC0415 -- heavy: Optuna takes ~1 s to import, only kit tune --strategy model needs it

        optuna.logging.set_verbosity(logging.WARNING)
        values = _knob_values(plan)
        space = {
            name: optuna.distributions.CategoricalDistribution(
                sorted({v[name] for v in values.values()})
            )
            for name in next(iter(values.values()))
        }
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=5)
        )
        for r in runs:
            if r.ok and r.images_per_sec and r.key in values:
                study.add_trial(
                    optuna.trial.create_trial(
                        params=values[r.key], distributions=space, value=math.log(r.images_per_sec)
                    )
                )
        wanted = study.ask(space).params
        return _nearest(wanted, values, counts)


def _knob_values(plan: Sequence[RunSpec]) -> dict[str, dict[str, str]]:
    """Each cell's factors (its knob values, with the profile when seeds ran beside)."""
    out: dict[str, dict[str, str]] = {}
    for spec in plan:
        out.setdefault(spec.key, dict(spec.profile.knobs) or {"profile": spec.profile.name})
    return out


def _nearest(wanted: dict[str, str], values: dict[str, dict[str, str]], counts) -> str | None:
    """The cell agreeing with the proposal on most knobs (merged and filtered cells are not
    in the plan), the one run least as the tie-break."""
    ranked = sorted(
        values,
        key=lambda k: (-sum(values[k].get(n) == v for n, v in wanted.items()), counts.get(k, 0)),
    )
    return ranked[0] if ranked else None


def _best(runs: Sequence[RunResult]) -> str | None:
    """The cell with the highest geometric mean so far (the one grouping of its samples)."""
    logs = {c.key: [math.log(v) for v in c.samples()] for c in cells(runs) if c.samples()}
    return max(logs, key=lambda k: statistics.fmean(logs[k])) if logs else None
