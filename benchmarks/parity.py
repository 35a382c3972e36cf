"""kit's workload against tf_cnn_benchmarks, on the same image, profile, CPUs and sizes.

For each cell (IMAGE:PROFILE) the two workloads take turns, run by run: `kit run IMAGE -p
PROFILE --workload kit`, then the same with `--workload tf_cnn_benchmarks --workload-dir DIR`,
``--pairs`` times. Each pair gives a ratio (kit / tf_cnn_benchmarks), so load that drifts over
the run cancels; the cell's ratio is the geometric mean of its pairs with a paired t interval.
Prints the host's CPU model and ISA first. Target: ratio >= 1.00.

Beside the totals it prints each side's steady rate (images/sec over the second half of the
timed batches: kit's from its per-batch times, tf_cnn_benchmarks' from its cumulative means,
good to about 1%) and the warmup each side ran: kit's until its step time settled (batches and
seconds), tf_cnn_benchmarks' its own fixed one. A kit run that kit's table would call unsettled
(its speed still moved, or a timed batch grew the memory and ran slow) is said under its pair;
it stays in the figures, as tf_cnn_benchmarks' own slow batches do (its output shows none).

    .venv/bin/python benchmarks/parity.py [--cells stock:default,intel:tuned] [--pairs 3]
        [--workload-dir ../shared/tf_cnn_benchmarks] [--model resnet50] [--batch-size 32]
        [--num-batches 10] [--num-warmup-batches auto] [--profiles FILE]

``--num-warmup-batches auto`` (the default) gives kit's workload its settled warmup and
tf_cnn_benchmarks its own default (10 batches); a number gives both that fixed warmup.

Without an AVX2 host at hand, an AVX-512 host plays one for oneDNN with a profile that sets
``ONEDNN_MAX_CPU_ISA=AVX2`` (intel), and for stock with its ``eigen`` profile (oneDNN off, as
stock TF 2.14 runs by default on AVX2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from kit.host.facts import parse_cpuinfo
from kit.model.results import RunResult

REPO = Path(__file__).resolve().parents[1]
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


class Measured(NamedTuple):
    total: float  # images/sec over every timed batch
    steady: float | None  # over the second half of them
    warmup: str  # what the warmup was
    unsettled: str | None  # why kit's table would say the run unsettled (None: settled, or tf_cnn)


def one_run(cell: str, workload: str, args, results: Path) -> Measured:
    """One run of the cell with this workload (through kit, as a user runs it)."""
    image, profile = cell.split(":")
    argv = [
        sys.executable, "-m", "kit", "run", image, "-p", profile, "--repeats", "1",
        "--model", args.model, "--batch-size", str(args.batch_size),
        "--num-batches", str(args.num_batches),
        "--num-warmup-batches", args.num_warmup_batches,
        "--workload", workload, "--results", str(results), "--format", "json",
    ]  # fmt: skip
    if workload == "tf_cnn_benchmarks":
        argv += ["--workload-dir", str(args.workload_dir)]
    if args.profiles is not None:
        argv += ["--profiles", str(args.profiles)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    try:
        rows = json.loads(proc.stdout)["rows"]
        rate = rows[0]["images_per_sec"]
    except (ValueError, KeyError, IndexError):
        rate = None
    if proc.returncode != 0 or not rate:
        sys.exit(f"{cell} {workload} failed (exit {proc.returncode}): {proc.stderr[-600:]}")
    record = newest_record(results)
    return Measured(
        float(rate),
        steady_rate(record, args.batch_size),
        warmup_text(record),
        RunResult.from_json(record).unsettled(),
    )


def newest_record(results: Path) -> dict:
    """The record of the run just made: the only run of the newest session folder."""
    folder = max((p for p in results.iterdir() if p.is_dir()), key=lambda p: p.name)
    (path,) = [p for p in folder.glob("*.json") if p.name != "session.json"]
    return json.loads(path.read_text())


def steady_rate(record: dict, batch_size: int) -> float | None:
    """images/sec over the second half of the timed batches: from the per-batch seconds where
    the workload gives them, else from the cumulative means of its step lines."""
    times = record.get("step_seconds") or []
    if len(times) >= 2:
        half = times[len(times) // 2 :]
        return batch_size * len(half) / sum(half)
    steps = {s["step"]: s["images_per_sec"] for s in record.get("steps") or ()}
    n = max(steps, default=0)
    h = n // 2
    if h < 1 or h not in steps or not steps[n] or not steps[h]:
        return None
    elapsed = batch_size * n / steps[n] - batch_size * h / steps[h]
    return batch_size * (n - h) / elapsed if elapsed > 0 else None


def warmup_text(record: dict) -> str:
    warmup = record.get("warmup")
    if warmup:
        settled = "settled" if warmup.get("settled") else "not settled"
        return f"{warmup['batches']} batches, {warmup['seconds']:.0f} s, {settled}"
    argv = [a for a in record.get("command") or () if a.startswith("--num_warmup_batches=")]
    value = argv[0].partition("=")[2] if argv else "auto"
    return "10 batches (its default)" if value == "auto" else f"{value} batches (fixed)"


def paired(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of per-pair ratios, with a 95% t interval on their logarithms."""
    logs = [math.log(r) for r in ratios]
    center = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(center), math.nan, math.nan
    half = T975.get(len(logs) - 1, 1.96) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(center), math.exp(center - half), math.exp(center + half)


