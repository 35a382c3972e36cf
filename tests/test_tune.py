"""kit tune: budgets, racing and its stopping rules against simulated cells with known speeds and
kit's own noise, the model strategy, and the command end to end on a fake engine (winner,
saved profile rerun by compare, refusals, interrupt and resume)."""

import itertools

import numpy as np
import pytest

from kit.campaign.schedules.budget import MAX_ROUNDS, AllAtOnce, Budget, check_budget
from kit.campaign.schedules.confirm import CONFIRM_REPEATS
from kit.campaign.schedules.model import ModelSearch
from kit.campaign.schedules.race import Race, outcome
from kit.errors import UsageError
from tests.conftest import invoke_with
from tests.fakes import FakeEngine, GivenEngines
from tests.simulate import RESNET50_CV, run_schedule, simulated_plan


@pytest.mark.parametrize(
    ("text", "budget"),
    [("40runs", Budget(runs=40)), ("1run", Budget(runs=1)), ("45m", Budget(seconds=2700)),
     ("2h", Budget(seconds=7200)), ("90s", Budget(seconds=90)), (" 1.5 min ", Budget(seconds=90))],
)  # fmt: skip
def test_budgets_parse(text, budget):
    assert Budget.parse(text) == budget


@pytest.mark.parametrize("text", ["", "40", "runs", "0runs", "2.5runs", "0m", "-3m", "45 minutes"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(UsageError):
        Budget.parse(text)


def test_a_budget_must_buy_one_round():
    check_budget(Budget(runs=6), 6)
    with pytest.raises(UsageError, match="too small for one round of 7 cells"):
        check_budget(Budget(runs=6), 7)


def random_grid(seed, cells=16, near=0.99):
    """Cells between half and all of 7 images/sec, the baseline first; a rival at ``near`` of
    the best (the hard case: it cannot be told apart)."""
    rng = np.random.default_rng(seed)
    keys = [f"intel:c{i}" for i in range(cells)]
    true = {k: 7.0 * (0.5 + 0.5 * rng.random()) for k in keys}
    ranked = sorted(keys[1:], key=true.get)
    true[ranked[-2]] = true[ranked[-1]] * near
    return keys, true, ranked[-1]


def race(keys, true, budget, seed, cv=RESNET50_CV):
    schedule = Race(tuple(keys), keys[0], Budget(runs=budget))
    plan = simulated_plan(keys, schedule.max_rounds)
    runs = run_schedule(schedule, plan, true, cv, seed)
    return schedule, plan, runs


@pytest.mark.parametrize(("cv", "tunes"), [(RESNET50_CV, 400), (0.05, 200)])
def test_the_true_best_is_rarely_dropped(cv, tunes):
    """The promise (docs/profiles-and-knobs.md): the true best dropped in under 4% of tunes
    while a rival within 1% of it races on (measured 2.3% at 3% noise and 1.5% at 5%, over 400
    tunes each). 400 tunes allow 16 drops; at 8% the 32 expected would exceed them."""
    dropped = 0
    for seed in range(tunes):
        keys, true, best = random_grid(seed)
        schedule, _, runs = race(keys, true, 64, seed, cv)
        dropped += best in schedule.state(runs).dropped_keys
    assert dropped / tunes <= 0.04


def test_the_confirmed_speedup_is_unbiased_where_the_searchs_own_is_not():
    """The promise (docs/profiles-and-knobs.md): on the recorded 16-cell grid at 10% noise the
    confirmed speedup is within about 2% of the best's true one, where the search's own runs
    flatter it. 400 tunes: the mean bias has a standard error of 0.7%, so a 4% bias would pass
    the 2.5% bound about 2% of the time. Skipping the confirmation is the plant: the search's own
    figures, +5.9% (a full budget) and +20.6% (one run a cell), both caught."""
    import json

    from benchmarks.tuner import GRID, bias

    cells = json.loads(GRID.read_text())["cells"]
    for budget, flattered in ((48, 0.04), (16, 0.15)):
        searched, confirmed, _ = bias(cells, "race", budget, 400, 0.10)
        assert abs(confirmed) <= 0.025 < searched and searched >= flattered, (budget, confirmed)


def test_a_race_spends_less_than_the_grid_and_finds_the_best():
    found, spent = [], []
    for seed in range(50):
        keys, true, best = random_grid(seed, near=0.9)
        schedule, plan, runs = race(keys, true, 8 * len(keys), seed)
        found.append(true[outcome(plan, keys[0], schedule, runs).best] / true[best])
        spent.append(len(runs))
    assert np.mean(found) > 0.98
    assert np.mean(spent) < 0.5 * 8 * 16  # a full grid of 8 repeats is 128 runs


def test_a_race_keeps_the_baseline_and_stops_when_one_rival_is_left():
    keys = ["x:default", "x:fast", "x:slow"]
    true = {"x:default": 5.0, "x:fast": 10.0, "x:slow": 6.0}
    schedule, plan, runs = race(keys, true, 100, 0)
    state = schedule.state(runs)
    assert state.alive == ("x:default", "x:fast") and state.rounds == 2
    assert schedule.next(plan, runs) == []
    found = outcome(plan, keys[0], schedule, runs)
    assert found.best == "x:fast" and found.speedup.verdict.value == "faster"


def test_a_partial_round_goes_to_the_baseline_and_the_leaders():
    keys = [f"x:c{i}" for i in range(5)]
    true = dict(zip(keys, [5.0, 6.0, 6.05, 6.1, 6.02], strict=True))
    _, _, runs = race(keys, true, 7, 0)
    first = {r.key: r.images_per_sec for r in runs if r.repeat == 0}
    leader = max(list(first)[1:], key=first.get)
    second = {r.key for r in runs if r.repeat == 1}
    assert len(runs) == 7 and second == {"x:c0", leader}  # the baseline and the leader


def test_a_race_decides_from_its_runs_alone_so_a_resume_goes_on_alike():
    keys, true, _ = random_grid(3)
    schedule, plan, runs = race(keys, true, 40, 3)
    half = runs[:23]
    again = Race(tuple(keys), keys[0], Budget(runs=40))
    assert again.state(half) == schedule.state(half)
    assert again.next(plan, half) == schedule.next(plan, half)


def test_a_grid_strategy_runs_the_plan_within_the_budget():
    keys = ["x:a", "x:b", "x:c"]
    plan = simulated_plan(keys, 3)
    runs = run_schedule(AllAtOnce(Budget(runs=7)), plan, dict.fromkeys(keys, 5.0), 0.03, 0)
    assert [r.index for r in runs] == list(range(1, 8))


def test_the_model_strategy_gives_baseline_and_best_an_interval_within_budget():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Profile:
        knobs: tuple
        name: str

    @dataclass(frozen=True)
    class Spec:
        index: int
        key: str
        repeat: int
        profile: Profile

    axes = {"intra": ["1", "2"], "omp": ["1", "2"], "blocktime": ["0", "200"]}
    combos = [dict(zip(axes, c, strict=True)) for c in itertools.product(*axes.values())]
    keys = ["intel:" + " ".join(f"{k}={v}" for k, v in c.items()) for c in combos]
    plan = [
        Spec(r * len(keys) + i + 1, keys[i], r, Profile(tuple(combos[i].items()), keys[i]))
        for r in range(8) for i in range(len(keys))
    ]  # fmt: skip
    true = {
        k: 5.0 * (1.8 if c["intra"] == "2" else 1) * (1.3 if c["omp"] == "2" else 1)
        for k, c in zip(keys, combos, strict=True)
    }
    schedule = ModelSearch(tuple(keys), keys[0], Budget(runs=12))
    runs = run_schedule(schedule, plan, true, 0.03, 0)
    assert len(runs) == 12 and len({r.index for r in runs}) == 12
    assert sum(r.key == keys[0] for r in runs) >= 2
    found = outcome(plan, keys[0], schedule, runs)
    assert true[found.best] == max(true.values())
    assert sum(r.key == found.best for r in runs) >= 2 and found.speedup.verdict.value == "faster"
    assert run_schedule(schedule, plan, true, 0.03, 0) == runs  # deterministic


# --- the command, on a fake engine --------------------------------------------------------------


def rate_of(spec):
    knobs = dict(spec.profile.knobs)
    rate = 10.0 * (1.8 if knobs.get("intra") == "2" else 1.0)
    rate *= 1.02 if knobs.get("inter") == "2" else 1.0
    return rate * (1.5 if spec.profile.name == "tuned" else 1.0)


def tune(tmp_path, *args, engine=None):
    engine = engine or FakeEngine(rate_of)
    code, text = invoke_with(
        GivenEngines(engine), "tune", "intel", "-k", "intra=1,2", "-k", "inter=1,2",
        "--results", str(tmp_path / "r"), "--model", "tiny", *args,
    )  # fmt: skip
    return code, text, engine


def test_tune_finds_the_best_within_its_budget_and_saves_it(tmp_path):
    saved = tmp_path / "best.toml"
    code, text, engine = tune(tmp_path, "--budget", "8runs", "--save-profile", str(saved))
    assert code == 0, text
    searched = [s for s in engine.ran if s.repeat < MAX_ROUNDS]  # the rest confirm the best
    confirmed = [s for s in engine.ran if s.repeat >= MAX_ROUNDS]
    assert len(searched) == 8 and len(confirmed) == 4 * CONFIRM_REPEATS  # 3 best + baseline
    assert "intel:default" in {s.key for s in confirmed}
    assert "Best: intel:intra=2 inter=2: 1.84x" in text and "It took 20 runs" in text
    assert "From 12 fresh runs of the search's best cells" in text
    assert "intel:interleave runs as intel:tuned" in text  # seeds merged on one node
    assert "Ladder from baseline to best" in text
    assert 'intra_op = "2"' in saved.read_text()
    code, text = invoke_with(
        FakeEngine({"intel:best-intel": 18.36}), "compare", "intel", "--profiles", str(saved),
        "-p", "best-intel", "--results", str(tmp_path / "again"), "--model", "tiny",
    )  # fmt: skip
    assert code == 0 and "18.36" in text, text


def test_tune_with_the_model_strategy(tmp_path):
    code, text, engine = tune(tmp_path, "--budget", "8runs", "--strategy", "model")
    assert code == 0, text
    assert len([s for s in engine.ran if s.repeat < MAX_ROUNDS]) == 8
    assert "Best: intel:" in text and "over intel:default" in text and "fresh runs" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--budget", "3runs"], "too small for one round of 6 cells"),
        (["--budget", "soon"], "neither runs nor a duration"),
        (["--budget", "8runs", "-k", "cores=64"], "asks for more than the 2 physical cores"),
        (["--budget", "8runs", "--save-profile", "/nonexistent/x.toml"], "does not exist"),
    ],
)
def test_tune_refuses_bad_input_before_any_run(tmp_path, args, says):
    code, text, engine = tune(tmp_path, *args)
    assert code == 2 and says in text, text
    assert engine.ran == []


