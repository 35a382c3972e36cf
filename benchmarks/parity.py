"""kit's workload against tf_cnn_benchmarks, on the same image, profile, CPUs and sizes.

For each cell (IMAGE:PROFILE) the two workloads take turns, run by run: `kit run IMAGE -p
PROFILE --workload kit`, then the same with `--workload tf_cnn_benchmarks --workload-dir DIR`,
``--pairs`` times. Each pair gives a ratio (kit / tf_cnn_benchmarks), so load that drifts over
the run cancels; the cell's ratio is the geometric mean of its pairs with a paired t interval.
Prints the host's CPU model and ISA first. Target: ratio >= 1.00.

    .venv/bin/python benchmarks/parity.py [--cells stock:default,intel:tuned] [--pairs 3]
        [--workload-dir ../shared/tf_cnn_benchmarks] [--model resnet50] [--batch-size 32]
        [--num-batches 10] [--num-warmup-batches 2] [--profiles FILE]

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

from kit.host.facts import parse_cpuinfo

REPO = Path(__file__).resolve().parents[1]
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def one_run(cell: str, workload: str, args, results: Path) -> float:
    """images/sec of one run of the cell with this workload (through kit, as a user runs it)."""
    image, profile = cell.split(":")
    argv = [
        sys.executable, "-m", "kit", "run", image, "-p", profile, "--repeats", "1",
        "--model", args.model, "--batch-size", str(args.batch_size),
        "--num-batches", str(args.num_batches),
        "--num-warmup-batches", str(args.num_warmup_batches),
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
    return float(rate)


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
    parser.add_argument("--num-warmup-batches", type=int, default=2)
    args = parser.parse_args()
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    print(host_line())
    sizes = f"{args.model}, batch {args.batch_size}, {args.num_batches} + {args.num_warmup_batches}"
    print(f"{sizes} batches, {args.pairs} alternating pairs per cell")
    measured: dict[str, list[tuple[float, float]]] = {c: [] for c in cells}
    with tempfile.TemporaryDirectory(prefix="kit-parity-") as tmp:
        for pair in range(args.pairs):
            for cell in cells:
                order = (
                    ("kit", "tf_cnn_benchmarks") if pair % 2 == 0 else ("tf_cnn_benchmarks", "kit")
                )
                rate = {w: one_run(cell, w, args, Path(tmp)) for w in order}
                measured[cell].append((rate["kit"], rate["tf_cnn_benchmarks"]))
                print(f"  pair {pair + 1} {cell}: kit {rate['kit']:.2f}, tf_cnn_benchmarks "
                      f"{rate['tf_cnn_benchmarks']:.2f} images/sec", flush=True)  # fmt: skip
    print(f"\n{'cell':<16} {'kit img/s':>10} {'tf_cnn img/s':>12} {'kit/tf_cnn':>10}  95% interval")
    for cell, pairs in measured.items():
        ratio, low, high = paired([k / t for k, t in pairs])
        kit_mean = statistics.geometric_mean(k for k, _ in pairs)
        tf_mean = statistics.geometric_mean(t for _, t in pairs)
        print(
            f"{cell:<16} {kit_mean:>10.2f} {tf_mean:>12.2f} {ratio:>9.3f}x  [{low:.3f}, {high:.3f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
