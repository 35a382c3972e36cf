import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.errors import UsageError
from kit.judging.stats import NOISE_HINT, Speedup, Summary, Verdict, compare, is_noisy, summarize
from kit.planning.plan import interleaved_order
from tests.simulate import RESNET50_CV, error_rates


@pytest.mark.parametrize(
    ("samples", "n", "median", "mean", "stdev", "cv"),
    [
        ([7.0], 1, 7.0, 7.0, 0.0, 0.0),
        ([10.0, 12.0, 14.0], 3, 12.0, 12.0, 2.0, 2.0 / 12.0),
        ([14.0, 10.0, 12.0], 3, 12.0, 12.0, 2.0, 2.0 / 12.0),
        ([1.0, 3.0], 2, 2.0, 2.0, 2**0.5, 2**0.5 / 2.0),
        ([5.0, 5.0, 5.0, 5.0], 4, 5.0, 5.0, 0.0, 0.0),
        # One disturbed repeat drags the mean, not the median.
        ([100.0, 101.0, 99.0, 100.0, 20.0], 5, 100.0, 84.0, 35.78, 0.426),
    ],
)
def test_summarize(samples, n, median, mean, stdev, cv):
    summary = summarize(samples)
    assert summary.n == n
    assert summary.median == median
    assert summary.mean == pytest.approx(mean)
    assert summary.stdev == pytest.approx(stdev, abs=0.01)
    assert summary.cv == pytest.approx(cv, abs=0.001)
    assert summary.min == min(samples)
    assert summary.max == max(samples)


@pytest.mark.parametrize(
    "samples",
    [[], [0.0], [10.0, -1.0], [float("nan"), 1.0], [float("inf")], [1.0, float("-inf")]],
)
def test_summarize_refuses_bad_samples(samples):
    with pytest.raises(UsageError):
        summarize(samples)


@pytest.mark.parametrize(
    ("candidate", "baseline", "verdict", "ratio"),
    [
        ([12.0, 12.1, 11.9], [10.0, 10.1, 9.9], Verdict.faster, 1.2),
        ([8.0, 8.1, 7.9], [10.0, 10.1, 9.9], Verdict.slower, 0.8),
        ([10.0, 10.5, 9.5, 10.2], [10.1, 9.8, 10.4, 10.0], Verdict.same, 0.997),
        ([9.0, 11.0, 10.0, 12.0, 8.0], [10.5, 9.5, 11.5, 8.5, 10.0], Verdict.same, 0.995),
        ([12.0, 12.5], [10.0, 10.2], Verdict.faster, 1.2127),
    ],
)
def test_compare_verdicts(candidate, baseline, verdict, ratio):
    speedup = compare(candidate, baseline)
    assert speedup.verdict is verdict
    assert speedup.ratio == pytest.approx(ratio, rel=2e-3)  # of geometric means
    assert speedup.low <= speedup.ratio <= speedup.high


def test_clearly_faster_interval_excludes_one():
    speedup = compare([12.0, 12.1, 11.9], [10.0, 10.1, 9.9])
    assert 1.0 < speedup.low < 1.2 < speedup.high < 1.25


@pytest.mark.parametrize(
    ("candidate", "baseline", "ratio"),
    [
        ([12.0], [10.0, 10.1, 9.9], 12.0 / (10.0 * 10.1 * 9.9) ** (1 / 3)),
        ([12.0, 12.2], [10.0], math.sqrt(12.0 * 12.2) / 10.0),
        ([5.0], [10.0], 0.5),
    ],
)
def test_single_samples_give_no_verdict(candidate, baseline, ratio):
    speedup = compare(candidate, baseline)
    assert speedup.verdict is Verdict.unknown
    assert speedup.ratio == pytest.approx(ratio)
    assert speedup.low == speedup.high == speedup.ratio


def test_identical_samples_are_the_same_with_a_point_interval():
    assert compare([10.0, 10.0, 10.0], [10.0, 10.0, 10.0]) == Speedup(1.0, 1.0, 1.0, Verdict.same)


def test_two_repeats_a_side_give_an_honest_wide_interval():
    # t with ~2 degrees of freedom: 3% noise cannot separate 2% at 2 repeats, but can at 8.
    two = compare([10.2, 10.5], [10.0, 10.3])
    assert two.verdict is Verdict.same and two.high / two.low > 1.08
    eight = compare([10.2, 10.5] * 4, [10.0, 10.3] * 4)
    assert eight.verdict is Verdict.faster


def test_a_wider_confidence_gives_a_wider_interval():
    candidate, baseline = [10.0, 11.0, 9.5, 10.4, 10.8], [9.9, 10.6, 10.1, 9.2, 9.7]
    narrow = compare(candidate, baseline, confidence=0.5)
    wide = compare(candidate, baseline, confidence=0.99)
    assert wide.low <= narrow.low and narrow.high <= wide.high


