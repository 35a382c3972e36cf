"""How well kit tune does on a real grid: a recorded ResNet-50 sweep of this host (every cell, 3
repeats) replayed many times with its measured noise. Prints, per strategy and budget, the tuned
best's true speed as a fraction of the grid's best, and its runs as a fraction of the grid's;
then the bias of the speedup a tune reports for its best (mean reported minus the best's true
speedup) from the search's own runs and from the confirmation's fresh runs, and what those cost.

    .venv/bin/python benchmarks/tuner.py [--grid FILE] [--replays 200]
    .venv/bin/python benchmarks/tuner.py --record results/SESSION   # write a grid file from a sweep

Replays draw each run from lognormal noise around the cell's recorded median, with the cell's
own measured cv (the pooled cv when a cell's is below it), so the search meets the noise the host
really had; the "truth" is the recorded medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from kit.campaign.schedules.budget import MAX_ROUNDS, AllAtOnce, Budget, wall_s
from kit.campaign.schedules.confirm import CONFIRM_REPEATS, Confirmed, confirmed_outcome
from kit.campaign.schedules.model import ModelSearch
from kit.campaign.schedules.race import Race, outcome
from kit.store.folder import load_session
from tests.simulate import run_schedule, simulated_plan

GRID = Path(__file__).resolve().parent.parent / "tests" / "data" / "grids" / "resnet50-intel.json"


def record(folder: Path, out: Path) -> None:
    runs = load_session(folder)
    cells: dict[str, dict] = {}
    for r in runs:
        cell = cells.setdefault(r.key, {"key": r.key, "knobs": dict(r.knobs), "samples": []})
        if r.ok and r.images_per_sec:
            cell["samples"].append(r.images_per_sec)
    host = runs[0].host or {}
    data = {
        "host": {k: host.get(k) for k in ("hostname", "cpu_model", "logical_cpus", "numa_nodes")},
        "isa": " ".join(f for f in host.get("isa_flags") or [] if f.startswith(("avx", "amx"))),
        "workload": runs[0].workload,
        "session": folder.name,
        "mean_run_s": round(statistics.fmean(wall_s(r) for r in runs), 1),
        "cells": list(cells.values()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}: {len(cells)} cells, {len(runs)} runs")


class _Profile:
    def __init__(self, knobs: dict) -> None:
        self.knobs = tuple(knobs.items())


class _Spec:
    """A planned run as a schedule reads it (the model strategy reads the knobs too)."""

    def __init__(self, index, key, repeat, knobs) -> None:
        self.index, self.key, self.repeat, self.engine = index, key, repeat, "docker"
        self.profile = _Profile(knobs)


def plan_of(cells: list[dict], rounds: int) -> list[_Spec]:
    knobs = {c["key"]: c["knobs"] for c in cells}
    return [_Spec(s.index, s.key, s.repeat, knobs[s.key])
            for s in simulated_plan([c["key"] for c in cells], rounds)]  # fmt: skip


def _search(strategy: str, keys: list[str], budget: int):
    return {
        "grid": AllAtOnce(Budget(runs=budget)),
        "race": Race(tuple(keys), keys[0], Budget(runs=budget)),
        "model": ModelSearch(tuple(keys), keys[0], Budget(runs=budget)),
    }[strategy]


def replay(
    cells: list[dict], strategy: str, budget: int, seeds: int, cv: float | None = None
) -> tuple[list, list]:
    true = {c["key"]: statistics.median(c["samples"]) for c in cells}
    cvs = [statistics.stdev(c["samples"]) / statistics.fmean(c["samples"]) for c in cells]
    cv = cv if cv is not None else statistics.fmean(cvs)
    best = max(true.values())
    keys = [c["key"] for c in cells]
    fractions, spent = [], []
    for seed in range(seeds):
        rounds = 3 if strategy == "grid" else MAX_ROUNDS
        plan = plan_of(cells, rounds)
        schedule = _search(strategy, keys, budget)
        runs = run_schedule(schedule, plan, true, cv, seed)
        found = outcome(plan, keys[0], schedule, runs)
        fractions.append(true[found.best] / best)
        spent.append(len(runs))
    return fractions, spent


def bias(cells: list[dict], strategy: str, budget: int, seeds: int, cv: float):
    """(search's bias, confirmed bias, mean confirmation runs): reported minus true speedup of
    the reported best over the baseline, averaged over seeded replays."""
    true = {c["key"]: statistics.median(c["samples"]) for c in cells}
    keys = [c["key"] for c in cells]
    searched, confirmed, extra = [], [], []
    for seed in range(seeds):
        rounds = (3 if strategy == "grid" else MAX_ROUNDS) + CONFIRM_REPEATS
        plan = plan_of(cells, rounds)
        search = _search(strategy, keys, budget)
        schedule = Confirmed(search, keys[0])
        runs = run_schedule(schedule, plan, true, cv, seed)
        early, fresh = schedule.split(plan, runs)
        cut = schedule.cut(plan)
        found = outcome([s for s in plan if s.repeat < cut], keys[0], search, early)
        final = confirmed_outcome(found, schedule, plan, runs)
        for got, into in ((found, searched), (final, confirmed)):
            if got.speedup is not None:
                into.append(got.speedup.ratio - true[got.best] / true[keys[0]])
        extra.append(len(fresh))
    return statistics.fmean(searched), statistics.fmean(confirmed), statistics.fmean(extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--record", type=Path, help="a sweep's session folder to record")
    parser.add_argument("--cv", type=float, help="replay with this noise instead of the measured")
    args = parser.parse_args()
    if args.record:
        record(args.record, args.grid)
        return
    data = json.loads(args.grid.read_text())
    cells = data["cells"]
    grid_runs = 3 * len(cells)
    host = data["host"]
    print(f"grid {args.grid.name}: {len(cells)} cells x 3 repeats = {grid_runs} runs, "
          f"session {data['session']}, {host.get('cpu_model')}, "
          f"{host.get('logical_cpus')} CPUs, ISA {data.get('isa')}")  # fmt: skip
    cvs = [statistics.stdev(c["samples"]) / statistics.fmean(c["samples"]) for c in cells]
    print(f"measured cv per cell: mean {statistics.fmean(cvs):.1%}, max {max(cvs):.1%}; "
          f"{args.replays} seeded replays each"
          + (f", replayed at cv {args.cv:.1%}" if args.cv is not None else ""))  # fmt: skip
    print("strategy  budget  best/grid-best mean  p5      runs/grid-runs")
    for strategy, budget in (("grid", grid_runs), ("race", grid_runs), ("race", grid_runs // 2),
                             ("race", len(cells)), ("model", len(cells)),
                             ("model", grid_runs // 2)):  # fmt: skip
        fractions, spent = replay(cells, strategy, budget, args.replays, args.cv)
        p5 = float(np.percentile(fractions, 5))
        print(f"{strategy:<8}  {budget:>6}  {statistics.fmean(fractions):>19.1%}  {p5:>6.1%}  "
              f"{statistics.fmean(spent) / grid_runs:>14.2f}")  # fmt: skip
    noise = args.cv if args.cv is not None else 0.03
    print(f"\nbias of the reported speedup at cv {noise:.0%} (goal |bias| <= 1% after):")
    print("strategy  budget  search's own  confirmed  confirmation runs")
    for strategy, budget in (("race", grid_runs), ("race", len(cells)), ("grid", grid_runs),
                             ("model", len(cells))):  # fmt: skip
        before, after, extra = bias(cells, strategy, budget, args.replays, noise)
        print(f"{strategy:<8}  {budget:>6}  {before:>+12.1%}  {after:>+9.1%}  {extra:>17.1f}")


if __name__ == "__main__":
    main()
