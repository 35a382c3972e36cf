"""Does the host-speed probe (kit_workload.speed, run on a run's own CPUs just before and just
after its work) track the workload's speed? Two parts:

1. Stability on this host as it is: the probe repeated, alternating over its CPUs (cv, range).
2. Tracking: `kit compare` runs of one cell while a neighbour takes a share of the same CPUs
   that drifts slowly between 0% and --load (a sine with --period seconds: a shared VM's
   neighbour, as kit cannot see one from inside), then the correlation across the runs between
   each run's images/sec and its probe (the mean of before and after), and the slope of one on
   the other (1.0: they move alike). A session already recorded can be read instead (--session).

    .venv/bin/python benchmarks/host_speed.py [--runs 12] [--load 0.7] [--period 150]
    .venv/bin/python benchmarks/host_speed.py --session results/SESSION
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.store.folder import load_session
from kit.workload.speed import host_speed

REPO = Path(__file__).resolve().parents[1]
KIT = str(Path(sys.executable).with_name("kit"))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def stability(rounds: int = 30) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    found = {cpu: [] for cpu in cpus}
    for i in range(rounds):
        for cpu in cpus if i % 2 == 0 else reversed(cpus):
            os.sched_setaffinity(0, {cpu})
            found[cpu].append(host_speed())
    os.sched_setaffinity(0, set(cpus))
    for cpu, speeds in found.items():
        mean = statistics.fmean(speeds)
        cv = statistics.stdev(speeds) / mean
        print(f"probe on CPU {cpu}: {mean:.2f} M iterations/s, cv {cv:.1%}, "
              f"range {min(speeds):.2f}-{max(speeds):.2f} ({rounds} probes)")  # fmt: skip


def neighbour(cpu: int, load: float, period: float, stop) -> None:
    """Busy a share of one CPU that drifts between 0 and ``load`` (10 ms slices)."""
    os.sched_setaffinity(0, {cpu})
    started = time.monotonic()
    while not stop.is_set():
        t = time.monotonic() - started
        share = load * (0.5 - 0.5 * math.cos(2 * math.pi * t / period))
        busy_until = time.monotonic() + 0.01 * share
        while time.monotonic() < busy_until:
            pass
        time.sleep(0.01 * (1 - share))


@contextlib.contextmanager
def neighbours(load: float, period: float):
    """A neighbour on each of this process's CPUs while the block runs (``neighbour``)."""
    stop = multiprocessing.Event()
    workers = [multiprocessing.Process(target=neighbour, args=(cpu, load, period, stop))
               for cpu in sorted(os.sched_getaffinity(0))]  # fmt: skip
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join()


def tracking(args) -> Path:
    results = Path(tempfile.mkdtemp(prefix="kit-host-speed-"))
    with neighbours(args.load, args.period):
        subprocess.run(
            [KIT, "compare", args.image, "-p", "default", "--model", args.model, "--batch-size",
             str(args.batch_size), "--num-batches", "5", "--num-warmup-batches", "2",
             "--repeats", str(args.runs), "--keep-disturbed", "--allow-concurrent",
             "--results", str(results)],
            check=False,
        )  # fmt: skip
    return next(p for p in results.iterdir() if p.is_dir())


def correlate(session: Path) -> None:
    runs = [r for r in load_session(session) if r.host_speed and r.images_per_sec]
    if len(runs) < 3:
        print(f"{session}: {len(runs)} run(s) with a probe: too few to correlate")
        return
    by_cell: dict[str, list] = {}
    for r in runs:
        by_cell.setdefault(r.key, []).append(r)
    xs, ys = [], []  # log speeds about each cell's mean: cells of different speeds compare
    for cell in by_cell.values():
        px = [math.log(statistics.fmean(r.host_speed)) for r in cell]
        py = [math.log(r.images_per_sec) for r in cell]
        xs += [x - statistics.fmean(px) for x in px]
        ys += [y - statistics.fmean(py) for y in py]
    r = statistics.correlation(xs, ys)
    slope = statistics.linear_regression(xs, ys).slope
    spread = (max(ys) - min(ys)) * 100
    print(f"{session.name}: {len(runs)} runs; workload speed varied over {spread:.0f}% (log); "
          f"correlation with the probe r = {r:.2f}, slope {slope:.2f}")  # fmt: skip
    for run in runs:
        before, after = run.host_speed
        print(f"  run {run.index:>3} {run.key:<22} {run.images_per_sec:8.2f} images/sec  "
              f"probe {before:6.2f} / {after:6.2f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", type=Path, help="correlate a recorded session instead")
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--period", type=float, default=150.0)
    parser.add_argument("--image", default="stock")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} CPUs")
    if args.session is not None:
        correlate(args.session)
        return 0
    stability()
    correlate(tracking(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
