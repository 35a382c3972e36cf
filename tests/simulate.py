"""Simulated cells for judging kit's statistics and search: repeats drawn with lognormal noise
around a known true speed, so an error rate can be counted. Pure: seeded numpy generators."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from kit.campaign.schedules.adaptive import AdaptiveSchedule
from kit.campaign.schedules.budget import AllAtOnce
from kit.judging.series import Point, Series, SeriesKey
from kit.judging.stats import Verdict, compare
from kit.model.results import RunResult, Status
from kit.reporting.rows import rows

RESNET50_CV = 0.03  # kit's coefficient of variation on ResNet-50 repeats on these hosts


def draw(rng: np.random.Generator, true: float, cv: float, n: int) -> list[float]:
    """``n`` repeats of a cell whose true (median) speed is ``true``, noise of ``cv``."""
    sigma = math.sqrt(math.log1p(cv**2))
    return [float(v) for v in true * rng.lognormal(0.0, sigma, n)]


@dataclass(frozen=True)
class ErrorRates:
    """Over ``trials`` comparisons of cells ``true_ratio`` apart: how often each verdict came,
    and how often the interval held the true ratio."""

    repeats: int
    trials: int
    faster: float
    slower: float
    coverage: float

    @property
    def false_verdicts(self) -> float:
        """For equal cells: the share of comparisons that called a difference."""
        return self.faster + self.slower


def error_rates(
    repeats: int, *, cv: float = RESNET50_CV, true_ratio: float = 1.0, trials: int = 2000,
    seed: int = 0,
) -> ErrorRates:  # fmt: skip
    rng = np.random.default_rng(seed)
    counts = {Verdict.faster: 0, Verdict.slower: 0}
    covered = 0
    for _ in range(trials):
        s = compare(draw(rng, 10.0 * true_ratio, cv, repeats), draw(rng, 10.0, cv, repeats))
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
        covered += s.low <= true_ratio <= s.high
    return ErrorRates(
        repeats, trials, counts[Verdict.faster] / trials, counts[Verdict.slower] / trials,
        covered / trials,
    )  # fmt: skip


def host_speed(kind: str, runs: int, rng: np.random.Generator) -> np.ndarray:
    """The host's log speed at each of a session's runs, by the shapes recorded on real hosts:
    stationary, drift, phases (slow for minutes) or bursts."""
    time = np.arange(runs) / (runs - 1)
    if kind == "stationary":
        return np.zeros(runs)
    if kind == "drift":  # the cloud VM: +-50% over a session, not always steady
        wave = rng.uniform(-0.3, 0.3) * np.sin(2 * np.pi * time * rng.uniform(0.5, 2))
        return rng.uniform(-0.5, 0.5) * time + wave
    if kind == "phases":  # the AVX2 EPYC: phases 30-45% slower lasting minutes (2-6 runs)
        speed = np.zeros(runs)
        for _ in range(2):
            start, length = rng.integers(0, runs), rng.integers(2, 7)
            speed[start : start + length] -= rng.uniform(0.3, 0.45)
        return speed
    slow = rng.random(runs) < 0.1  # bursts: one run in ten 20-50% slower
    return np.where(slow, -rng.uniform(0.2, 0.5, runs), 0.0)


# --- simulated tunes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedSpec:
    """What a schedule reads of a planned run."""

    index: int
    key: str
    repeat: int
    engine: str = "docker"


def simulated_plan(keys: list[str], rounds: int) -> list[SimulatedSpec]:
    """Every cell once per round, alternating direction as kit's plans do."""
    plan = []
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            plan.append(SimulatedSpec(len(plan) + 1, key, r))
    return plan


def simulated_run(
    spec: SimulatedSpec, rate: float, seconds: float = 60.0, looks: int = 1
) -> RunResult:
    image, _, profile = spec.key.partition(":")
    return RunResult(
        index=spec.index, image=image, image_ref=image, profile=profile, cpus="0", numactl="-",
        command=(), env={}, status=Status.ok, images_per_sec=rate,
        started="2026-01-01T00:00:00+00:00", ended=f"2026-01-01T00:{seconds / 60:02.0f}:00+00:00",
        exit_code=0, log_path="", repeat=spec.repeat, looks=looks,
    )  # fmt: skip


def run_schedule(
    schedule, plan, true: dict[str, float], cv: float, seed: int, looks: int = 1,
    host: str = "stationary",
) -> list[RunResult]:  # fmt: skip
    """A schedule driven to its end over cells of known true speed, with lognormal noise, on
    a host whose speed moves by ``host``'s shape (``host_speed``) over the plan's runs."""
    rng = np.random.default_rng(seed)
    speed = np.exp(host_speed(host, len(plan), rng))
    runs: list[RunResult] = []
    while batch := schedule.next(plan, runs):
        runs += [simulated_run(s, draw(rng, true[s.key], cv, 1)[0] * speed[len(runs) + i],
                               looks=looks) for i, s in enumerate(batch)]  # fmt: skip
    return runs


