"""The steady state: the warmup's settling rule, the trend across timed batches, their lines in
the workload's output, the warmup as a knob and a profile setting, and the table's word for a
run that had not settled. The real workload's warmup runs in tests/test_workloads_docker.py."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest

from kit.errors import ConfigError, UsageError
from kit.judging.parse import parse_output
from kit.model.profiles import Profile, load_profiles, parse_profiles
from kit.model.results import RunResult, Status
from kit.model.workload import AUTO, Preset, WorkloadSpec, warmup_of, workload_from_json
from kit.planning.knobs import BUILTIN, apply, parse_knob
from kit.reporting.formats import Format
from kit.reporting.rows import RowStatus, rows
from kit.reporting.table import render
from kit.workload import STEP_SECONDS_PREFIX, WARMUP_PREFIX, steady
from kit.workload.__main__ import parser as workload_parser
from kit.workload.cnn_benchmarks import translate


def slow_start(n: int, excess: float = 0.25, decay: float = 0.5, step: float = 4.3) -> list:
    """Step times of a start that begins ``excess`` slower and halves its excess each step."""
    return [step * (1 + excess * decay**i) for i in range(n)]


@pytest.mark.parametrize(
    ("times", "settled"),
    [
        ([9.0, 4.3, 4.35, 4.31], True),  # the first step (tracing) is never in the window
        ([4.3, 4.3, 4.3], False),  # too few steps for a window after the first
        ([9.0, 5.6, 5.0, 4.6], False),  # still speeding up: 22% across the window
        ([9.0, 3.5, 5.1, 3.2, 3.21, 3.19], True),  # a step that grew the memory pool passed
        ([9.0, 3.5, 5.1, 3.2, 3.21], False),
        ([9.0, 4.3, 4.5, 4.3], False),  # 4.7% across the window
    ],
)
def test_the_warmup_settles_on_a_window_of_steps_within_its_spread(times, settled):
    assert steady.settled(times) is settled


def test_a_slow_start_keeps_warming_until_its_excess_is_within_the_spread():
    times = slow_start(12)
    first = next(n for n in range(1, 13) if steady.settled(times[:n]))
    assert steady.settled(times[:first]) and not steady.settled(times[: first - 1])
    assert times[first - 1] / times[-1] - 1 < steady.SPREAD  # what is left of the excess


def test_a_step_that_grew_the_memory_is_not_settled_however_quick():
    times = [9.0, 3.2, 3.21, 3.19]
    assert steady.settled(times, [735_000, 10_000, 900, 40])
    assert not steady.settled(times, [735_000, 10_000, 240_000, 40])  # step 3 grew the pool
    assert steady.settled(times, [735_000, 46_000, 30_000, 40_000])  # jemalloc's steady faults
    assert steady.growing([40, 240_000, 88], 735_000) == [1]
    assert steady.growing([40, 240_000], 0) == []  # nothing to compare with
    assert steady.growing([349, 20_000], 3_000) == []  # a tiny model's: under 100 MB


def test_memory_faulted_anew_alike_each_step_is_no_growth():
    """Stock TF 2.14 on an AVX2 host (Eigen, no oneDNN pool): every ResNet-50 step faults its
    ~3 GB anew, as measured on an AMD EPYC Zen 2; a pool that grows still stands out."""
    first, steps = 1_142_344, [835_130, 779_693, 784_969, 792_182, 779_777, 792_295, 816_195]
    assert steady.growing(steps, first) == []
    assert steady.settled([13.9, 12.4, 12.5, 12.45], [first, 784_969, 792_182, 779_777])
    assert steady.growing([*steps[:3], 1_100_000], first) == [3]  # 310,000 over the level
    assert steady.growing([300_000, 900], 735_000, level=900) == [0]


def test_a_noisy_host_settles_once_its_step_time_stops_falling():
    """Intel ResNet-50 on a 2-vCPU AMD EPYC Zen 2 (AVX2), measured: no three steps after the
    first within 4%, but from step 4 on no faster than the three before."""
    times = [9.91, 6.44, 6.73, 6.68, 6.35, 6.87, 6.61, 6.55, 6.95, 6.75, 6.42]
    faults = [717_270, 4_966, 23_934, 18, 8_071, 11_915, 999, 23, 16_913, 23, 23]
    first = next(n for n in range(1, len(times) + 1) if steady.settled(times[:n], faults[:n]))
    assert first == 7
    windows = [times[i : i + 3] for i in range(1, len(times) - 2)]
    assert all(max(w) / min(w) - 1 > steady.SPREAD for w in windows)  # the spread alone: never
    falling = [10.0, 8.0, 7.6, 7.2, 6.9, 6.6, 6.3]  # 4-5% a step: still speeding up
    assert not steady.settled(falling)
    alternating = [9.0, *[4.3 * (1.1 if i % 2 else 0.9) for i in range(8)]]
    assert steady.settled(alternating)  # noise about a level, not a fall


def test_the_warmup_is_bounded_in_batches_and_seconds():
    noisy = [4.3 * 0.97**i for i in range(steady.MAX_BATCHES)]  # never stops falling
    assert not steady.settled(noisy)
    assert steady.warmup_done(noisy, 1.0)  # out of batches
    assert not steady.warmup_done(noisy[:5], 10.0)
    assert steady.warmup_done(noisy[:5], steady.MAX_SECONDS)  # out of time


def test_the_trend_finds_a_rate_that_still_moves_and_not_noise():
    rng = random.Random(7)
    flat = [4.3 * math.exp(rng.gauss(0, 0.015)) for _ in range(10)]
    assert not steady.trend(flat).significant
    rising = slow_start(10, excess=0.3, decay=0.8)
    t = steady.trend(rising)
    assert t.significant and t.change > steady.TREND_LIMIT and t.low > 0
    assert "images/sec moved +" in t.describe()
    falling = list(reversed(rising))
    assert steady.trend(falling).change < -steady.TREND_LIMIT
    assert steady.trend([4.3, 4.2, 4.1, 4.0]) is None  # too few to judge
    exact = [4.0 * 0.99**i for i in range(10)]  # 1% faster a step, no noise: +9.5% overall
    assert steady.trend(exact).change == pytest.approx(0.99**-9 - 1)


def test_the_trend_interval_covers_a_flat_rate_as_often_as_it_says():
    rng = random.Random(11)
    covered = sum(
        (t := steady.trend([math.exp(rng.gauss(0, 0.03)) for _ in range(10)])).low <= 0 <= t.high
        for _ in range(2000)
    )
    assert 0.98 <= covered / 2000 <= 0.995


def test_t_quantiles():
    assert steady.t995(1) == 63.657 and steady.t995(8) == 3.355
    assert steady.t995(35) == 2.704 and steady.t995(10_000) == 2.576
    with pytest.raises(ValueError):
        steady.t995(0)


def test_the_workload_lines_are_parsed_into_the_run_record():
    warmup = {"mode": "auto", "batches": 4, "seconds": 19.2, "settled": True,
              "step_seconds": [9.1, 4.4, 4.3, 4.31]}  # fmt: skip
    lines = [
        WARMUP_PREFIX + json.dumps(warmup),
        "1\timages/sec: 7.4 +/- 0.0 (jitter = 0.0)\t7.1",
        "total images/sec: 7.40",
        STEP_SECONDS_PREFIX + json.dumps([4.3, 4.31, 4.32]),
        STEP_SECONDS_PREFIX + "[4.3, -1]",  # not times: ignored
        WARMUP_PREFIX + "{not json",
    ]
    parsed = parse_output(lines)
    assert parsed.warmup == warmup
    assert parsed.step_seconds == (4.3, 4.31, 4.32)
    assert parse_output(["total images/sec: 7.40"]).warmup is None


def test_the_workload_takes_auto_or_a_number_and_tf_cnn_benchmarks_keeps_its_own():
    assert workload_parser().parse_args([]).num_warmup_batches == "auto"
    assert workload_parser().parse_args(["--num_warmup_batches=3"]).num_warmup_batches == 3
    with pytest.raises(SystemExit):
        workload_parser().parse_args(["--num_warmup_batches=soon"])
    args = workload_parser().parse_args([])
    assert not any(f.startswith("--num_warmup_batches") for f in translate(args))
    args.num_warmup_batches = 2
    assert "--num_warmup_batches=2" in translate(args)


def test_the_spec_warms_up_until_settled_unless_told_a_number():
    for preset in Preset:
        assert WorkloadSpec.from_preset(preset).num_warmup_batches == AUTO
    spec = WorkloadSpec()
    assert "--num_warmup_batches=auto" in spec.argv(None, None)
    assert "warmup until settled" in spec.describe()
    fixed = WorkloadSpec.from_preset(Preset.quick, num_warmup_batches=warmup_of("2"))
    assert fixed.num_warmup_batches == 2 and "2 warmup" in fixed.describe()
    assert workload_from_json({**dataclasses.asdict(spec), "workload_dir": None}) == spec
    for bad in ("soon", "-1", "2.5", True):
        with pytest.raises(UsageError, match="auto or a whole number"):
            warmup_of(bad)


def test_warmup_is_a_knob_and_a_profile_run_setting():
    values = parse_knob("warmup=2,auto", BUILTIN).resolve({})
    assert values == ("2", "auto")
    base = Profile("default")
    assert apply(base, BUILTIN["warmup"], "2").warmup == 2
    assert apply(base, BUILTIN["warmup"], "auto").warmup == "auto"
    with pytest.raises(UsageError, match="neither auto nor"):
        parse_knob("warmup=soon", BUILTIN).resolve({})
    known = load_profiles()
    text = '[fixed]\nextends = "default"\nrun = { warmup = 2 }\n'
    assert parse_profiles(text, "p.toml", known)["fixed"].warmup == 2
    with pytest.raises(ConfigError, match="warmup must be auto"):
        parse_profiles(text.replace("2", "-2"), "p.toml", known)


def _run(index: int, rate: float, times: tuple[float, ...]) -> RunResult:
    return RunResult(
        index=index, image="stock", image_ref="kit/tensorflow:stock", profile="default",
        cpus="0-1", numactl="-", command=("python",), env={}, status=Status.ok,
        images_per_sec=rate, started="", ended="", exit_code=0, log_path=f"/x/{index}.log",
        repeat=index - 1, step_seconds=times,
    )  # fmt: skip


def test_a_timed_batch_that_grew_the_memory_and_took_longer_is_said():
    times = (3.06, 5.09, 2.92, 2.92, 3.1, 3.11, 3.08, 3.08, 3.07, 3.09)
    warmup = {"mode": "auto", "batches": 4, "minor_faults": [742_793, 10_759, 25_318, 900]}
    grew = dataclasses.replace(
        _run(1, 9.84, times), warmup=warmup, step_faults=(88, 241_000, *[90] * 8)
    )
    assert grew.grew() == [1]
    (row,) = rows([grew])
    assert row.status is RowStatus.unsettled
    assert (
        "timed batch 2 grew the process's memory (241,000 page faults, 5.09 s" in row.status_detail
    )
    # it warmed up until settled already: the hint is more batches or a longer fixed warmup
    assert "--num-warmup-batches N" in row.status_detail
    assert "use --num-warmup-batches auto" not in row.status_detail
    quick = dataclasses.replace(grew, step_seconds=(3.06, 3.1, *times[2:]))  # grew, cost nothing
    assert rows([quick])[0].status is RowStatus.ok


def test_a_cell_whose_timed_batches_still_sped_up_is_said_unsettled():
    settled = (4.3, 4.31, 4.29, 4.3, 4.32, 4.28, 4.3, 4.31, 4.3, 4.29)
    climbing = tuple(slow_start(10, excess=0.3, decay=0.8))
    runs = [_run(1, 7.4, settled), _run(2, 7.1, climbing)]
    (row,) = rows(runs)
    assert row.status is RowStatus.unsettled
    assert row.status_detail.startswith("1 of 2 runs: images/sec moved +")
    assert "--num-warmup-batches auto" in row.status_detail
    text = render(runs, Format.table)
    assert "unsettled" in text
    (quiet,) = rows([_run(1, 7.4, settled), _run(2, 7.41, settled)])
    assert quiet.status is RowStatus.ok
