"""How well kit finds change points in a cell's history: simulated series of sessions with
lognormal noise, a step of 5%, 10% or 20% at a random session (or none), and for each detector
the share of steps found within +-1 session, the mean location error of those found, and the
share of flat series with a false change.

Detectors: kit's (ruptures' PELT on log images/sec with a penalty scaled by the series' own
noise, then a Welch t on the two sides: kit.judging.changes), PELT alone (the same without the
significance test), and E-Divisive from signal-processing-algorithms (MongoDB's, the method
Apache Otava builds on) where that package imports. It pins numpy<2 and Python 3.11, so it
lives in an environment of its own: ``python -m venv /tmp/ed && /tmp/ed/bin/pip install -e .
signal-processing-algorithms``, then run this script with ``/tmp/ed/bin/python``.

    .venv/bin/python benchmarks/changepoints.py [--series 200] [--sessions 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import time
from collections.abc import Callable

from kit.judging.changes import PENALTY, changes, split_points
from kit.judging.series import Series
from tests.simulate import SERIES_REPEATS as REPEATS
from tests.simulate import simulated_series as simulate


def kit_detector(penalty: float) -> Callable[[Series], list[int]]:
    return lambda series: [c.at for c in changes(series, penalty)]


def pelt_alone(penalty: float) -> Callable[[Series], list[int]]:
    return lambda series: split_points([math.log(v) for v in series.values], penalty)


def edivisive() -> Callable[[Series], list[int]] | None:
    try:
        from signal_processing_algorithms.energy_statistics import energy_statistics
    except ImportError:
        return None

    def detect(series: Series) -> list[int]:
        logs = [math.log(v) for v in series.values]
        return sorted(energy_statistics.e_divisive(logs, pvalue=0.05, permutations=100))

    return detect


def score(detect, rng, sessions: int, cv: float, step: float, trials: int) -> tuple:
    """(found within +-1, mean location error of those, false-change share) for one setting."""
    hits, errors, false = 0, [], 0
    for _ in range(trials):
        at = rng.randint(3, sessions - 3) if step else sessions
        found = detect(simulate(rng, sessions, cv, step, at))
        if not step:
            false += bool(found)
            continue
        near = [f for f in found if abs(f - at) <= 1]
        hits += bool(near)
        if found:
            errors.append(min(abs(f - at) for f in found))
    located = statistics.fmean(errors) if errors else float("nan")
    return hits / trials, located, false / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200, help="simulated series a setting")
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--penalty", type=float, default=PENALTY, help="PELT's, times noise^2 log n"
    )
    args = parser.parse_args()
    detectors = {
        "kit (PELT + Welch)": kit_detector(args.penalty),
        "PELT alone": pelt_alone(args.penalty),
    }
    if (ed := edivisive()) is not None:
        detectors["E-Divisive"] = ed
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.series} series of {args.sessions} sessions a setting, {REPEATS} repeats a "
          f"session, penalty {args.penalty}")  # fmt: skip
    if ed is None:
        print("E-Divisive not measured: signal-processing-algorithms does not import here")
    print(f"{'detector':<20} {'noise':>5} {'step':>5} {'found +-1':>9} {'loc err':>7} "
          f"{'false':>6} {'ms/series':>9}")  # fmt: skip
    for name, detect in detectors.items():
        for cv in (0.03, 0.10):
            for step in (0.0, -0.05, -0.10, -0.20):
                rng = random.Random(args.seed)
                start = time.perf_counter()
                found, located, false = score(detect, rng, args.sessions, cv, step, args.series)
                ms = (time.perf_counter() - start) * 1000 / args.series
                shown = "-" if not step else f"{found:9.1%}"
                where = "-" if not step or math.isnan(located) else f"{located:7.2f}"
                flat = f"{false:6.1%}" if not step else "-"
                print(f"{name:<20} {cv:5.0%} {abs(step):5.0%} {shown:>9} {where:>7} {flat:>6} "
                      f"{ms:9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
