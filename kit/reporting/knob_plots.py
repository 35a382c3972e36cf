"""A sweep's or tune's figures: images/sec over two knobs (heatmap), a line per knob, the scaling
curve with its ideal line, the attribution ladder as a waterfall. Data -> PNG bytes, drawn like
kit.reporting.plots (private Agg figures, fixed pixel sizes)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from kit.judging.analysis import Attribution, Curve
from kit.judging.stats import Verdict
from kit.reporting.plots import BAR_COLOUR, HEATMAP_CMAP, _figure, _png

WIDTH_PX, HEIGHT_PX = 900, 550
FASTER, SLOWER, SAME = "#55a868", "#c44e52", "#8c8c8c"


def knob_heatmap_png(x: str, y: str, rates: Mapping[tuple[str, str], float], title: str) -> bytes:
    """Images/sec for each (x value, y value); a cell missing from the sweep stays blank."""
    xs = list(dict.fromkeys(a for a, _ in rates))
    ys = list(dict.fromkeys(b for _, b in rates))
    grid = [[rates.get((a, b), float("nan")) for a in xs] for b in ys]
    fig = _figure(WIDTH_PX, HEIGHT_PX)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap=HEATMAP_CMAP, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for j, row in enumerate(grid):
        for i, value in enumerate(row):
            if not math.isnan(value):
                ax.text(i, j, f"{value:.2f}", ha="center", va="center", color="white")
    fig.colorbar(image, ax=ax, label="images/sec (best over the other knobs)")
    ax.set_title(title)
    return _png(fig)


def knob_lines_png(lines: Mapping[str, Sequence[tuple[str, float]]], title: str) -> bytes:
    """One panel per knob: images/sec against its values, the other knobs at the best's."""
    fig = _figure(WIDTH_PX, max(HEIGHT_PX, 220 * ((len(lines) + 1) // 2)))
    for n, (knob, points) in enumerate(lines.items(), 1):
        ax = fig.add_subplot((len(lines) + 1) // 2, 2 if len(lines) > 1 else 1, n)
        ax.plot([v for v, _ in points], [r for _, r in points], marker="o", color=BAR_COLOUR)
        ax.set_xlabel(knob)
        ax.set_ylabel("images/sec")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _png(fig)


def scaling_png(curves: Sequence[Curve], title: str) -> bytes:
    """Images/sec per core count, each curve with its ideal linear line (dashed)."""
    fig = _figure(WIDTH_PX, HEIGHT_PX)
    ax = fig.add_subplot()
    for curve in curves:
        cores = [p.cores for p in curve.points]
        line = ax.plot(cores, [p.images_per_sec for p in curve.points], marker="o",
                       label=curve.label or "measured")[0]  # fmt: skip
        ax.plot(cores, [p.ideal for p in curve.points], linestyle="--", color=line.get_color(),
                label=f"{curve.label} ideal".strip())  # fmt: skip
        for p in curve.points:
            ax.annotate(f"{p.efficiency:.0%}", (p.cores, p.images_per_sec),
                        textcoords="offset points", xytext=(0, 8), ha="center")  # fmt: skip
    ax.set_xlabel("cores")
    ax.set_ylabel("images/sec")
    ax.set_xticks(sorted({p.cores for c in curves for p in c.points}))
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _png(fig)


def waterfall_png(a: Attribution, base_rate: float, title: str) -> bytes:
    """From the baseline's images/sec, each rung of the ladder as the step it adds."""
    fig = _figure(WIDTH_PX, HEIGHT_PX)
    ax = fig.add_subplot()
    labels, level = ["baseline"], base_rate
    ax.bar(0, base_rate, color=BAR_COLOUR)
    for i, step in enumerate(a.ladder, 1):
        after = level * step.speedup.ratio
        colour = {Verdict.faster: FASTER, Verdict.slower: SLOWER}.get(step.speedup.verdict, SAME)
        ax.bar(i, after - level, bottom=level, color=colour)
        ax.annotate(f"{step.speedup.ratio:.2f}x", (i, max(after, level)),
                    textcoords="offset points", xytext=(0, 4), ha="center")  # fmt: skip
        labels.append(step.describe().replace(" + ", "\n+ "))
        level = after
    ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("images/sec")
    ax.set_title(title)
    return _png(fig)
