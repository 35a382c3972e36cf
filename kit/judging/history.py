"""The regression gate against history (``--baseline-history N``): each cell against the last N
sessions of the same cell, machine, engine and workload since its series' last change point,
with a prediction interval: this session is judged as one more session of that history, its
session-to-session noise included, which a session's own repeats cannot show. The outcomes and
their rule are the session gate's (``kit.judging.gate``). Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kit.judging.cells import cells
from kit.judging.changes import changes
from kit.judging.gate import (
    MIN_HISTORY,
    RULED_OUT,
    Decision,
    Gate,
    GateResult,
    Outcome,
    judge_cells,
    outcome_of,
)
from kit.judging.series import Point, Series, SessionRuns, series_of
from kit.judging.stats import MIN_REPEATS, Speedup
from kit.judging.stats import Verdict as StatsVerdict
from kit.model.results import RunResult


@dataclass(frozen=True)
class History:
    """A history gate's baseline: the series of every cell in the results database."""

    series: tuple[Series, ...]
    exclude: str | None = None  # the session being gated, when it is already stored


def judge(
    current: Sequence[RunResult],
    baseline: Sequence[RunResult] | History,
    gate: Gate,
    confidence: float = 0.95,
) -> GateResult:
    """The gate over ``current``: against one session's runs, or against history."""
    if isinstance(baseline, History):
        return judge_history(current, baseline, gate, confidence)
    return judge_cells(current, baseline, gate, confidence=confidence)


def predict(new: Sequence[float], past: Sequence[float], confidence: float = 0.95) -> Speedup:
    """This session's repeats over the past sessions' figures (geometric means), with a
    prediction interval on log images/sec: the new session is one more draw from the sessions'
    spread (session-to-session noise, which a session's own repeats cannot show), plus the
    uncertainty of the past sessions' mean; df of the past sessions."""
    logs_new, logs_past = [math.log(v) for v in new], [math.log(v) for v in past]
    diff = statistics.fmean(logs_new) - statistics.fmean(logs_past)
    spread_past = statistics.variance(logs_past)
    own = statistics.variance(logs_new) / len(logs_new)
    half = math.sqrt(spread_past / len(past) + max(spread_past, own))
    from scipy.stats import t as student_t  # noqa: PLC0415 -- heavy: scipy takes ~1 s

    half *= float(student_t.ppf(0.5 + confidence / 2, len(past) - 1))
    ratio, low, high = math.exp(diff), math.exp(diff - half), math.exp(diff + half)
    verdict = StatsVerdict.slower if high < 1 else StatsVerdict.faster if low > 1 else None
    return Speedup(ratio, low, high, verdict or StatsVerdict.same)


def judge_history(
    current: Sequence[RunResult], history: History, gate: Gate, confidence: float = 0.95
) -> GateResult:
    """Every cell of ``current`` against the last ``gate.history`` sessions of its series (same
    machine, engine, cell and workload) that started before it, since the series' last change
    point: a level that moved is not averaged with the one before."""
    assert gate.history is not None  # a history gate
    started = min((r.started for r in current), default="")
    now = series_of([SessionRuns("this session", started, None, tuple(current))])
    by_key = {s.key: s for s in history.series}
    decisions = [
        _decide_history(s.key.cell, s.points[0], by_key.get(s.key), history.exclude, gate,
                        confidence)
        for s in now
    ]  # fmt: skip
    measured = {s.key.cell for s in now}
    decisions += [
        Decision(c.key, Outcome.undecided, "no successful repeat in this session")
        for c in cells(current)
        if c.key not in measured
    ]
    return GateResult(tuple(decisions), gate.percent, gate.undecided, gate.than)


def earlier_level(series: Series, before: str, exclude: str | None) -> list[Point]:
    """The points of ``series`` that started before ``before``, from its last change on."""
    points = [p for p in series.points if p.started < before and p.session_id != exclude]
    earlier = Series(series.key, tuple(points))
    found = changes(earlier)
    return points[found[-1].at :] if found else points


def _decide_history(
    key: str, point: Point, series: Series | None, exclude: str | None, gate: Gate,
    confidence: float,
) -> Decision:  # fmt: skip
    wanted = gate.history or 0
    past = earlier_level(series, point.started, exclude)[-wanted:] if series else []
    where = "this machine, engine and workload"
    if len(past) < MIN_HISTORY:
        return Decision(
            key, Outcome.undecided,
            f"{len(past)} earlier session(s) of this cell on {where} since its last change: a "
            f"history gate needs {MIN_HISTORY}; run more sessions, or gate on --baseline-session",
        )  # fmt: skip
    if len(point.samples) < MIN_REPEATS:
        return Decision(
            key, Outcome.undecided,
            "one repeat in this session has no spread of its own: run 2 or more, or "
            "--repeats auto", repeatable=True,
        )  # fmt: skip
    s = predict(point.samples, [p.value for p in past], confidence)
    outcome = outcome_of(s, gate.percent)
    said = f"{s.ratio:.2f}x of the last {len(past)} sessions [{s.low:.2f}, {s.high:.2f}]"
    if outcome is Outcome.failed:
        return Decision(key, outcome, f"{said}, more than {gate.percent:g}% slower")
    if outcome is Outcome.passed:
        return Decision(key, outcome, f"{said}, not more than {gate.percent:g}% slower")
    return Decision(
        key, outcome,
        f"{said}: too wide to rule out {RULED_OUT * gate.percent:g}% slower (the sessions "
        "differ that much among themselves); quieter sessions, or more of them, decide it",
    )  # fmt: skip