def test_an_interrupted_tune_keeps_its_runs_and_resumes_its_search(tmp_path):
    calls = []

    def stop_at_five(spec):
        calls.append(spec.index)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return rate_of(spec)

    code, text, _ = tune(tmp_path, "--budget", "10runs", engine=FakeEngine(stop_at_five))
    assert code == 130 and "--resume" in text, text
    session = next((tmp_path / "r").glob("2*")).name
    again = FakeEngine(rate_of)
    code, resumed, _ = tune(tmp_path, "--budget", "10runs", "--resume", session, engine=again)
    assert code == 0, resumed
    whole = FakeEngine(rate_of)
    code, text, _ = tune(tmp_path / "whole", "--budget", "10runs", engine=whole)
    assert code == 0, text
    # The 4 finished runs were kept (the fifth never finished); the search went on alike.
    assert [s.index for s in whole.ran] == calls[:4] + [s.index for s in again.ran]
    assert resumed.split("Best:")[1] == text.split("Best:")[1]


# --- adaptive repeats -------------------------------------------------------------------------


def test_adaptive_repeats_keep_the_error_rates():
    from kit.campaign.schedules.adaptive import Adaptive
    from tests.simulate import adaptive_error_rates

    # equal cells: tests/test_adaptive_claims.py
    apart, repeats = adaptive_error_rates(Adaptive(0.03), true_ratio=1.2, trials=200, seed=1)
    assert apart.faster == 1.0 and apart.coverage >= 0.94
    assert repeats < 4  # a clear difference is called early


