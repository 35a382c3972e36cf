"""Statistics of a campaign spread over identical machines (``--spread``): each machine is a block.
A cell is compared with its baseline within each machine, and the machines' differences are
pooled, so a machine that runs everything a little slower widens nothing and biases nothing; and
a machine that is consistently slower than its peers is found and said. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kit.judging.stats import MIN_REPEATS, Speedup, Verdict, t_interval

Blocks = Mapping[str, Sequence[float]]  # machine -> a cell's images/sec there


def compare_blocked(candidate: Blocks, baseline: Blocks, *, confidence: float = 0.95) -> Speedup:
    """Candidate over baseline, blocked by machine: within each machine that ran both, the
    difference of their mean log images/sec; pooled with weights n_c n_b / (n_c + n_b) (each
    machine's share of the information). The interval's spread is the within-machine variance,
    pooled over both cells and every machine (t with its degrees of freedom); when each machine
    ran each cell once there is none, and the machines' differences vary among themselves
    instead (t with machines - 1 degrees of freedom)."""
    both = [m for m in candidate if candidate[m] and baseline.get(m)]
    logs = {m: ([math.log(v) for v in candidate[m]], [math.log(v) for v in baseline[m]])
            for m in both}  # fmt: skip
    if not both:
        raise ValueError("no machine ran both cells")
    diffs = {m: statistics.fmean(c) - statistics.fmean(b) for m, (c, b) in logs.items()}
    weights = {m: len(c) * len(b) / (len(c) + len(b)) for m, (c, b) in logs.items()}
    total = sum(weights.values())
    diff = sum(weights[m] * diffs[m] for m in both) / total
    ratio = math.exp(diff)
    runs_c = sum(len(c) for c, _ in logs.values())
    runs_b = sum(len(b) for _, b in logs.values())
    if runs_c < MIN_REPEATS or runs_b < MIN_REPEATS:
        return Speedup(ratio, ratio, ratio, Verdict.unknown, confidence=confidence)
    within = [x - statistics.fmean(side) for c, b in logs.values() for side in (c, b) for x in side]
    df = sum(len(side) - 1 for c, b in logs.values() for side in (c, b))
    if df > 0:
        spread = math.sqrt(sum(x * x for x in within) / df / total)
    elif len(both) > 1:
        df = len(both) - 1
        spread = statistics.stdev(diffs.values()) / math.sqrt(len(both))
    else:
        return Speedup(ratio, ratio, ratio, Verdict.unknown, confidence=confidence)
    return t_interval(diff, spread, df, confidence)


def balanced_rate(blocks: Blocks) -> float:
    """A cell's images/sec with every machine weighed alike: the geometric mean over machines
    of each one's geometric mean."""
    means = [statistics.fmean(math.log(v) for v in values) for values in blocks.values() if values]
    return math.exp(statistics.fmean(means))


def within_cv(blocks: Blocks) -> float | None:
    """How much a cell's repeats vary on one machine (the sd of log images/sec about each
    machine's mean, pooled; ~ the cv): None when no machine ran it twice."""
    logs = [[math.log(v) for v in values] for values in blocks.values() if values]
    df = sum(len(values) - 1 for values in logs)
    if df < 1:
        return None
    squares = sum((x - statistics.fmean(values)) ** 2 for values in logs for x in values)
    return math.sqrt(squares / df)


@dataclass(frozen=True)
class SlowMachine:
    """A machine slower than its peers in every cell: by ``ratio`` (its runs over theirs, the
    geometric mean over cells), with an interval."""

    machine: str
    ratio: float
    low: float
    high: float

    @property
    def line(self) -> str:
        return (
            f"{self.machine} ran {1 - self.ratio:.1%} slower than its peers in every cell "
            f"(x{self.ratio:.3f} [{self.low:.3f}, {self.high:.3f}]): the machines are not alike"
        )


def slow_machines(cells: Sequence[Blocks], confidence: float = 0.95,
                  least: float = 0.01) -> list[SlowMachine]:  # fmt: skip
    """The machines slower than the others in every cell that more than one machine ran, by
    more than ``least`` and beyond the interval: each run's log images/sec less its cell's mean
    on the other machines, tested against none (t)."""
    found = []
    machines = sorted({m for cell in cells for m, v in cell.items() if v})
    for machine in machines:
        gaps, every = [], True
        for cell in cells:
            mine = [math.log(v) for v in cell.get(machine, ())]
            peers = [math.log(v) for m, vs in cell.items() if m != machine for v in vs]
            if not mine or not peers:
                continue
            gaps += [x - statistics.fmean(peers) for x in mine]
            every = every and statistics.fmean(mine) < statistics.fmean(peers)
        if len(gaps) < MIN_REPEATS or not every:
            continue
        mean, spread = statistics.fmean(gaps), statistics.stdev(gaps) / math.sqrt(len(gaps))
        from scipy.stats import t as student_t  # noqa: PLC0415 -- heavy: scipy takes ~1 s

        half = float(student_t.ppf(0.5 + confidence / 2, len(gaps) - 1)) * spread
        if mean + half < 0 and math.exp(mean) < 1 - least:
            found.append(SlowMachine(machine, math.exp(mean), math.exp(mean - half),
                                     math.exp(mean + half)))  # fmt: skip
    return found
