"""The regression gate's promises (docs/cli.md), each held by a seeded simulation with enough
trials that a rate twice the promise fails: at 3% noise, gating at 5% against a 5-repeat
baseline with --repeats auto, false alarms under 1% and a 10% regression detected over 90% of
the time; a regression passed in under 2% of trials, bursts of other work included. Each bound
is shown to catch a planted error: a gate that fails whatever a look at 95% calls slower (no
threshold margin, no sequential correction), one that passes whatever is not significantly
slower, and repeats stopped at the least where the gate asked for more. (Either half of the
first plant alone stays within the false-alarm bound: measured 0.0% and 0.2%.)"""

from __future__ import annotations

import pytest

from kit.campaign.schedules import adaptive
from kit.campaign.schedules.adaptive import Adaptive
from kit.judging import gate as gate_module
from kit.judging import stats
from kit.judging.gate import Gate, Outcome
from kit.judging.stats import Verdict
from tests.simulate import gate_trial

GATE, AUTO, CV, REGRESSION = Gate("baseline", 5.0), Adaptive(max_repeats=8), 0.03, 0.90
FALSE_ALARMS, DETECTION, PASSED = 0.01, 0.90, 0.02  # benchmarks/gate.py prints the same


def _share(outcome: Outcome, ratio: float, trials: int, seed: int, rule=AUTO, bursty=False):
    found = [gate_trial(seed * 100_000 + t, ratio, CV, GATE, rule, bursty=bursty, base_repeats=5)
             for t in range(trials)]  # fmt: skip
    return sum(o is outcome for o, _ in found) / trials


def test_equal_sessions_fail_the_gate_under_one_percent_of_the_time():
    # 600 trials: 6 failures allowed; at 2% the 12 expected would exceed them
    assert _share(Outcome.failed, 1.0, 600, seed=1) <= FALSE_ALARMS


@pytest.mark.parametrize("bursty", [False, True], ids=["lognormal", "bursts"])
def test_a_ten_percent_regression_is_almost_never_passed(bursty):
    # 600 trials: 12 passes allowed; at 4% the 24 expected would exceed them
    assert _share(Outcome.passed, REGRESSION, 600, seed=2 + bursty, bursty=bursty) <= PASSED


def test_a_ten_percent_regression_is_detected_over_ninety_percent_of_the_time():
    # 300 trials: half the power would miss by far
    assert _share(Outcome.failed, REGRESSION, 300, seed=4) >= DETECTION


def test_the_bounds_catch_a_gate_planted_wrong(monkeypatch):
    real = gate_module.outcome_of

    def any_slowdown(s, percent):  # fails whatever is significantly slower, by any margin
        return Outcome.failed if s.verdict is Verdict.slower else real(s, percent)

    monkeypatch.setattr(gate_module, "outcome_of", any_slowdown)
    with monkeypatch.context() as each_look:  # ... and every look judged at 95%
        for module in (adaptive, stats):
            each_look.setattr(module, "sequential_confidence", lambda looks: 0.95)
        assert _share(Outcome.failed, 1.0, 600, seed=1) > FALSE_ALARMS

    def unless_slower(s, percent):  # passes whatever is not significantly slower
        return real(s, percent) if s.verdict is Verdict.slower else Outcome.passed

    monkeypatch.setattr(gate_module, "outcome_of", unless_slower)
    assert _share(Outcome.passed, REGRESSION, 600, seed=2) > PASSED
    monkeypatch.setattr(gate_module, "outcome_of", real)
    two = Adaptive(max_repeats=2)  # the repeats the gate asks for, never made
    assert _share(Outcome.failed, REGRESSION, 300, seed=4, rule=two) < DETECTION