@pytest.mark.parametrize(
    ("candidate", "baseline", "options"),
    [
        ([], [10.0], {}),
        ([10.0], [], {}),
        ([10.0, 0.0], [10.0, 10.0], {}),
        ([10.0, 11.0], [10.0, -10.0], {}),
        ([10.0, 11.0], [10.0, 10.0], {"confidence": 0.0}),
        ([10.0, 11.0], [10.0, 10.0], {"confidence": 1.0}),
        ([10.0, 11.0], [10.0, 10.0], {"confidence": 95}),
    ],
)
def test_compare_refuses_bad_input(candidate, baseline, options):
    with pytest.raises(UsageError):
        compare(candidate, baseline, **options)


@pytest.mark.parametrize(
    ("samples", "threshold", "noisy"),
    [
        ([100.0, 101.0, 99.0], 0.05, False),
        ([100.0, 120.0, 80.0], 0.05, True),
        ([100.0], 0.05, False),
        ([100.0, 101.0, 99.0], 0.005, True),
        ([100.0, 100.0], 0.0, False),
    ],
)
def test_is_noisy(samples, threshold, noisy):
    assert is_noisy(summarize(samples), threshold) is noisy


def test_noise_is_explained_with_a_remedy():
    assert "--repeats" in NOISE_HINT and "--num-batches" in NOISE_HINT
    with pytest.raises(UsageError):
        is_noisy(summarize([1.0, 2.0]), -0.1)


@pytest.mark.parametrize(("cells", "repeats"), [(1, 1), (3, 1), (3, 4), (2, 3), (1, 3), (6, 8)])
def test_each_round_runs_every_cell_once_in_an_order_the_seed_fixes(cells, repeats):
    order = interleaved_order(cells, repeats, "stock:default|intel:tuned")
    assert [sorted(r) for r in order] == [list(range(cells))] * repeats
    assert order == interleaved_order(cells, repeats, "stock:default|intel:tuned")


def test_no_cell_keeps_its_place_in_the_round():
    """Over many rounds each cell stands at each place about as often (a drift within rounds
    then biases no cell), and two plans of other cells are ordered otherwise."""
    cells, repeats = 4, 4000
    order = interleaved_order(cells, repeats, "a|b|c|d")
    for cell in range(cells):
        places = [r.index(cell) for r in order]
        for place in range(cells):
            assert abs(places.count(place) / repeats - 1 / cells) < 0.03
    assert interleaved_order(4, 8, "a|b|c|d") != interleaved_order(4, 8, "a|b|c|e")


@pytest.mark.parametrize(("cells", "repeats"), [(0, 3), (3, 0), (-1, 2)])
def test_interleaved_order_refuses_nothing_to_run(cells, repeats):
    with pytest.raises(UsageError):
        interleaved_order(cells, repeats)


def test_records_validate_themselves():
    with pytest.raises(UsageError):
        Summary(n=2, median=5.0, mean=5.0, min=6.0, max=4.0, stdev=0.0, cv=0.0)
    with pytest.raises(UsageError):
        Speedup(ratio=1.0, low=1.2, high=0.9, verdict=Verdict.same)
    with pytest.raises(UsageError):
        Speedup(ratio=0.0, low=0.0, high=0.0, verdict=Verdict.unknown)


rates = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(deadline=None)
@given(st.lists(rates, min_size=2, max_size=10), st.lists(rates, min_size=2, max_size=10))
def test_interval_holds_the_ratio(candidate, baseline):
    speedup = compare(candidate, baseline)
    assert speedup.low <= speedup.ratio <= speedup.high
    assert speedup.verdict is not Verdict.unknown


@pytest.mark.parametrize("repeats", range(2, 9))
def test_equal_cells_rarely_get_a_verdict_and_intervals_cover(repeats):
    # kit's own noise on ResNet-50 (3% cv), 4000 seeded comparisons per repeat count (enough
    # that a rate of 5% would show as such: its Monte Carlo error is 0.35 points).
    equal = error_rates(repeats, cv=RESNET50_CV, trials=4000)
    assert equal.false_verdicts <= 0.05
    assert equal.coverage >= 0.94
    apart = error_rates(repeats, cv=RESNET50_CV, true_ratio=1.1, trials=1000, seed=1)
    assert apart.coverage >= 0.94
    assert apart.slower == 0  # a 10% faster cell is never called slower


def test_a_clear_difference_is_found_once_repeats_allow():
    assert (
        error_rates(2, true_ratio=1.1, trials=500).faster
        < error_rates(5, true_ratio=1.1, trials=500).faster
    )
    assert error_rates(5, true_ratio=1.1, trials=500).faster > 0.9
