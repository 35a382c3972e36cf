import struct

import pytest

from kit.errors import UsageError
from kit.reporting.plots import Bar, UtilSeries, bar_chart_png, heatmap_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, the first chunk after the signature."""
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def bars(n: int) -> list[Bar]:
    out = [Bar("stock:default", 100.0, 95.0, 104.0, "1.00x (baseline)")]
    for i in range(1, n):
        rate = 100.0 + 50 * i
        out.append(
            Bar(
                f"intel:tuned-{i}",
                rate,
                rate * 0.95,
                rate * 1.05,
                f"{rate / 100:.2f}x [{rate / 105:.1f}, {rate / 95:.1f}] faster",
                noisy=i % 3 == 0,
            )
        )
    return out


def series(cpus: int, samples: int, pinned: tuple[int, ...] = (0,)) -> UtilSeries:
    return UtilSeries(
        title="intel:tuned, repeat 1",
        cpus=tuple(range(cpus)),
        times_s=tuple(float(2 * t) for t in range(samples)),
        busy=tuple(
            tuple(float((7 * c + 13 * t) % 101) for t in range(samples)) for c in range(cpus)
        ),
        pinned=pinned,
    )


def test_bar_chart_is_a_png_of_the_default_size():
    png = bar_chart_png(bars(4), "ResNet-50 <synthetic>")
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    assert png_size(png) == (1000, 500)


def test_bar_chart_grows_wider_with_many_bars():
    few = png_size(bar_chart_png(bars(3), "few"))
    many = png_size(bar_chart_png(bars(30), "many"))
    assert many[0] > few[0]
    assert many == (70 * 30 + 200, 500)


def test_bar_chart_is_deterministic():
    assert bar_chart_png(bars(5), "t") == bar_chart_png(bars(5), "t")


def test_bar_chart_of_one_bar_without_speedup_or_spread():
    png = bar_chart_png([Bar("stock:default", 42.0, 42.0, 42.0)], "one")
    assert png_size(png) == (1000, 500)


def test_noisy_bars_change_the_picture():
    steady = [Bar("a", 10.0, 9.0, 11.0), Bar("b", 20.0, 18.0, 22.0)]
    noisy = [steady[0], Bar("b", 20.0, 18.0, 22.0, noisy=True)]
    assert bar_chart_png(steady, "t") != bar_chart_png(noisy, "t")


def test_bar_chart_refuses_no_bars():
    with pytest.raises(UsageError, match="no bars"):
        bar_chart_png([], "empty")


@pytest.mark.parametrize(
    ("median", "low", "high"),
    [
        (10.0, 11.0, 12.0),  # low above the median
        (10.0, 9.0, 9.5),  # high below the median
        (-1.0, -2.0, 0.0),  # negative throughput
        (float("nan"), 1.0, 2.0),
        (1.0, 0.5, float("inf")),
    ],
)
def test_bar_refuses_inconsistent_values(median, low, high):
    with pytest.raises(UsageError):
        Bar("x", median, low, high)


def test_heatmap_is_a_png_of_the_default_size():
    png = heatmap_png(series(cpus=8, samples=30, pinned=(0, 1, 2, 3)))
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    assert png_size(png) == (1000, 500)


def test_heatmap_of_a_single_sample():
    png = heatmap_png(series(cpus=4, samples=1))
    assert png_size(png) == (1000, 500)


def test_heatmap_of_72_cpus_grows_taller():
    png = heatmap_png(series(cpus=72, samples=20, pinned=tuple(range(18))))
    assert png_size(png) == (1000, 14 * 72 + 160)


def test_heatmap_marks_pinned_cpus():
    assert heatmap_png(series(4, 5, pinned=())) != heatmap_png(series(4, 5, pinned=(2,)))


def test_heatmap_is_deterministic():
    assert heatmap_png(series(6, 10)) == heatmap_png(series(6, 10))


def test_heatmap_accepts_uneven_sampling():
    s = UtilSeries("t", (0, 1), (0.0, 0.7, 3.0, 3.2), ((1, 2, 3, 4), (5, 6, 7, 8)), (1,))
    assert png_size(heatmap_png(s)) == (1000, 500)


@pytest.mark.parametrize(
    ("cpus", "times", "busy", "match"),
    [
        ((), (0.0,), (), "no CPU utilization"),
        ((0,), (), ((),), "no CPU utilization"),
        ((0, 1), (0.0, 1.0), ((1.0, 2.0),), "1 rows for 2 CPUs"),
        ((0, 1), (0.0, 1.0), ((1.0, 2.0), (3.0,)), "cpu 1 has 1 busy samples for 2 times"),
        ((0,), (0.0, 1.0), ((1.0, 2.0, 3.0),), "3 busy samples for 2 times"),
        ((0, 0), (0.0,), ((1.0,), (2.0,)), "appears twice"),
        ((0,), (0.0,), ((101.0,),), "within 0-100"),
        ((0,), (0.0,), ((-1.0,),), "within 0-100"),
        ((0,), (0.0,), ((float("nan"),),), "within 0-100"),
        ((0,), (1.0, 1.0), ((1.0, 2.0),), "strictly increase"),
        ((0,), (2.0, 1.0), ((1.0, 2.0),), "strictly increase"),
    ],
)
def test_util_series_refuses_bad_shapes(cpus, times, busy, match):
    with pytest.raises(UsageError, match=match):
        UtilSeries("t", cpus, times, busy, ())
