"""The regression gate: a session's cells against the same cells of a baseline session, each
with one of three outcomes. **fail**: significantly slower by more than the percentage (fewer
images/sec, or with ``--gate-on p50|p90|p99`` a longer per-batch latency); **pass**: not that,
and the interval rules out a slowdown of twice the percentage; **undecided**: the data cannot
tell (too few repeats, an interval too wide, a cell the baseline lacks, another machine or
placement).
Against history (``--baseline-history N``) see ``kit.judging.history``.
Undecided fails the gate unless ``--gate-undecided pass`` says otherwise: a gate that cannot
measure a regression must not pass it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kit.errors import UsageError
from kit.judging.cells import Cell, cells
from kit.judging.choices import GateOn, Undecided
from kit.judging.stats import MIN_REPEATS, Speedup, compare
from kit.judging.stats import Verdict as StatsVerdict
from kit.model.results import RunResult

MIN_HISTORY = 3  # earlier sessions a history gate needs: fewer give no spread worth the name


# A pass must rule out a slowdown of twice the gate's percentage: the interval is then narrow
# enough that such a regression would have failed (detection >= 90% at 3% noise with --repeats
# auto, benchmarks/gate.py), while equal sessions are not failed for noise they cannot shed.
RULED_OUT = 2


class Outcome(StrEnum):
    passed = "pass"
    failed = "fail"
    undecided = "undecided"


@dataclass(frozen=True)
class Gate:
    """``--fail-if-slower PERCENT`` with ``--baseline-session SESSION [--gate-on METRIC]`` or
    ``--baseline-history N``."""

    session: str | None
    percent: float
    on: GateOn = GateOn.throughput
    undecided: Undecided = Undecided.fail
    history: int | None = None  # the last N sessions of each cell, instead of one session

    def __post_init__(self) -> None:
        if not math.isfinite(self.percent) or not 0 <= self.percent < 100:
            raise UsageError(f"--fail-if-slower takes a percentage in [0, 100), got {self.percent}")
        if (self.session is None) == (self.history is None):
            raise UsageError(
                "--fail-if-slower gates against --baseline-session or --baseline-history",
                "pass one of them",
            )
        if self.history is not None and not MIN_HISTORY <= self.history <= 1000:
            raise UsageError(
                f"--baseline-history takes {MIN_HISTORY} to 1000 sessions, got {self.history}",
                f"e.g. --baseline-history 10 ({MIN_HISTORY} or more give a spread to judge by)",
            )
        if self.history is not None and self.on is not GateOn.throughput:
            raise UsageError(
                f"--gate-on {self.on.value} goes with --baseline-session: a history is kept of "
                "throughput", "gate latency against one session, or drop --gate-on"
            )  # fmt: skip

    @classmethod
    def from_options(
        cls,
        session: str | None,
        percent: float | None,
        on: GateOn = GateOn.throughput,
        undecided: Undecided = Undecided.fail,
        history: int | None = None,
    ) -> Gate | None:
        if session is None and percent is None and history is None:
            alone = [name for name, given in (("--gate-on", on is not GateOn.throughput),
                     ("--gate-undecided", undecided is not Undecided.fail)) if given]  # fmt: skip
            if alone:
                raise UsageError(
                    f"{alone[0]} goes with --fail-if-slower and --baseline-session (or "
                    "--baseline-history): without them there is no gate",
                    "pass them too, or leave it out",
                )
            return None
        if session is not None and history is not None:
            raise UsageError(
                "--baseline-session and --baseline-history are two baselines",
                "gate against one session or against the last N, not both",
            )
        if percent is None or (session is None and history is None):
            raise UsageError(
                "--fail-if-slower goes with --baseline-session or --baseline-history",
                "pass the percentage and one baseline, or neither",
            )
        return cls(session, percent, on, undecided, history)

    @property
    def than(self) -> str:
        """What the gate's lines compare with."""
        if self.history is not None:  # each cell's line says how many it had
            return f"its earlier sessions (the last {self.history} at most)"
        return "the baseline session"

    def check_baseline(self, runs: Sequence[RunResult]) -> None:
        """The baseline session must have runs to gate against."""
        if not runs:
            raise UsageError(
                f"baseline session {self.session} has no runs", "pick one with results"
            )


@dataclass(frozen=True)
class Decision:
    """One cell's gate outcome, and why, in words a CI log can show."""

    key: str
    outcome: Outcome
    why: str
    repeatable: bool = False  # undecided, and more repeats may decide it

    @property
    def line(self) -> str:
        return f"{self.key}: {self.why}"


@dataclass(frozen=True)
class GateResult:
    """The gate over every cell: what fails it, given what undecided does."""

    decisions: tuple[Decision, ...]
    percent: float
    undecided: Undecided = Undecided.fail
    than: str = "the baseline session"  # what the cells were compared with, in words

    def of(self, outcome: Outcome) -> list[Decision]:
        return [d for d in self.decisions if d.outcome is outcome]

    @property
    def held(self) -> bool:
        failing = self.of(Outcome.failed)
        if self.undecided is Undecided.fail:
            failing += self.of(Outcome.undecided)
        return not failing


