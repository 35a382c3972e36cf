"""The regression gate on simulated sessions: how often it fails equal sessions (false alarms),
how often it fails a real regression of twice the threshold (detection), how often it cannot
decide, and the repeats it takes, with fixed and with adaptive (--repeats auto) repeats.

    .venv/bin/python benchmarks/gate.py [--trials 1000] [--threshold 5] [--cv 3]

Each trial: a baseline session of two cells (3 repeats each), then a gated session of the same
two cells whose candidate cell is truly 1.0x (equal) or 1 - 2 x threshold (a regression) of the
baseline session, every run drawn with lognormal noise of the given cv, or "bursty" noise (the
same, and one run in eight slowed by a further 15%, as when other work lands on the host). The
gate's decision uses kit's own judge_cells; adaptive sessions use kit's AdaptiveSchedule with the
gate, at sequential confidence.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
from kit.campaign.simulate import draw, simulated_plan, simulated_run
from kit.judging.gate import Gate, Outcome, judge_cells
from kit.judging.stats import sequential_confidence

BASE, CANDIDATE = "stock:default", "stock:tuned"
BURST_EVERY, BURST = 8, 0.85


def _rate(rng, true: float, cv: float, bursty: bool) -> float:
    value = draw(rng, true, cv, 1)[0]
    return value * BURST if bursty and rng.integers(BURST_EVERY) == 0 else value


def _session(schedule, plan, true: dict[str, float], cv: float, bursty: bool, rng, looks=1):
    runs = []
    while batch := schedule.next(plan, runs):
        runs += [simulated_run(s, _rate(rng, true[s.key], cv, bursty), looks=looks) for s in batch]
    return runs


class _Fixed:
    """Every run of the plan at once (a fixed --repeats N session)."""

    def next(self, plan, runs):
        done = {r.index for r in runs}
        return [s for s in plan if s.index not in done]


def trial(seed, ratio: float, cv: float, bursty: bool, gate: Gate, rule, base_repeats: int = 3):
    rng = np.random.default_rng(seed)
    keys = [BASE, CANDIDATE]
    baseline = _session(_Fixed(), simulated_plan(keys, base_repeats), dict.fromkeys(keys, 10.0),
                        cv, bursty, rng)  # fmt: skip
    true = {BASE: 10.0, CANDIDATE: 10.0 * ratio}
    if rule is None:
        runs = _session(_Fixed(), simulated_plan(keys, 3), true, cv, bursty, rng)
        confidence = 0.95
    else:
        schedule = AdaptiveSchedule(rule, BASE, gate, tuple(baseline))
        plan = simulated_plan(keys, rule.max_repeats)
        runs = _session(schedule, plan, true, cv, bursty, rng, looks=rule.looks)
        confidence = sequential_confidence(rule.looks)
    result = judge_cells(runs, baseline, gate, confidence=confidence)
    (decision,) = [d for d in result.decisions if d.key == CANDIDATE]
    repeats = sum(1 for r in runs if r.key == CANDIDATE)
    return decision.outcome, repeats


def summary(outcomes: list[tuple[Outcome, int]]) -> tuple[float, float, float, float]:
    n = len(outcomes)
    share = {o: sum(1 for got, _ in outcomes if got is o) / n for o in Outcome}
    runs = statistics.fmean(r for _, r in outcomes)
    return share[Outcome.failed], share[Outcome.passed], share[Outcome.undecided], runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=5.0, help="--fail-if-slower, percent")
    parser.add_argument("--cv", type=float, default=3.0, help="noise, percent")
    parser.add_argument("--max-repeats", type=int, default=8)
    parser.add_argument("--baseline-repeats", type=int, nargs="+", default=[3, 5])
    args = parser.parse_args()
    gate = Gate("baseline", args.threshold)
    cv = args.cv / 100
    regression = 1 - 2 * args.threshold / 100
    print(f"gate at {args.threshold:g}%, noise cv {args.cv:g}%, {args.trials} trials a line; "
          "the baseline session: fixed repeats a cell")  # fmt: skip
    print(f"{'baseline':<9} {'noise':<10} {'repeats':<10} {'true':>6} {'fail':>7} {'pass':>7} "
          f"{'undecided':>10} {'runs':>5}")  # fmt: skip
    for base, bursty in [(b, burst) for b in args.baseline_repeats for burst in (False, True)]:
        for rule in (None, Adaptive(max_repeats=args.max_repeats)):
            for ratio in (1.0, regression):
                found = [trial(s, ratio, cv, bursty, gate, rule, base)
                         for s in range(args.trials)]  # fmt: skip
                fail, passed, undecided, runs = summary(found)
                print(f"{base:<9} {'bursty' if bursty else 'lognormal':<10} "
                      f"{'auto' if rule else 'fixed 3':<10} {ratio:>5.2f}x {fail:>7.1%} "
                      f"{passed:>7.1%} {undecided:>10.1%} {runs:>5.1f}")  # fmt: skip
    print(
        "false alarm = fail at 1.00x (goal <= 5%); detection = fail at the regression "
        "(goal >= 90% with auto repeats at 3% noise)"
    )


if __name__ == "__main__":
    main()
