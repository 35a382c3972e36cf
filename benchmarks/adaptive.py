"""Adaptive repeats against fixed 3 repeats on recorded cells: the runs and minutes each takes, and
the verdicts each reaches, over many seeded replays with the cells' measured noise.

    .venv/bin/python benchmarks/adaptive.py [--grid tests/data/grids/resnet50-intel.json]
        [--cells N] [--replays 200] [--ci-width 3]

Each replay draws every run from lognormal noise around its cell's recorded median with the mean
measured cv; the baseline is the first cell. A verdict is "right" when it names the side the
recorded medians are on, "wrong" when the other; "same" is neither.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
from kit.campaign.schedules.budget import AllAtOnce
from kit.reporting.rows import rows
from tests.simulate import run_schedule, simulated_plan

GRID = Path(__file__).resolve().parent.parent / "tests" / "data" / "grids" / "resnet50-intel.json"


def verdicts(runs, true: dict[str, float], base: str) -> tuple[int, int, int]:
    right = wrong = same = 0
    for row in rows(runs):
        key = f"{row.image}:{row.profile}"
        if key == base or row.verdict is None:
            continue
        faster = true[key] > true[base]
        if row.verdict.value == "same":
            same += 1
        elif (row.verdict.value == "faster") == faster:
            right += 1
        else:
            wrong += 1
    return right, wrong, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--cells", type=int, default=6, help="the first N cells (make bench: 6)")
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--ci-width", type=float, default=3.0)
    parser.add_argument("--cv", type=float, help="replay with this noise instead of the measured")
    args = parser.parse_args()
    data = json.loads(args.grid.read_text())
    cells = data["cells"][: args.cells]
    true = {c["key"]: statistics.median(c["samples"]) for c in cells}
    cv = statistics.fmean(statistics.stdev(c["samples"]) / statistics.fmean(c["samples"])
                          for c in cells) if args.cv is None else args.cv  # fmt: skip
    keys, base = list(true), next(iter(true))
    wall = data.get("mean_run_s") or 60.0
    rule = Adaptive(args.ci_width / 100)
    print(f"{len(cells)} cells of {args.grid.name} ({data['host'].get('cpu_model')}), cv "
          f"{cv:.1%}, {args.replays} replays; {wall:.0f} s a run")  # fmt: skip
    print(
        "repeats      runs  minutes  right  wrong  same   (verdicts per replay, of "
        f"{len(cells) - 1})"
    )
    results = {}
    for name, schedule, rounds, looks in (
        ("fixed 3", AllAtOnce(), 3, 1),
        ("auto", AdaptiveSchedule(rule, base), rule.max_repeats, rule.looks),
    ):
        plan = simulated_plan(keys, rounds)
        spent, tallies = [], []
        for seed in range(args.replays):
            runs = run_schedule(schedule, plan, true, cv, seed, looks)
            spent.append(len(runs))
            tallies.append(verdicts(runs, true, base))
        runs_mean = statistics.fmean(spent)
        right, wrong, same = (statistics.fmean(t[i] for t in tallies) for i in range(3))
        results[name] = runs_mean
        print(f"{name:<9} {runs_mean:>7.1f}  {runs_mean * wall / 60:>7.1f}  {right:>5.2f}  "
              f"{wrong:>5.2f}  {same:>4.2f}")  # fmt: skip
    print(f"auto / fixed 3 runs: {results['auto'] / results['fixed 3']:.2f}")


if __name__ == "__main__":
    main()