def test_adaptive_repeats_stop_at_the_asked_width():
    from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
    from kit.reporting.rows import rows

    rule = Adaptive(0.03)
    keys = ["x:base", "x:cand"]
    plan = simulated_plan(keys, rule.max_repeats)
    stopped = []
    for seed in range(100):
        runs = run_schedule(
            AdaptiveSchedule(rule, "x:base"), plan, dict.fromkeys(keys, 10.0), 0.01, seed,
            rule.looks,
        )  # fmt: skip
        row = next(r for r in rows(runs) if r.profile == "cand")
        half = (row.ci_high - row.ci_low) / 2 / row.speedup
        if row.repeats < rule.max_repeats:
            assert half <= 0.03
            stopped.append(row.repeats)
    assert len(stopped) > 90 and min(stopped) >= rule.min_repeats


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repeats", "sometimes"], "neither a number nor auto"),
        (["--repeats", "auto", "--min-repeats", "1"], "--min-repeats 1"),
        (["--repeats", "auto", "--min-repeats", "5", "--max-repeats", "3"], "min <= max"),
        (["--repeats", "auto", "--ci-width", "0"], "--ci-width"),
    ],
)
def test_bad_repeats_are_refused(tmp_path, args, says):
    engine = FakeEngine({"intel:default": 10.0, "intel:tuned": 12.0})
    code, text = invoke_with(
        engine, "compare", "intel", "-p", "default", "-p", "tuned", "--model", "tiny",
        "--results", str(tmp_path), *args,
    )  # fmt: skip
    assert code == 2 and says in text, text
    assert engine.ran == []


def test_compare_with_adaptive_repeats_stops_a_clear_cell_early(tmp_path):
    engine = FakeEngine({"intel:default": 10.0, "intel:tuned": 12.0})
    code, text = invoke_with(
        engine, "compare", "intel", "-p", "default", "-p", "tuned", "--model", "tiny",
        "--results", str(tmp_path), "--repeats", "auto", "--format", "json",
    )  # fmt: skip
    assert code == 0, text
    assert len(engine.ran) == 4  # two rounds settle a noiseless 1.2x
    assert "up to 16 run(s)" in text