def host_line() -> str:
    info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    return f"host: {info['cpu_model']}, {len(os.sched_getaffinity(0))} CPUs; " + (
        f"ISA: {' '.join(info['isa_flags'])}"  # type: ignore[arg-type]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="stock:default,intel:tuned")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--workload-dir", type=Path, default=REPO.parent / "shared" / "tf_cnn_benchmarks"
    )
    parser.add_argument("--profiles", type=Path, default=None, help="a TOML file of profiles")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-batches", type=int, default=10)
    parser.add_argument("--num-warmup-batches", default="auto", help="auto, or a number")
    args = parser.parse_args()
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    print(host_line())
    sizes = f"{args.model}, batch {args.batch_size}, {args.num_batches} timed batches"
    print(f"{sizes}, warmup {args.num_warmup_batches}, {args.pairs} alternating pairs per cell")
    measured: dict[str, list[tuple[Measured, Measured]]] = {c: [] for c in cells}
    with tempfile.TemporaryDirectory(prefix="kit-parity-") as tmp:
        for pair in range(args.pairs):
            for cell in cells:
                order = (
                    ("kit", "tf_cnn_benchmarks") if pair % 2 == 0 else ("tf_cnn_benchmarks", "kit")
                )
                run = {w: one_run(cell, w, args, Path(tmp)) for w in order}
                kit, tf_cnn = run["kit"], run["tf_cnn_benchmarks"]
                measured[cell].append((kit, tf_cnn))
                print(f"  pair {pair + 1} {cell}: kit {kit.total:.2f} (steady {_num(kit.steady)}; "
                      f"warmup {kit.warmup}), tf_cnn_benchmarks {tf_cnn.total:.2f} (steady "
                      f"{_num(tf_cnn.steady)}; warmup {tf_cnn.warmup}) images/sec",
                      flush=True)  # fmt: skip
                if kit.unsettled:
                    print(f"    kit's run unsettled: {kit.unsettled}", flush=True)
    print_summary(measured)
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_summary(measured: dict[str, list[tuple[Measured, Measured]]]) -> None:
    print(f"\n{'cell':<16} {'':<7} {'kit img/s':>10} {'tf_cnn img/s':>12} {'kit/tf_cnn':>10}"
          "  95% interval")  # fmt: skip
    for cell, pairs in measured.items():
        for what, pick in (("total", lambda m: m.total), ("steady", lambda m: m.steady)):
            values = [(pick(k), pick(t)) for k, t in pairs]
            if any(k is None or t is None for k, t in values):
                continue
            ratio, low, high = paired([k / t for k, t in values])
            kit_mean = statistics.geometric_mean(k for k, _ in values)
            tf_mean = statistics.geometric_mean(t for _, t in values)
            print(f"{cell:<16} {what:<7} {kit_mean:>10.2f} {tf_mean:>12.2f} {ratio:>9.3f}x  "
                  f"[{low:.3f}, {high:.3f}]")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
