"""Statistics over repeated runs of one benchmark cell: summaries, speedups with an interval,
noise, and the order repeats run in. Pure: the only randomness is a seeded generator."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kit.errors import UsageError

NOISE_THRESHOLD = 0.05
NOISE_HINT = (
    "other load on the host, or too few batches: close other work, raise --num-batches or --repeats"
)
MIN_RESAMPLES = 100


@dataclass(frozen=True)
class Summary:
    """One cell's images/sec over its repeats. ``cv`` is stdev / mean (0 for a single run)."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    stdev: float
    cv: float

    def __post_init__(self) -> None:
        if self.n < 1:
            raise UsageError(f"a summary needs at least one sample, not {self.n}")
        values = (self.median, self.mean, self.min, self.max, self.stdev, self.cv)
        if not all(math.isfinite(v) for v in values):
            raise UsageError(f"a summary holds a non-finite value: {values}")
        if not 0 < self.min <= self.median <= self.max or not self.min <= self.mean <= self.max:
            raise UsageError(
                f"inconsistent summary: min {self.min}, median {self.median}, "
                f"mean {self.mean}, max {self.max}"
            )
        if self.stdev < 0 or self.cv < 0:
            raise UsageError(f"negative spread in a summary: stdev {self.stdev}, cv {self.cv}")


class Verdict(StrEnum):
    faster = "faster"
    slower = "slower"
    same = "same"  # the interval holds 1: no significant difference
    unknown = "unknown"  # fewer than 2 samples on a side: no interval can be drawn


@dataclass(frozen=True)
class Speedup:
    """Candidate over baseline: the ratio of medians and its confidence interval."""

    ratio: float
    low: float
    high: float
    verdict: Verdict

    def __post_init__(self) -> None:
        values = (self.ratio, self.low, self.high)
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise UsageError(f"a speedup must be finite and positive: {values}")
        if self.low > self.high:
            raise UsageError(f"speedup interval runs backwards: {self.low} > {self.high}")


def summarize(samples: Sequence[float]) -> Summary:
    values = _checked(samples, "samples")
    mean = statistics.mean(values)  # exact, so it never falls outside [min, max]
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(
        n=len(values),
        median=statistics.median(values),
        mean=mean,
        min=min(values),
        max=max(values),
        stdev=stdev,
        cv=stdev / mean,
    )


def compare(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Speedup:
    """How much faster ``candidate`` is than ``baseline``: median over median, with a percentile
    bootstrap interval (both sides resampled independently, ``random.Random(seed)``).

    Why the ratio of medians, bootstrapped: one disturbed repeat (a cron job, a page-cache miss)
    moves a median far less than a mean, and the bootstrap assumes no normal distribution, which
    a handful of throughput samples never show. Its limit: with few repeats the resampled
    medians can only take a few values, so the interval is wide and coarse, and the percentile
    bootstrap is known to be slightly optimistic (too narrow) at such sizes. Treat a verdict from
    2-3 repeats as a hint and confirm it with more.
    """
    cand = _checked(candidate, "candidate samples")
    base = _checked(baseline, "baseline samples")
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1, not {confidence}", "e.g. 0.95")
    if resamples < MIN_RESAMPLES:
        raise UsageError(
            f"{resamples} bootstrap resamples are too few for an interval",
            f"use at least {MIN_RESAMPLES}",
        )
    ratio = statistics.median(cand) / statistics.median(base)
    if len(cand) < 2 or len(base) < 2:
        return Speedup(ratio, ratio, ratio, Verdict.unknown)
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(cand, k=len(cand)))
        / statistics.median(rng.choices(base, k=len(base)))
        for _ in range(resamples)
    )
    tail = int((1 - confidence) / 2 * resamples)
    low, high = ratios[tail], ratios[-1 - tail]
    if low > 1:
        verdict = Verdict.faster
    elif high < 1:
        verdict = Verdict.slower
    else:
        verdict = Verdict.same
    return Speedup(ratio, low, high, verdict)


def is_noisy(summary: Summary, threshold: float = NOISE_THRESHOLD) -> bool:
    if not threshold >= 0:
        raise UsageError(f"noise threshold must be zero or more, not {threshold}", "e.g. 0.05")
    return summary.cv > threshold


def interleaved_order(cells: int, repeats: int) -> list[list[int]]:
    """Cell indices per repeat, alternating direction (A B C, C B A, ...) so a slow drift of the
    host (heat, turbo budget, background work) does not always land on the same cells."""
    if cells < 1 or repeats < 1:
        raise UsageError(
            f"nothing to order: {cells} cells x {repeats} repeats", "give at least one of each"
        )
    forward = list(range(cells))
    return [forward[:] if r % 2 == 0 else forward[::-1] for r in range(repeats)]


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(v) for v in samples]
    if not values:
        raise UsageError(f"no {what}", "a cell needs at least one successful run")
    bad = [v for v in values if not (math.isfinite(v) and v > 0)]
    if bad:
        raise UsageError(
            f"{what} must be finite and positive images/sec, got {bad[0]!r}",
            "drop failed runs before summarizing",
        )
    return values
