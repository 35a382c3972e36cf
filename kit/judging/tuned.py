"""What a tune found: its best cell, the speedup over the baseline, what it cost, the cells it
could not be told apart from and those the race dropped. A record, for the report."""

from __future__ import annotations

from dataclasses import dataclass

from kit.judging.stats import Speedup


@dataclass(frozen=True)
class Dropped:
    key: str
    after: int  # repeats it had
    by: str  # the leader it lost to
    ratio: float


@dataclass(frozen=True)
class Tuned:
    best: str
    speedup: Speedup | None  # over the baseline
    runs: int
    minutes: float
    tied: tuple[str, ...]  # cells still racing that the best could not be told apart from
    dropped: tuple[Dropped, ...]
    # Confirmed by fresh runs: the search's own best and speedup, for comparison.
    searched_best: str | None = None
    searched_speedup: Speedup | None = None
    confirm_runs: int = 0