def adaptive_error_rates(
    rule, *, cv: float = RESNET50_CV, true_ratio: float = 1.0, trials: int = 1000, seed: int = 0,
    host: str = "stationary",
) -> tuple[ErrorRates, float]:  # fmt: skip
    """Adaptive repeats on two cells ``true_ratio`` apart: verdict and coverage rates as the
    table would show them, and the mean repeats the candidate took."""

    keys = ["x:base", "x:cand"]
    true = {"x:base": 10.0, "x:cand": 10.0 * true_ratio}
    plan = simulated_plan(keys, rule.max_repeats)
    counts = {Verdict.faster: 0, Verdict.slower: 0}
    covered, repeats = 0, 0
    for trial in range(trials):
        runs = run_schedule(
            AdaptiveSchedule(rule, "x:base"),
            plan,
            true,
            cv,
            seed * 100_000 + trial,
            rule.looks,
            host,
        )
        row = next(r for r in rows(runs) if r.profile == "cand")
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
        covered += row.ci_low <= true_ratio <= row.ci_high
        repeats += row.repeats
    rates = ErrorRates(
        rule.max_repeats, trials, counts[Verdict.faster] / trials,
        counts[Verdict.slower] / trials, covered / trials,
    )  # fmt: skip
    return rates, repeats / trials


# --- the regression gate ------------------------------------------------------------------------

GATE_BASE, GATE_CANDIDATE = "stock:default", "stock:tuned"
BURST_EVERY, BURST = 8, 0.85  # one run in eight slowed by a further 15%: other work landing


def _gate_rate(rng, true: float, cv: float, bursty: bool) -> float:
    value = draw(rng, true, cv, 1)[0]
    return value * BURST if bursty and rng.integers(BURST_EVERY) == 0 else value


def _gate_session(schedule, plan, true, cv: float, bursty: bool, rng, looks: int = 1):
    runs: list[RunResult] = []
    while batch := schedule.next(plan, runs):
        runs += [simulated_run(s, _gate_rate(rng, true[s.key], cv, bursty), looks=looks)
                 for s in batch]  # fmt: skip
    return runs


def gate_trial(
    seed: int, ratio: float, cv: float, gate, rule=None, *, bursty: bool = False,
    base_repeats: int = 3,
):  # fmt: skip
    """One gated session against a baseline session of the same two cells: the candidate's
    gate outcome and its repeats. ``rule``: adaptive repeats (None: 3 fixed); ``ratio``: the
    candidate's true speed over the baseline's."""
    from kit.judging.gate import judge_cells
    from kit.judging.stats import sequential_confidence

    rng = np.random.default_rng(seed)
    keys = [GATE_BASE, GATE_CANDIDATE]
    baseline = _gate_session(AllAtOnce(), simulated_plan(keys, base_repeats),
                             dict.fromkeys(keys, 10.0), cv, bursty, rng)  # fmt: skip
    true = {GATE_BASE: 10.0, GATE_CANDIDATE: 10.0 * ratio}
    if rule is None:
        runs = _gate_session(AllAtOnce(), simulated_plan(keys, 3), true, cv, bursty, rng)
        confidence = 0.95
    else:
        schedule = AdaptiveSchedule(rule, GATE_BASE, gate, tuple(baseline))
        runs = _gate_session(schedule, simulated_plan(keys, rule.max_repeats), true, cv, bursty,
                             rng, looks=rule.looks)  # fmt: skip
        confidence = sequential_confidence(rule.looks)
    result = judge_cells(runs, baseline, gate, confidence=confidence)
    (decision,) = [d for d in result.decisions if d.key == GATE_CANDIDATE]
    return decision.outcome, sum(1 for r in runs if r.key == GATE_CANDIDATE)


# --- a cell's history -----------------------------------------------------------------------------

SERIES_REPEATS = 3  # samples a session: kit's usual --repeats
SERIES_KEY = SeriesKey("sim", "docker", "stock:default", "simulated")


def simulated_series(rng: random.Random, sessions: int, cv: float, step: float, at: int) -> Series:
    """A series whose points (geometric means of SERIES_REPEATS samples) have noise ``cv``, the
    level ``1 + step`` from session ``at`` on."""
    points = []
    spread = cv * math.sqrt(SERIES_REPEATS)  # so that each point's log sd is cv
    for i in range(sessions):
        level = 100.0 * (1 + step if i >= at else 1.0)
        samples = tuple(level * math.exp(rng.gauss(0, spread)) for _ in range(SERIES_REPEATS))
        points.append(Point(f"s{i:03d}", f"2026-01-01T00:{i:02d}", samples, ()))
    return Series(SERIES_KEY, tuple(points))
