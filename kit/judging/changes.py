"""Change points in a series: where a cell's speed moved between sessions, by how much (a ratio
with its interval), and what the provenance says moved with it. Pure.

How a change is found (``benchmarks/changepoints.py`` measures it on simulated series):
1. the series' points as log images/sec (noise in throughput is multiplicative);
2. their noise level from the spread of neighbouring differences (median absolute deviation,
   which a step in the series hardly moves), so the rule needs no setting per series;
3. ruptures' PELT splits the series into segments of constant mean at the least squared error
   plus ``PENALTY`` x noise^2 x log(points) for each split (a BIC-like price on a split);
4. a split is kept only where the segments on either side differ significantly: a Welch t
   interval on the ratio of their geometric means, over the sessions' points, clear of 1.
Segments are at least ``MIN_SEGMENT`` sessions long: a change is said only once sessions after
it confirm it, not on one slow session.

Where exactly a step is, noise leaves uncertain: every split between the neighbouring segments
that fits almost as well (within ``LOCATION_SLACK`` noise^2 of the best) is a possible place.
A change is explained by what the provenance recorded changing anywhere in that span, and put
where it did when that is one place (a rebuild two sessions before a noisy step is its cause,
not "nothing changed"); the span is said with it.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kit.judging.series import Point, Series, explain, provenance_diff
from kit.judging.stats import Speedup, Verdict, compare

MIN_SEGMENT = 3
MIN_SESSIONS = 2 * MIN_SEGMENT  # the shortest series a change can be found in
PENALTY = 4.0  # chosen with benchmarks/changepoints.py: false changes on flat series <= 5%
MAD_TO_SD = 1.4826  # the median absolute deviation of a normal sample, scaled to its sd
FLOOR = 1e-4  # the least noise assumed (log scale): identical points are not infinitely sure
LOCATION_SLACK = 3.84  # chi-square(1) at 95%: splits whose error is within this x noise^2


@dataclass(frozen=True)
class Change:
    """A step in a series between ``before`` (the last session of the old level) and ``after``
    (the first of the new), with the ratio new/old over the two segments."""

    at: int  # index of ``after`` in the series' points
    before: Point
    after: Point
    speedup: Speedup  # the new segment over the old one
    sessions: tuple[int, int]  # sessions in the old segment, in the new one
    diff: tuple[tuple[str, str, str], ...]  # provenance: (field, before, after)
    span: tuple[Point, Point] | None = None  # first and last session the step may follow

    @property
    def percent(self) -> float:
        return (self.speedup.ratio - 1) * 100

    @property
    def magnitude(self) -> str:
        """ "-12% [-15, -9]": the change in percent with its 95% interval."""
        s = self.speedup
        return f"{self.percent:+.0f}% [{(s.low - 1) * 100:+.0f}, {(s.high - 1) * 100:+.0f}]"

    def line(self, image: str) -> str:
        """ "-12% [-15, -9] at SESSION: image stock rebuilt (…), TF 2.14.1 -> 2.21.0"."""
        where = f"{self.magnitude} at {self.after.session_id} (after {self.before.session_id}"
        if self.span is not None:
            first, last = self.span
            where += f"; the step falls between {first.session_id} and {last.session_id}"
        return f"{where}): {explain(self.diff, image)}"


def noise(logs: Sequence[float]) -> float:
    """The noise of single points (log scale), from neighbouring differences: robust to steps."""
    if len(logs) < 3:
        return FLOOR
    diffs = [b - a for a, b in itertools.pairwise(logs)]
    centre = statistics.median(diffs)
    mad = statistics.median(abs(d - centre) for d in diffs)
    return max(MAD_TO_SD * mad / math.sqrt(2), FLOOR)


def split_points(logs: Sequence[float], penalty: float = PENALTY) -> list[int]:
    """Where PELT splits the series (indices of each new segment's first point)."""
    if len(logs) < MIN_SESSIONS:
        return []
    import numpy as np  # noqa: PLC0415 -- heavy: numpy and ruptures load in ~0.5 s
    import ruptures  # noqa: PLC0415

    sigma = noise(logs)
    signal = np.asarray(logs, dtype=float).reshape(-1, 1)
    algo = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(signal)
    ends = algo.predict(pen=penalty * sigma**2 * math.log(len(logs)))
    return [int(end) for end in ends[:-1]]  # the last "end" is the series' own end


def changes(series: Series, penalty: float = PENALTY) -> list[Change]:
    """The series' significant changes, oldest first."""
    points = series.points
    logs = [math.log(p.value) for p in points]
    splits = split_points(logs, penalty)
    bounds = [0, *splits, len(points)]
    found = []
    for i, at in enumerate(splits, 1):
        change = _change(points, logs, (bounds[i - 1], at, bounds[i + 1]))
        if change is not None:
            found.append(change)
    return found


def _change(points: Sequence[Point], logs: Sequence[float], split: tuple[int, int, int]):
    """The change PELT put at ``at`` between segments [start, at) and [at, end), placed at the
    one provenance change within its location's span if there is one; None when the sides do
    not differ beyond their noise."""
    start, at, end = split
    lo, hi = (start + j for j in location(logs[start:end], at - start))
    moved = [j for j in range(lo, hi + 1) if provenance_diff(points[j - 1], points[j])]
    place = moved[0] if len(moved) == 1 else at  # the one recorded change: the step's cause
    old = [p.value for p in points[start:place]]
    new = [p.value for p in points[place:end]]
    speedup = compare(new, old)
    if speedup.verdict in (Verdict.same, Verdict.unknown):
        return None  # PELT's split, but the two sides do not differ beyond their noise
    span = (points[lo - 1], points[hi]) if hi > lo else None
    diff = provenance_diff(points[lo - 1], points[hi]) if len(moved) > 1 else (
        provenance_diff(points[place - 1], points[place]))  # fmt: skip
    return Change(place, points[place - 1], points[place], speedup, (len(old), len(new)),
                  tuple(diff), span)  # fmt: skip


def location(logs: Sequence[float], at: int) -> tuple[int, int]:
    """The splits of two segments (at least one point a side) that fit within
    ``LOCATION_SLACK`` noise^2 of the best one's squared error: the step's possible places."""
    sigma = noise(logs)

    def error(j: int) -> float:
        sides = (logs[:j], logs[j:])
        return sum((x - statistics.fmean(side)) ** 2 for side in sides for x in side)

    errors = {j: error(j) for j in range(1, len(logs))}
    best = min(errors.values())
    near = [j for j, e in errors.items() if e - best <= LOCATION_SLACK * sigma**2]
    return min(*near, at), max(*near, at)
