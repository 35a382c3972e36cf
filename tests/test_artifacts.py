from kit.model.results import RunResult, Status
from kit.model.utilization import Utilization
from kit.reporting.files import bars, util_series, write_plots


def result(index, profile, rate, repeat=0, util=None):
    return RunResult(
        index=index, image="intel", image_ref="kit/tensorflow:intel", profile=profile,
        cpus="0-1", numactl="-", command=("python",), env={}, status=Status.ok,
        images_per_sec=rate, started="", ended="", exit_code=0, log_path=f"/x/{index}.log",
        effective_cpus="1", cell=1 if profile == "default" else 2, repeat=repeat,
        utilization=util,
    )  # fmt: skip


UTIL = Utilization.from_json(
    {"times_s": [1.0, 2.0, 3.0], "busy": [[3.0, 2.0, 1.0], [99.0, 100.0001, 98.0]]}
)


def test_bars_carry_median_whiskers_and_verdict():
    results = [
        result(1, "default", 10.0),
        result(2, "tuned", 12.0),
        result(3, "tuned", 12.2, repeat=1),
        result(4, "default", 10.1, repeat=1),
    ]
    default, tuned = bars(results)
    assert (default.median, default.low, default.high) == (10.05, 10.0, 10.1)
    assert tuned.speedup.startswith("1.20x [") and tuned.speedup.endswith("faster")


def test_bars_name_their_host_when_there_are_several():
    from dataclasses import replace

    results = [result(1, "default", 10.0), replace(result(2, "default", 20.0), engine="big")]
    assert [b.label for b in bars(results)] == ["intel:default@docker", "intel:default@big"]
    assert [b.label for b in bars(results[:1])] == ["intel:default"]


def test_util_series_marks_the_pinned_cpus_and_clamps():
    series = util_series(result(1, "default", 10.0, util=UTIL))
    assert series.cpus == (0, 1) and series.pinned == (1,)
    assert max(series.busy[1]) == 100.0
    assert util_series(result(2, "default", 10.0)) is None


def test_write_plots(tmp_path):
    written = write_plots(tmp_path, [result(1, "default", 10.0, util=UTIL)])
    assert sorted(written) == ["plot-cpu-busy-01-intel_default.png", "plot-images-per-sec.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written.values())


def test_busy_inside_and_outside_the_run():
    busy_in, busy_out = result(1, "default", 10.0, util=UTIL).busy()
    assert round(busy_in) == 99 and busy_out == 2.0
