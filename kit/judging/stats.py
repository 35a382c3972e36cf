"""Statistics over repeated runs of one benchmark cell: summaries, speedups with an interval,
noise, and the order repeats run in. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kit.errors import UsageError

NOISE_THRESHOLD = 0.05
NOISE_HINT = (
    "other load on the host, or too few batches: close other work, raise --num-batches or --repeats"
)
MIN_REPEATS = 2  # a side: fewer give no interval, so no verdict
# Rounds a cell and its baseline must share to be compared by round. Two would do in theory,
# but their spread has one degree of freedom: two rounds whose ratios agree by chance give an
# interval of nothing (seen: 1.0301x and 1.0302x, "1.03x [1.03, 1.03] faster", where all of
# both cells' runs said 0.98x [0.74, 1.29]). With one degree of freedom the spread reads under
# 2% of its true value 1.6% of the time; with two, 0.04%. Fewer rounds: Welch on all repeats.
MIN_PAIRED_ROUNDS = 3


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
    """Candidate over baseline: the ratio of geometric means and its confidence interval."""

    ratio: float
    low: float
    high: float
    verdict: Verdict
    rounds: int = 0  # compared within this many repeat rounds (paired); 0: unpaired (Welch)
    confidence: float = 0.95  # the interval's

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
    candidate: Sequence[float], baseline: Sequence[float], *, confidence: float = 0.95
) -> Speedup:
    """How much faster ``candidate`` is than ``baseline``: the ratio of geometric means, with a
    Welch t interval on log images/sec.

    Why this interval: throughput noise is multiplicative (a slower host slows every step by a
    factor), so its logarithm is close to normal, and a t interval on the difference of log means
    keeps its promise at the repeat counts kit runs. Simulated with 3% lognormal noise (kit's cv
    on ResNet-50 here, ``benchmarks/verdicts.py``): equal cells get a "faster" or "slower" verdict
    in at most 5% of comparisons and the 95% interval covers the true ratio in at least 95%, from
    2 repeats a side up. The percentile bootstrap of medians it replaces said "faster"/"slower"
    in 34% of such comparisons at 2 repeats and 10% at 3. Welch's degrees of freedom let the two
    cells vary by different amounts; at 2 repeats the interval is honest, hence wide.
    """
    cand = _checked(candidate, "candidate samples")
    base = _checked(baseline, "baseline samples")
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1, not {confidence}", "e.g. 0.95")
    log_c, log_b = [math.log(v) for v in cand], [math.log(v) for v in base]
    diff = statistics.fmean(log_c) - statistics.fmean(log_b)
    ratio = math.exp(diff)
    if len(cand) < MIN_REPEATS or len(base) < MIN_REPEATS:
        return Speedup(ratio, ratio, ratio, Verdict.unknown, confidence=confidence)
    var_c = statistics.variance(log_c) / len(log_c)
    var_b = statistics.variance(log_b) / len(log_b)
    spread = math.sqrt(var_c + var_b)
    if spread == 0:  # identical repeats on both sides: the ratio is all there is
        return t_interval(diff, 0.0, 1.0, confidence)
    df = (var_c + var_b) ** 2 / (var_c**2 / (len(log_c) - 1) + var_b**2 / (len(log_b) - 1))
    return t_interval(diff, spread, df, confidence)


def t_interval(diff: float, spread: float, df: float, confidence: float, rounds: int = 0):
    """The speedup exp(``diff``) with a t interval of ``spread`` (the standard error of the
    log ratio) on ``df`` degrees of freedom; a spread of 0 (identical repeats) is the ratio
    alone."""
    ratio = math.exp(diff)
    if spread == 0:
        return Speedup(ratio, ratio, ratio, verdict_of(ratio, ratio, ratio), rounds, confidence)
    from scipy.stats import t as student_t  # noqa: PLC0415 -- heavy: scipy takes ~1 s

    half = float(student_t.ppf(0.5 + confidence / 2, df)) * spread
    low, high = math.exp(diff - half), math.exp(diff + half)
    return Speedup(ratio, min(low, ratio), max(high, ratio), verdict_of(low, high, ratio), rounds,
                   confidence)  # fmt: skip


def compare_paired(pairs: Sequence[tuple[float, float]], *, confidence: float = 0.95) -> Speedup:
    """Candidate over baseline from (candidate, baseline) pairs that ran side by side (one
    repeat round each): the geometric mean of their ratios, with a paired t interval on the log
    ratios. A host whose speed drifts between rounds (a shared cloud VM: +-30% over minutes)
    moves both runs of a pair alike, so the drift cancels instead of widening the interval;
    what is left is how much the pair's ratio varies from round to round."""
    logs = [math.log(c) - math.log(b) for c, b in zip(
        _checked([c for c, _ in pairs], "candidate samples"),
        _checked([b for _, b in pairs], "baseline samples"), strict=True)]  # fmt: skip
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1, not {confidence}", "e.g. 0.95")
    diff = statistics.fmean(logs)
    ratio = math.exp(diff)
    if len(logs) < MIN_REPEATS:
        return Speedup(ratio, ratio, ratio, Verdict.unknown, len(logs), confidence=confidence)
    spread = statistics.stdev(logs) / math.sqrt(len(logs))
    return t_interval(diff, spread, len(logs) - 1, confidence, len(logs))


