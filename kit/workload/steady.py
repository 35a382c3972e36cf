"""When a run's step time has settled: the rule the workload's warmup stops on, and the trend
kit reads in its timed steps. Pure, standard library only (it runs inside the images too).

Why a fixed warmup is not enough: in its first steps a training process may still be growing
TensorFlow's CPU memory pool (oneDNN's allocator keeps what it takes and never returns it),
and each new page is faulted in on first touch. With Keras' SGD update, ResNet-50 at batch 32
on 2 CPUs grew from 3.5 to 4.7 GB over its first three steps; which step grew depended on how
the inter-op threads interleaved the ops, and a step that grew by ~240,000 pages (0.9 GB) took
5.1-5.4 s instead of 3.2 (Intel Xeon, AMX). After 2 warmup batches the first timed ones ran
9-16% slow in 8 of 10 runs, so a 10-batch mean was several per cent low and its repeats noisy.
kit's step now updates its weights with the fused op tf_cnn_benchmarks uses and reaches its
pool in the first step (kit_workload.train.sgd_update); the pool cannot be sized from Python,
so the warmup still runs until any growing has stopped, as the step time and page faults show.

The warmup rule: after the first step (which traces and optimizes the step's graph) the step
time has settled once ``WINDOW`` consecutive steps lie within ``SPREAD`` of each other (slowest
over fastest), or, where steps vary by more, their median is no more than ``SPREAD`` below the
median of the ``WINDOW`` steps before them (the time has stopped falling), and neither grew the
process's memory. The second way is for hosts whose steps vary by 4-8% however long they run
(a 2-vCPU AMD EPYC Zen 2 VM, AVX2: intel ResNet-50 steps of 6.35-6.95 s after the first, no
three within 4%; the spread alone warmed 5 of 8 runs to the 120-s bound, 9-17 batches, while
their step time had stopped falling after 4 to 6; meanwhile the host's slow phases, 30-45% for
minutes, came into the timed batches). A smooth slow start meets the spread first, so on quiet
hosts the rule stops where it did. Memory growth: faulted in more than ``GROWTH_SHARE`` of
the pages the first step did above the steps' steady level (a growing step faults
170,000-420,000 pages here, a settled one up to ~10,000 with glibc's malloc and 30,000-46,000
with jemalloc, against ~735,000 in the first). The level is the fewest pages the window's steps
faulted: a step may fault the same memory anew each time, freed to the system and touched
again, which is no growth (stock TensorFlow's Eigen path on an AVX2 host, AMD EPYC Zen 2:
ResNet-50 at batch 32 faults 780,000-840,000 pages in every step, 1,140,000 in the first).
With the fused update it stops after 4 or 5 steps. On the 10 Keras-SGD runs it stopped
after 4 to 7 steps and the mean of the next 4 steps was
within 4% of the settled rate in every one. A window of 2 stopped after 3 to 5 steps, but in 2
of 7 later runs the memory grew only after the warmup had stopped (its step 2 and 3 had grown
less than usual) and cost the 10-batch mean 5-7%; a window of 3 waits out most of those. A
timed batch that still grew the memory is said in the table (kit.reporting.rows). Warmup is bounded
by ``MAX_BATCHES`` and ``MAX_SECONDS``: a host too noisy to settle says so instead of warming
up forever.

The trend: a least-squares line through the logarithms of the timed steps' times, as the
change in images/sec from the first timed step to the last, with a 99% t interval. A run of at
least ``MIN_TREND_STEPS`` timed steps whose rate still moved by more than ``TREND_LIMIT`` (the
interval clear of zero) did not measure a steady state: its mean depends on how many batches
were timed. 99%, not 95%: a cell has up to 5 runs, and at 95% one in four settled cells would
have a run said to trend by chance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

AUTO = "auto"  # a warmup until the step time settles, as the workload's flag says it
WINDOW = 3
SPREAD = 0.04
MAX_BATCHES = 30
MAX_SECONDS = 120.0
TREND_LIMIT = 0.05
MIN_TREND_STEPS = 5
GROWTH_SHARE = 0.10
GROWTH_FLOOR = 25_600  # pages (100 MB): less is no growth, however small the first step was
# Two-sided 99% Student t quantiles by degrees of freedom (scipy is not in the images).
_T995 = (63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169,
         3.106, 3.055, 3.012, 2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845)  # fmt: skip
_T995_LARGE = ((30, 2.750), (40, 2.704), (60, 2.660), (120, 2.617))


def settled(
    step_times: Sequence[float],
    faults: Sequence[int] = (),
    window: int = WINDOW,
    spread: float = SPREAD,
) -> bool:
    """Whether the step time has settled: the last ``window`` steps (the first step of all left
    out) grew no memory, where page faults are given, and either lie within ``spread`` of each
    other or, on a host whose steps vary by more, run no faster than the ``window`` steps before
    them by more than ``spread`` (median against median): the step time has stopped falling,
    and what varies is noise, which the timed mean averages and the trend still checks."""
    if len(step_times) < window + 1:
        return False
    last = step_times[-window:]
    if faults and growing(faults[-window:], faults[0]):
        return False
    if min(last) <= 0:
        return False
    if max(last) / min(last) - 1 <= spread:
        return True
    if len(step_times) < 2 * window + 1:
        return False
    before = step_times[-2 * window : -window]
    return statistics.median(last) >= (1 - spread) * statistics.median(before)


def growing(faults: Sequence[int], first: int, level: int | None = None) -> list[int]:
    """The positions of the steps that grew the process's memory: page faults above the steady
    level (``level``, else the fewest any of these steps faulted) by more than GROWTH_SHARE of
    the ``first`` step's, and than GROWTH_FLOOR. The level is what each step faults anew alike,
    memory freed to the system and touched again, which is not growth."""
    if first <= 0 or not faults:
        return []  # nothing to compare with
    base = min(faults) if level is None else level
    limit = base + max(GROWTH_SHARE * first, GROWTH_FLOOR)
    return [i for i, f in enumerate(faults) if f > limit]


def warmup_done(step_times: Sequence[float], seconds: float, faults: Sequence[int] = ()) -> bool:
    """Whether the warmup ends now: settled, or out of batches or time."""
    done = settled(step_times, faults) or len(step_times) >= MAX_BATCHES
    return done or seconds >= MAX_SECONDS


def t995(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    if df <= len(_T995):
        return _T995[df - 1]
    for limit, value in _T995_LARGE:
        if df <= limit:
            return value
    return 2.576


@dataclass(frozen=True)
class Trend:
    """The change in images/sec across the timed steps, first to last, with its interval."""

    change: float
    low: float
    high: float
    steps: int

    @property
    def significant(self) -> bool:
        """The rate moved by more than TREND_LIMIT and the interval rules out no movement."""
        return abs(self.change) > TREND_LIMIT and (self.low > 0 or self.high < 0)

    def describe(self) -> str:
        return (
            f"images/sec moved {self.change:+.0%} [{self.low:+.0%}, {self.high:+.0%}] "
            f"from the first timed batch to the last ({self.steps} batches)"
        )


def trend(step_times: Sequence[float]) -> Trend | None:
    """The least-squares trend of the timed steps, None for fewer than MIN_TREND_STEPS."""
    times = [float(t) for t in step_times]
    n = len(times)
    if n < MIN_TREND_STEPS or not all(t > 0 and math.isfinite(t) for t in times):
        return None
    logs = [math.log(t) for t in times]
    xs = range(n)
    x_mean, y_mean = (n - 1) / 2, statistics.fmean(logs)
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, logs, strict=True)) / sxx
    residuals = [y - (y_mean + slope * (x - x_mean)) for x, y in zip(xs, logs, strict=True)]
    se = math.sqrt(sum(r * r for r in residuals) / (n - 2) / sxx)
    half = t995(n - 2) * se
    span = n - 1

    def rate_change(s: float) -> float:  # a falling step time is a rising rate
        return math.exp(-s * span) - 1

    return Trend(rate_change(slope), rate_change(slope + half), rate_change(slope - half), n)
