"""The regression gate's three outcomes: a gate that cannot tell never passes."""

from __future__ import annotations

import pytest

from kit.judging.gate import Outcome, decide
from tests.conftest import invoke_with, session_dirs
from tests.fakes import FakeEngine


@pytest.mark.parametrize(
    ("new", "old", "outcome"),
    [
        ([5.0], [10.0], Outcome.undecided),  # one repeat a side: no interval, even at 0.50x
        ([5.0, 5.1], [10.0], Outcome.undecided),
        ([5.0, 5.1, 4.9], [10.0, 10.1, 9.9], Outcome.failed),
        ([10.0, 10.1, 9.9], [10.0, 10.2, 9.8], Outcome.passed),
        ([9.0, 10.5, 11.0], [10.0, 8.5, 11.5], Outcome.undecided),  # an interval too wide
        ([9.7, 9.75, 9.72], [10.0, 10.02, 9.98], Outcome.passed),  # slower, but within 5%
    ],
)
def test_a_cell_passes_fails_or_is_undecided(new, old, outcome):
    assert decide(new, old, 5)[0] is outcome


def _sessions(tmp_path, repeats: str, later: dict[str, float], images=("stock",)):
    """A first session at 10 images/sec a cell, then a second at ``later``'s rates."""
    results = str(tmp_path)
    first = FakeEngine({"stock:default": 10.0, "intel:default": 10.0})
    args = ("-p", "default", "--repeats", repeats, "--results", results)
    assert invoke_with(first, "compare", *images, *args)[0] == 0
    assert invoke_with(FakeEngine(later), "compare", "stock", "intel", *args)[0] == 0
    return [p.name for p in session_dirs(tmp_path)]


def test_a_halved_session_at_one_repeat_fails_the_gate_as_undecided(tmp_path):
    a, b = _sessions(
        tmp_path, "1", {"stock:default": 5.0, "intel:default": 5.0}, ("stock", "intel")
    )
    gate = ("--fail-if-slower", "5", "--results", str(tmp_path))
    code, text = invoke_with(None, "diff", a, b, *gate)
    assert code == 1 and "2 cell(s) undecided" in text and "too few repeats" in text, text
    code, text = invoke_with(None, "report", b, "--baseline-session", a, *gate)
    assert code == 1 and "undecided" in text and "--gate-undecided pass" in text, text
    code, text = invoke_with(None, "diff", a, b, *gate, "--gate-undecided", "pass")
    assert code == 0 and "undecided, passed as --gate-undecided asks" in text, text


def test_a_cell_the_baseline_lacks_is_undecided_and_named(tmp_path):
    a, _ = _sessions(tmp_path, "3", {"stock:default": 10.0, "intel:default": 10.0})
    engine = FakeEngine({"stock:default": 10.0, "intel:default": 10.0})
    code, text = invoke_with(
        engine, "compare", "stock", "intel", "-p", "default", "--repeats", "3",
        "--baseline-session", a, "--fail-if-slower", "5", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 1 and "intel:default: not in the baseline session" in text, text
    assert "1 cell(s) undecided" in text and "stock:default" not in text.split("undecided")[-1]


def test_a_decided_gate_passes_and_fails_as_before(tmp_path):
    a, b = _sessions(
        tmp_path, "3", {"stock:default": 5.0, "intel:default": 10.0}, ("stock", "intel")
    )
    gate = ("--fail-if-slower", "5", "--results", str(tmp_path))
    code, text = invoke_with(None, "diff", a, b, *gate)
    assert code == 1 and "1 cell(s) slower" in text and "stock:default: 0.50x" in text, text
    assert "undecided" not in text
    code, text = invoke_with(None, "report", b, "--baseline-session", b, *gate)
    assert code == 2 and "is the session being judged" in text, text  # it would pass anything


def test_gated_auto_repeats_go_on_until_the_gate_decides():
    from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
    from kit.judging.gate import Gate, judge_cells
    from kit.judging.stats import sequential_confidence
    from tests.simulate import run_schedule, simulated_plan

    keys, rule = ["stock:default", "stock:tuned"], Adaptive(max_repeats=8)
    baseline = run_schedule(
        AdaptiveSchedule(Adaptive(min_repeats=5, max_repeats=5), keys[0]),
        simulated_plan(keys, 5),
        dict.fromkeys(keys, 10.0),
        0.03,
        seed=1,
    )
    now = {"stock:default": 10.0, "stock:tuned": 5.0}
    gate = Gate("before", 5)
    plan = simulated_plan(keys, rule.max_repeats)
    plain = run_schedule(AdaptiveSchedule(rule, keys[0]), plan, now, 0.03, seed=2)
    gated = run_schedule(AdaptiveSchedule(rule, keys[0], gate, tuple(baseline)), plan, now,
                         0.03, seed=2, looks=rule.looks)  # fmt: skip

    def repeats(runs, key):
        return sum(r.key == key for r in runs)

    # tuned's verdict in the session is clear early; default's gate decision needs more.
    assert repeats(plain, keys[0]) < repeats(gated, keys[0]) <= rule.max_repeats
    result = judge_cells(gated, baseline, gate, confidence=sequential_confidence(rule.looks))
    assert {d.key: d.outcome for d in result.decisions} == {
        "stock:default": Outcome.passed,
        "stock:tuned": Outcome.failed,
    }
