"""Attribution and scaling on synthetic grids whose effects are known: main effects, one
interaction, unmeasured rungs, and a compare's image/profile story."""

import itertools

import numpy as np
import pytest

from kit.judging.analysis import attribute, scaling
from kit.judging.stats import Verdict
from kit.model.results import RunResult, Status
from kit.reporting.findings import format_attribution, format_scaling
from tests.simulate import draw


def grid_runs(rate, axes, repeats=4, cv=0.0, image="intel", profile_of=None, seed=0):
    """Runs of every cell of ``axes`` (knob -> values), ``rate(values)`` images/sec each."""
    rng = np.random.default_rng(seed)
    runs = []
    combos = [dict(zip(axes, c, strict=True)) for c in itertools.product(*axes.values())]
    for cell, values in enumerate(combos, 1):
        samples = draw(rng, rate(values), cv, repeats) if cv else [rate(values)] * repeats
        for repeat, sample in enumerate(samples):
            name = (
                profile_of(values)
                if profile_of
                else " ".join(f"{k}={v}" for k, v in values.items())
            )
            runs.append(
                RunResult(
                    index=len(runs) + 1, image=values.get("image", image), image_ref="x",
                    profile=name, cpus="0-1", numactl="-", command=(), env={},
                    status=Status.ok, images_per_sec=sample, started="", ended="",
                    exit_code=0, log_path="", cell=cell, repeat=repeat,
                    knobs={} if profile_of else values,
                )
            )  # fmt: skip
    return runs


def effects(values):
    """intra 2: 1.8x; numa interleave: 1.0x alone, but 1.2x together with intra 2; image 1.1x."""
    rate = 10.0 * (1.8 if values["intra"] == "2" else 1.0)
    rate *= 1.1 if values["image"] == "intel" else 1.0
    if values["intra"] == "2" and values["numa"] == "interleave":
        rate *= 1.2
    return rate


AXES = {"image": ["stock", "intel"], "intra": ["1", "2"], "numa": ["none", "interleave"]}


def test_main_effects_alone_and_a_ladder_that_multiplies_to_the_total():
    a = attribute(grid_runs(effects, AXES, cv=0.01))
    assert a is not None
    assert a.baseline == "stock:image=stock intra=1 numa=none"
    assert a.best == "intel:image=intel intra=2 numa=interleave"
    alone = {c.factor: s for c, s in a.alone}
    assert alone["intra"].ratio == pytest.approx(1.8, rel=0.02)
    assert alone["image"].ratio == pytest.approx(1.1, rel=0.02)
    assert alone["numa"].verdict is Verdict.same  # nothing by itself: the interaction
    steps = [s.describe() for s in a.ladder]
    assert steps == ["intra 1 -> 2", "image stock -> intel", "numa none -> interleave"]
    assert a.ladder[2].speedup.ratio == pytest.approx(1.2, rel=0.02)  # it acts with intra 2
    product = np.prod([s.speedup.ratio for s in a.ladder])
    assert product == pytest.approx(a.total.ratio, rel=1e-9)
    assert a.total.ratio == pytest.approx(1.8 * 1.1 * 1.2, rel=0.02)


def test_a_rung_not_measured_joins_the_next():
    gone = (
        {"image": "stock", "intra": "2"},
        {"image": "intel", "intra": "1", "numa": "interleave"},
    )
    runs = [
        r for r in grid_runs(effects, AXES)
        if not any(all(r.knobs[k] == v for k, v in g.items()) for g in gone)
    ]  # fmt: skip
    a = attribute(runs)
    # intra's effect alone is unknown, so it comes last; numa's rung was not measured.
    assert [s.describe() for s in a.ladder] == [
        "image stock -> intel", "numa none -> interleave + intra 1 -> 2",
    ]  # fmt: skip
    assert dict((c.factor, s) for c, s in a.alone)["intra"] is None
    assert "not measured" in format_attribution(a)


def test_a_compare_tells_the_build_and_the_settings_apart():
    axes = {"image": ["stock", "intel"], "profile": ["default", "tuned"]}

    def rate(v):
        return (
            5.48 * (1.3 if v["image"] == "intel" else 1.0) * (4.7 if v["profile"] == "tuned" else 1)
        )

    a = attribute(grid_runs(rate, axes, profile_of=lambda v: v["profile"]))
    assert [s.describe() for s in a.ladder] == ["profile default -> tuned", "image stock -> intel"]
    assert a.total.ratio == pytest.approx(1.3 * 4.7)


def test_nothing_to_attribute_when_the_baseline_is_best():
    assert attribute(grid_runs(lambda v: 10.0 / int(v["intra"]), {"intra": ["1", "2"]})) is None


def test_scaling_has_an_ideal_line_from_the_fewest_cores():
    curves = scaling(grid_runs(lambda v: 10.0 * int(v["cores"]) ** 0.9, {"cores": ["1", "2", "4"]}))
    (curve,) = curves
    assert [p.cores for p in curve.points] == [1, 2, 4]
    assert [p.ideal for p in curve.points] == pytest.approx([10.0, 20.0, 40.0])
    assert curve.points[-1].efficiency == pytest.approx(4**0.9 / 4)
    assert "efficiency" in format_scaling(curves)


def test_scaling_draws_one_curve_per_setting_of_the_others():
    axes = {"image": ["stock", "intel"], "cores": ["1", "2"]}
    curves = scaling(grid_runs(lambda v: 10.0 * int(v["cores"]), axes))
    assert [c.label for c in curves] == ["image=stock", "image=intel"]
    assert all(p.efficiency == pytest.approx(1.0) for c in curves for p in c.points)


def test_a_sweep_writes_its_figures(tmp_path):
    from PIL import Image

    from kit.reporting.files import PLOT_KNOBS, PLOT_LADDER, PLOT_LINES, write_knob_plots

    written = write_knob_plots(tmp_path, grid_runs(effects, AXES, cv=0.01))
    assert set(written) == {PLOT_KNOBS, PLOT_LINES, PLOT_LADDER}
    for path in written.values():
        assert Image.open(path).size[0] == 900
    curves = grid_runs(lambda v: 10.0 * int(v["cores"]), {"cores": ["1", "2", "4"]})
    assert "plot-scaling.png" in write_knob_plots(tmp_path, curves)


def test_the_figures_data_hold_the_others_at_the_best():
    from kit.judging.analysis import lines_through_best, medians, over_two, varying

    rates = medians(grid_runs(effects, AXES))
    assert varying(rates) == ["image", "intra", "numa"]
    pairs = over_two(rates, "intra", "numa")
    assert pairs[("2", "interleave")] == pytest.approx(10 * 1.8 * 1.1 * 1.2)
    lines = lines_through_best(rates)
    assert dict(lines["numa"]) == pytest.approx(
        {"none": 10 * 1.8 * 1.1, "interleave": 10 * 1.8 * 1.1 * 1.2}
    )