def repeats_to_decide(
    ratio: float, low: float, high: float, n: int, confidence: float = 0.95, paired: bool = True
) -> str | None:
    """What would decide a comparison that its noise left undecided (``same``), said from its
    own interval over ``n`` repeats (rounds, when ``paired``; else a side's repeats, Welch's
    degrees of freedom taken as two sides' alike): how much one repeat's ratio varies, the
    smallest difference these repeats can tell, and the repeats the difference seen would need
    at that spread. None when there is no interval to read."""
    if n < MIN_REPEATS or not 0 < low < high:
        return None
    from scipy.stats import t as student_t  # noqa: PLC0415 -- heavy: scipy takes ~1 s

    def t(m: int) -> float:
        return float(student_t.ppf(0.5 + confidence / 2, (m - 1) * (1 if paired else 2)))

    half = (math.log(high) - math.log(low)) / 2
    spread = half / t(n) * math.sqrt(n)
    text = (f"{ratio:.2f}x: one repeat's ratio varies by {spread:.0%}, so {n} "
            f"repeats tell only differences beyond {math.exp(half) - 1:.0%}")  # fmt: skip
    seen = abs(math.log(ratio))
    if seen >= 0.01:
        need = next((m for m in range(n, 1001) if t(m) * spread / math.sqrt(m) < seen), None)
        if need is None:
            text += f"; the {math.exp(seen) - 1:.0%} seen cannot be told here"
        elif need > n:
            text += f"; the {math.exp(seen) - 1:.0%} seen needs about {need} repeats"
    return text + " (to decide it: a quieter host or --wait-quiet, more --num-batches, repeats)"


def sequential_confidence(looks: int, confidence: float = 0.95) -> float:
    """The confidence each of ``looks`` intervals is drawn at, so that all of them hold at once
    with ``confidence`` (Bonferroni: alpha spent evenly over the looks). Adaptive repeats look
    after every round and stop when a verdict is clear or the interval is narrow enough; with
    intervals drawn this way, stopping early cannot inflate false verdicts beyond alpha."""
    if looks < 1:
        raise UsageError(f"looks must be at least 1, not {looks}")
    return 1 - (1 - confidence) / looks


def verdict_of(low: float, high: float, ratio: float) -> Verdict:
    if low > 1 or (low == high and ratio > 1):
        return Verdict.faster
    if high < 1 or (low == high and ratio < 1):
        return Verdict.slower
    return Verdict.same


def is_noisy(summary: Summary, threshold: float = NOISE_THRESHOLD) -> bool:
    if not threshold >= 0:
        raise UsageError(f"noise threshold must be zero or more, not {threshold}", "e.g. 0.05")
    return summary.cv > threshold


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
