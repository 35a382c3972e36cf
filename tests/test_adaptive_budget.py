"""--repeats auto with --budget: no round past the least repeats starts unless it fits what
is left, and the session says that the budget, not the verdicts, ended it."""

from __future__ import annotations

from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
from kit.campaign.schedules.budget import Budget
from tests.conftest import invoke_with
from tests.fakes import FakeEngine
from tests.simulate import run_schedule, simulated_plan

KEYS = ["stock:default", "stock:tuned"]
EQUAL = dict.fromkeys(KEYS, 10.0)


def _session(budget: Budget | None, min_repeats: int = 2):
    rule = Adaptive(max_repeats=8, min_repeats=min_repeats, budget=budget)
    schedule = AdaptiveSchedule(rule, KEYS[0])
    plan = simulated_plan(KEYS, rule.max_repeats)
    # 20% noise on equal cells: no verdict is ever clear, so only the budget stops it early
    runs = run_schedule(schedule, plan, EQUAL, 0.20, seed=3, looks=rule.looks)
    return runs, schedule.budget_spent(plan, runs)


def test_a_time_budget_stops_the_rounds_that_would_not_fit_it():
    unbounded, said = _session(None)
    assert len(unbounded) == 16 and said == []  # every round of 8, the verdict never clear
    runs, said = _session(Budget(seconds=6 * 60))  # each simulated run takes a minute
    assert len(runs) == 6  # 2 rounds (the least), then one more fits: 4 + 2 minutes
    assert said == [
        "--repeats auto stopped after 3 round(s): another would not fit the budget of 6 min; "
        "the undecided cells say what would decide them"
    ]


def test_a_budget_never_cuts_the_least_repeats_a_verdict_needs():
    runs, said = _session(Budget(runs=1), min_repeats=3)
    assert len(runs) == 6 and "stopped after 3 round(s)" in said[0]


def test_cells_decided_before_the_budget_is_spent_say_nothing_of_it():
    rule = Adaptive(max_repeats=8, budget=Budget(runs=100))
    schedule = AdaptiveSchedule(rule, KEYS[0])
    plan = simulated_plan(KEYS, rule.max_repeats)
    runs = run_schedule(schedule, plan, {KEYS[0]: 10.0, KEYS[1]: 20.0}, 0.01, seed=1)
    assert len(runs) < 16 and schedule.budget_spent(plan, runs) == []


def test_the_cli_takes_a_budget_with_auto_repeats_only(tmp_path):
    def rate(spec):
        return 10.0 * (1.3 if spec.index % 3 else 0.8)  # equal cells, noisy: never decided

    args = ["compare", "stock", "-p", "default", "-p", "tuned", "--results", str(tmp_path)]
    code, text = invoke_with(FakeEngine(rate), *args, "--budget", "6runs")
    assert code == 2 and "--budget goes with --repeats auto" in text
    code, text = invoke_with(FakeEngine(rate), *args, "--repeats", "auto", "--budget", "6runs")
    assert "within 6 runs" in text  # the plan says the rule, the budget included
    assert "--repeats auto stopped after 3 round(s)" in text, text
