"""The regression gate: a session's cells against the same cells of a baseline session, failing
those significantly slower by more than a percentage: fewer images/sec, or (``--gate-on p50``,
``p90``, ``p99``) a longer per-batch latency, where lower is better."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kit.errors import UsageError
from kit.judging.cells import cells
from kit.judging.stats import Verdict, compare
from kit.model.results import RunResult


class GateOn(StrEnum):
    """What the gate compares: throughput (higher is better) or a latency percentile."""

    throughput = "throughput"
    p50 = "p50"
    p90 = "p90"
    p99 = "p99"


@dataclass(frozen=True)
class Gate:
    """``--baseline-session SESSION --fail-if-slower PERCENT [--gate-on METRIC]``."""

    session: str
    percent: float
    on: GateOn = GateOn.throughput

    def __post_init__(self) -> None:
        if not math.isfinite(self.percent) or not 0 <= self.percent < 100:
            raise UsageError(f"--fail-if-slower takes a percentage in [0, 100), got {self.percent}")

    @classmethod
    def from_options(
        cls, session: str | None, percent: float | None, on: GateOn = GateOn.throughput
    ) -> Gate | None:
        if session is None and percent is None:
            if on is not GateOn.throughput:
                raise UsageError(
                    "--gate-on goes with --baseline-session and --fail-if-slower", "pass them too"
                )
            return None
        if session is None or percent is None:
            raise UsageError(
                "--baseline-session and --fail-if-slower go together", "pass both, or neither"
            )
        return cls(session, percent, on)

    def check_baseline(self, runs: Sequence[RunResult]) -> None:
        """The baseline session must have runs to gate against."""
        if not runs:
            raise UsageError(
                f"baseline session {self.session} has no runs", "pick one with results"
            )


def _samples(cell, on: GateOn) -> list[float]:
    return cell.samples() if on is GateOn.throughput else cell.latencies(on.value)


def slower_than(
    current: Sequence[RunResult],
    baseline: Sequence[RunResult],
    percent: float,
    on: GateOn = GateOn.throughput,
) -> list[str]:
    """Cells significantly slower than the same cell of the baseline session by more than
    ``percent``, each as a line saying by how much. A latency is compared as its inverse, a
    speed: baseline latency / this latency, so 0.80x is 25% longer."""
    before = {(c.first.engine, c.key): _samples(c, on) for c in cells(baseline)}
    failures = []
    for cell in cells(current):
        old, new = before.get((cell.first.engine, cell.key)), _samples(cell, on)
        if not old or not new:
            continue
        speedup = compare(new, old) if on is GateOn.throughput else compare(old, new)
        if speedup.verdict is Verdict.slower and speedup.ratio < 1 - percent / 100:
            what = "" if on is GateOn.throughput else f" in {on.value} latency"
            failures.append(
                f"{cell.key}: {speedup.ratio:.2f}x of the baseline session{what} "
                f"[{speedup.low:.2f}, {speedup.high:.2f}], more than {percent:g}% slower"
            )
    return failures
