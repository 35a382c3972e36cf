"""Pure plotters: measurements -> PNG bytes. matplotlib is imported here and nowhere else.

Figures are drawn with the Agg canvas on a private ``Figure``, never through pyplot, so nothing
depends on a display or on global plotting state, and two calls never share a figure.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
# Pixel sizes are fixed so the same data always gives an image of the same size.
BAR_CHART_HEIGHT_PX = 500
BAR_CHART_MIN_WIDTH_PX = 1000
BAR_CHART_PX_PER_BAR = 70  # room for a wrapped speedup label over each bar
HEATMAP_WIDTH_PX = 1000
HEATMAP_MIN_HEIGHT_PX = 500
HEATMAP_PX_PER_CPU = 14  # keeps 72+ row labels legible
HEATMAP_MARGIN_PX = 160  # title, x axis and its label
SPEEDUP_LINE_CHARS = 12

BAR_COLOUR = "#4c72b0"
NOISY_COLOUR = "#a9bcdc"
NOISY_HATCH = "//"
HEATMAP_CMAP = "viridis"


@dataclass(frozen=True)
class Bar:
    """One (image, profile) cell: its median images/sec and the spread of its repeats."""

    label: str
    median: float
    low: float
    high: float
    speedup: str | None = None
    noisy: bool = False

    def __post_init__(self) -> None:
        values = (self.median, self.low, self.high)
        if not all(math.isfinite(v) for v in values):
            raise UsageError(f"bar {self.label!r} holds a non-finite value: {values}")
        if not 0 <= self.low <= self.median <= self.high:
            raise UsageError(
                f"bar {self.label!r} needs 0 <= low <= median <= high, "
                f"got {self.low}, {self.median}, {self.high}",
                "low and high are the min and max over the cell's repeats",
            )


@dataclass(frozen=True)
class UtilSeries:
    """Busy % of host CPUs sampled during one run: ``busy[row][column]`` is ``cpus[row]`` at
    ``times_s[column]``."""

    title: str
    cpus: tuple[int, ...]
    times_s: tuple[float, ...]
    busy: tuple[tuple[float, ...], ...]
    pinned: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.cpus or not self.times_s:
            raise UsageError(
                f"no CPU utilization to plot: {len(self.cpus)} CPUs x {len(self.times_s)} samples",
                "sample at least one CPU once",
            )
        if len(set(self.cpus)) != len(self.cpus):
            raise UsageError(f"a CPU appears twice among the rows: {list(self.cpus)}")
        if len(self.busy) != len(self.cpus):
            raise UsageError(
                f"busy has {len(self.busy)} rows for {len(self.cpus)} CPUs",
                "give one row of busy % per CPU",
            )
        for cpu, row in zip(self.cpus, self.busy, strict=True):
            if len(row) != len(self.times_s):
                raise UsageError(
                    f"cpu {cpu} has {len(row)} busy samples for {len(self.times_s)} times",
                    "give one busy % per CPU per sample time",
                )
            bad = [v for v in row if not (math.isfinite(v) and 0 <= v <= 100)]
            if bad:
                raise UsageError(
                    f"cpu {cpu} busy % must be within 0-100, got {bad[0]!r}",
                    "clamp sampler rounding before plotting",
                )
        if not all(math.isfinite(t) for t in self.times_s):
            raise UsageError(f"sample times must be finite: {list(self.times_s)}")
        if any(b <= a for a, b in itertools.pairwise(self.times_s)):
            raise UsageError(
                "sample times must strictly increase", "give seconds since the run started"
            )


def _annotate_speedups(ax, bars: Sequence[Bar]) -> None:
    for x, bar in enumerate(bars):
        if bar.speedup:
            # Offset in points, not data units, so the gap above the error bar is the same for
            # every bar whatever the scale.
            ax.annotate(
                _wrap(bar.speedup), (x, bar.high), xytext=(0, 4), textcoords="offset points",
                ha="center", va="bottom", fontsize=8, linespacing=1.1,
            )  # fmt: skip


def _noisy_legend(ax) -> None:
    from matplotlib.patches import Patch  # noqa: PLC0415 -- heavy: see _figure

    steady = Patch(facecolor=BAR_COLOUR, edgecolor="#333333", label="steady")
    noisy = Patch(facecolor=NOISY_COLOUR, edgecolor="#333333", hatch=NOISY_HATCH, label="noisy")
    ax.legend(handles=[steady, noisy], loc="upper right", fontsize=8)


def bar_chart_png(bars: Sequence[Bar], title: str) -> bytes:
    """Images/sec per cell with min-max error bars, the speedup over each bar, noisy bars
    hatched. Wider than the default when there are many bars."""
    if not bars:
        raise UsageError("no bars to plot", "a chart needs at least one successful cell")
    width_px = max(BAR_CHART_MIN_WIDTH_PX, BAR_CHART_PX_PER_BAR * len(bars) + 200)
    fig = _figure(width_px, BAR_CHART_HEIGHT_PX)
    ax = fig.add_subplot()
    xs = range(len(bars))
    medians = [b.median for b in bars]
    drawn = ax.bar(
        xs,
        medians,
        yerr=[[b.median - b.low for b in bars], [b.high - b.median for b in bars]],
        capsize=4,
        color=[NOISY_COLOUR if b.noisy else BAR_COLOUR for b in bars],
        edgecolor="#333333",
        linewidth=0.8,
        error_kw={"elinewidth": 1, "ecolor": "#222222"},
    )
    for patch, bar in zip(drawn.patches, bars, strict=True):
        if bar.noisy:
            patch.set_hatch(NOISY_HATCH)
    _annotate_speedups(ax, bars)
    top = max(b.high for b in bars)
    # Headroom for up to three lines of speedup text over the tallest bar.
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(
        [b.label for b in bars], rotation=35, ha="right", rotation_mode="anchor", fontsize=9
    )
    ax.set_ylabel("images/sec")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if any(b.noisy for b in bars):
        _noisy_legend(ax)
    return _png(fig)


def heatmap_png(series: UtilSeries) -> bytes:
    """Busy % per host CPU (rows, in the given order, top down) over time (columns). Labels of
    the CPUs the run was pinned to are bold and starred, so load outside them stands out."""
    rows = len(series.cpus)
    height_px = max(HEATMAP_MIN_HEIGHT_PX, HEATMAP_PX_PER_CPU * rows + HEATMAP_MARGIN_PX)
    fig = _figure(HEATMAP_WIDTH_PX, height_px)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        _edges(series.times_s),
        range(rows + 1),
        [list(row) for row in series.busy],
        cmap=HEATMAP_CMAP,
        vmin=0,
        vmax=100,
        shading="flat",
    )
    pinned = set(series.pinned)
    ax.set_yticks([i + 0.5 for i in range(rows)])
    labels = ax.set_yticklabels(
        [f"cpu {c} *" if c in pinned else f"cpu {c}" for c in series.cpus],
        fontsize=8 if rows <= 32 else 7,
    )
    for label, cpu in zip(labels, series.cpus, strict=True):
        if cpu in pinned:
            label.set_fontweight("bold")
    ax.set_ylim(rows, 0)  # first CPU on top, as lists are read
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("host CPU (* = pinned)" if pinned else "host CPU")
    ax.set_title(series.title)
    bar = fig.colorbar(mesh, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("busy %")
    bar.set_ticks([0, 25, 50, 75, 100])
    return _png(fig)


def _figure(width_px: int, height_px: int) -> Figure:
    # heavy (~0.4 s with numpy): imported when a plot is drawn, not when kit starts
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No bbox_inches="tight": it would change the pixel size with the content. No Software key:
    # the bytes then do not change with the matplotlib version.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _edges(times: Sequence[float]) -> list[float]:
    """Column edges halfway between samples, so uneven sampling still draws each sample where it
    was taken; a lone sample gets one second. The axis does not run before the run started."""
    if len(times) == 1:
        first, last = times[0] - 0.5, times[0] + 0.5
        mids: list[float] = []
    else:
        mids = [(a + b) / 2 for a, b in itertools.pairwise(times)]
        first, last = 2 * times[0] - mids[0], 2 * times[-1] - mids[-1]
    if times[0] >= 0:
        first = max(first, 0.0)
    return [first, *mids, last]


def _wrap(text: str) -> str:
    """Short lines, keeping a bracketed interval like ``[5.9, 6.3]`` on one line, so labels of
    neighbouring bars do not run into each other."""
    lines: list[str] = []
    for token in re.findall(r"\[[^\]]*\]|\([^)]*\)|\S+", text):
        if lines and len(lines[-1]) + 1 + len(token) <= SPEEDUP_LINE_CHARS:
            lines[-1] += " " + token
        else:
            lines.append(token)
    return "\n".join(lines)


TREND_WIDTH_PX, TREND_HEIGHT_PX = 1000, 420


@dataclass(frozen=True)
class TrendPlot:
    """One series over sessions: each point's figure and interval, and where it changed."""

    title: str
    values: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    changes: tuple[int, ...]  # index of the first point of each new level
    labels: tuple[str, ...]  # each point's session, shortened