def _samples(cell: Cell, on: GateOn) -> list[float]:
    return cell.samples() if on is GateOn.throughput else cell.latencies(on.value)


def decide(
    new: Sequence[float], old: Sequence[float], percent: float, confidence: float = 0.95
) -> tuple[Outcome, Speedup | None]:
    """Fail: significantly slower, and more than ``percent`` slower; pass: not that, and the
    interval rules out a slowdown of ``RULED_OUT`` times the percentage; otherwise undecided (an
    interval too wide to tell; one repeat a side has none at all)."""
    if len(new) < MIN_REPEATS or len(old) < MIN_REPEATS:
        return Outcome.undecided, None
    s = compare(new, old, confidence=confidence)
    return outcome_of(s, percent), s


def outcome_of(s: Speedup, percent: float) -> Outcome:
    if s.verdict is StatsVerdict.slower and s.ratio < 1 - percent / 100:
        return Outcome.failed
    if s.low >= 1 - RULED_OUT * percent / 100:
        return Outcome.passed
    return Outcome.undecided


def _apart(cell: Cell, base: Cell) -> str | None:
    """Why two cells of one name cannot be compared: another machine (CPU) or placement."""
    here, there = cell.first, base.first
    model = (here.host or {}).get("cpu_model"), (there.host or {}).get("cpu_model")
    if model[0] and model[1] and model[0] != model[1]:
        return f"the baseline ran on another CPU ({model[1]}; here {model[0]})"
    if (here.cpus, here.numactl) != (there.cpus, there.numactl):
        return (
            f"the baseline ran on other CPUs or numactl ({there.cpus} {there.numactl}; "
            f"here {here.cpus} {here.numactl})"
        )
    return None


def _uncounted(cell: Cell, where: str) -> str:
    """Why a side has nothing to judge: none of its runs counted, and what they were."""
    found = Counter(r.status.value for r in cell.runs)
    said = ", ".join(f"{n} {status}" for status, n in found.most_common())
    return (f"no run of it counted {where} ({said}): nothing to judge; see why in the status "
            "column")  # fmt: skip


def judge_cells(
    current: Sequence[RunResult],
    baseline: Sequence[RunResult],
    gate: Gate,
    than: str = "the baseline session",
    confidence: float = 0.95,
) -> GateResult:
    """Every cell of ``current`` against the same cell of ``baseline``. A latency is compared
    as its inverse, a speed: baseline latency / this latency, so 0.80x is 25% longer."""
    earlier = cells(baseline)
    before = {(c.engine, c.key): c for c in earlier}
    by_key = {c.key: c for c in earlier}  # another engine's name (a session of another host)
    decisions = []
    for cell in cells(current):
        base = before.get((cell.engine, cell.key)) or by_key.get(cell.key)
        decisions.append(_decide_cell(cell, base, gate, than, confidence))
    return GateResult(tuple(decisions), gate.percent, gate.undecided, than)


def _decide_cell(cell: Cell, base: Cell | None, gate: Gate, than: str, confidence: float):
    if base is None:
        return Decision(cell.key, Outcome.undecided, f"not in {than}: nothing to compare with")
    if (apart := _apart(cell, base)) is not None:
        return Decision(cell.key, Outcome.undecided, apart)
    new, old = _samples(cell, gate.on), _samples(base, gate.on)
    if gate.on is not GateOn.throughput:  # a latency as a speed: longer is slower
        new, old = [1 / v for v in new if v], [1 / v for v in old if v]
    outcome, s = decide(new, old, gate.percent, confidence)
    for side, where in ((cell, "here"), (base, f"in {than}")):
        if not side.samples():  # every run of it disturbed, failed or INVALID
            return Decision(cell.key, Outcome.undecided, _uncounted(side, where))
    if s is None:
        return Decision(
            cell.key, Outcome.undecided,
            f"too few repeats ({len(new)} here, {len(old)} in {than}): one repeat has no "
            "interval; run 2 or more a side, or --repeats auto", repeatable=len(old) > 1,
        )  # fmt: skip
    what = "" if gate.on is GateOn.throughput else f" in {gate.on.value} latency"
    said = f"{s.ratio:.2f}x of {than}{what} [{s.low:.2f}, {s.high:.2f}]"
    if outcome is Outcome.failed:
        return Decision(cell.key, outcome, f"{said}, more than {gate.percent:g}% slower")
    if outcome is Outcome.passed:
        return Decision(cell.key, outcome, f"{said}, not more than {gate.percent:g}% slower")
    return Decision(
        cell.key, outcome,
        f"{said}: too wide to rule out {RULED_OUT * gate.percent:g}% slower; repeat more "
        "(--repeats auto) to decide",
        repeatable=True,
    )  # fmt: skip
