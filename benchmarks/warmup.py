"""Time to a verdict: a fixed warmup against the warmup until settled, in one alternating session.

Runs `kit sweep IMAGES -p PROFILE -k warmup=FIXED,auto --repeats N` (the cells take turns, so
load that drifts over the session falls on both), then prints per cell and warmup the images/sec,
the repeats' cv, the warmup it ran, each run's seconds and the runs kit's table calls unsettled
(with the reason it gives: one rule, RunResult.unsettled); and per warmup the runs and minutes
`--repeats auto` needs to judge the images against each other at that cv (the adaptive rule
replayed on the measured medians and cv, as benchmarks/adaptive.py does). Prints the host's CPU
model and ISA first.

    .venv/bin/python benchmarks/warmup.py [--images stock,intel] [--profile default]
        [--fixed 2] [--repeats 4] [--replays 300] [KIT OPTIONS...]

Options it does not know go to kit (e.g. --model tiny --num-batches 5 for a quick look).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from kit.campaign.schedules.adaptive import Adaptive, AdaptiveSchedule
from kit.host.facts import parse_cpuinfo
from kit.store.folder import load_session
from tests.simulate import run_schedule, simulated_plan


def host_line() -> str:
    info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    return f"host: {info['cpu_model']}; ISA: {' '.join(info['isa_flags'])}"  # type: ignore[arg-type]


def sweep(args, extra: list[str], results: Path) -> list:
    argv = [
        sys.executable, "-m", "kit", "sweep", *args.images.split(","), "-p", args.profile,
        "-k", f"warmup={args.fixed},auto", "--repeats", str(args.repeats),
        "--results", str(results), "--format", "json", *extra,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"kit sweep failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    (folder,) = [p for p in results.iterdir() if p.is_dir()]
    return load_session(folder)


def seconds(run) -> float:
    return (datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)).total_seconds()


def cell_lines(runs) -> dict[str, dict[str, dict]]:
    """Per warmup, per image: the samples, warmup batches, run seconds and unsettled runs."""
    out: dict[str, dict[str, dict]] = {}
    for run in runs:
        if not run.ok or run.images_per_sec is None:
            continue
        cell = out.setdefault(run.knobs["warmup"], {}).setdefault(
            run.image, {"rates": [], "warmup": [], "seconds": [], "unsettled": []}
        )
        cell["rates"].append(run.images_per_sec)
        cell["warmup"].append((run.warmup or {}).get("batches", 0))
        cell["seconds"].append(seconds(run))
        reason = run.unsettled()
        if reason:
            cell["unsettled"].append(f"{run.image} repeat {run.repeat}: {reason}")
    return out


def runs_auto_needs(cells: dict[str, dict], cv: float, replays: int) -> float:
    """Mean runs `--repeats auto` takes to judge these cells against the first, at this cv."""
    true = {f"{image}:default": statistics.median(c["rates"]) for image, c in cells.items()}
    keys, base = list(true), next(iter(true))
    rule = Adaptive(0.03)
    plan = simulated_plan(keys, rule.max_repeats)
    schedule = AdaptiveSchedule(rule, base)
    spent = [
        len(run_schedule(schedule, plan, true, cv, seed, rule.looks)) for seed in range(replays)
    ]
    return statistics.fmean(spent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="stock,intel")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--fixed", type=int, default=2, help="the fixed warmup's batches")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--replays", type=int, default=300)
    args, extra = parser.parse_known_args()
    print(host_line())
    print(f"kit sweep {args.images} -p {args.profile} -k warmup={args.fixed},auto "
          f"--repeats {args.repeats} {' '.join(extra)}".rstrip(), flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kit-warmup-") as tmp:
        measured = cell_lines(sweep(args, extra, Path(tmp)))
    print(f"\n{'warmup':<7} {'image':<8} {'images/sec':>10} {'cv':>6} {'warmup batches':>14} "
          f"{'run s':>6}  unsettled runs")  # fmt: skip
    for warmup, cells in measured.items():
        for image, c in cells.items():
            cv = statistics.stdev(c["rates"]) / statistics.fmean(c["rates"])
            print(f"{warmup:<7} {image:<8} {statistics.median(c['rates']):>10.2f} {cv:>6.1%} "
                  f"{statistics.fmean(c['warmup']):>14.1f} {statistics.fmean(c['seconds']):>6.0f}"
                  f"  {len(c['unsettled'])} of {len(c['rates'])}")  # fmt: skip
            for reason in c["unsettled"]:
                print(f"    unsettled: {reason}")
    print(f"\n{'warmup':<7} {'mean cv':>8} {'auto runs':>10} {'minutes':>8}  (judging the images; "
          "cv: the mean of the cells')")  # fmt: skip
    for warmup, cells in measured.items():
        cv = statistics.fmean(
            statistics.stdev(c["rates"]) / statistics.fmean(c["rates"]) for c in cells.values()
        )
        runs = runs_auto_needs(cells, cv, args.replays)
        run_s = statistics.fmean(s for c in cells.values() for s in c["seconds"])
        print(f"{warmup:<7} {cv:>8.1%} {runs:>10.1f} {runs * run_s / 60:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