def trend_png(plot: TrendPlot) -> bytes:
    """Points with their intervals, each level's geometric mean as a line, a dashed line at
    each change."""
    if not plot.values or not len(plot.values) == len(plot.lows) == len(plot.highs):
        raise UsageError("a trend plot needs one interval per point", "pass the series' points")
    fig = _figure(TREND_WIDTH_PX, TREND_HEIGHT_PX)
    ax = fig.add_subplot()
    x = list(range(len(plot.values)))
    below = [v - lo for v, lo in zip(plot.values, plot.lows, strict=True)]
    above = [hi - v for v, hi in zip(plot.values, plot.highs, strict=True)]
    ax.errorbar(x, plot.values, yerr=[below, above], fmt="o", ms=4, capsize=2, color="#1f5fa8",
                ecolor="#8fb3dd", label="session: geometric mean, 95% interval")  # fmt: skip
    bounds = [0, *plot.changes, len(x)]
    for start, end in itertools.pairwise(bounds):
        level = math.exp(sum(math.log(v) for v in plot.values[start:end]) / (end - start))
        ax.hlines(level, start - 0.4, end - 0.6, colors="#444", linewidth=1.5)
    for at in plot.changes:
        ax.axvline(at - 0.5, color="#c0392b", linestyle="--", linewidth=1.2)
    # A 2-repeat interval can span 10x: the axis follows the points, long whiskers run off it.
    bottom = min(max(lo, 0.75 * v) for v, lo in zip(plot.values, plot.lows, strict=True))
    top = max(min(hi, 1.25 * v) for v, hi in zip(plot.values, plot.highs, strict=True))
    ax.set_ylim(bottom * 0.97, top * 1.03)
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], plot.labels[::step], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("images/sec")
    ax.set_title(plot.title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)
