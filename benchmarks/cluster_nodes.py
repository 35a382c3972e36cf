"""Wall time of one campaign on one node and on two nodes of a real Slurm cluster (tests/cluster.py:
slurmctld here, each node a container on its own CPU), the two taking turns pair by pair with the
order flipped each pair, as a ratio with a t 95% interval on the log ratios.

Each node runs the whole plan (compare machines), so two nodes working at the same time take about
the time of one (ratio ~1.0); nodes taking turns would take twice as long (ratio ~2.0).

    .venv/bin/python benchmarks/cluster_nodes.py [--pairs 3] [--model tiny] [--num-batches 200]
        [--repeats 2]

Needs what `make cluster-up` needs (make engine test-hosts, kit images build stock) and the CPUs:
run nothing else meanwhile.
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scipy import stats  # noqa: E402

from tests.cluster import start_cluster  # noqa: E402


def campaign(args, nodes: int, results: Path) -> list[str]:
    return [
        sys.executable, "-m", "kit", "compare", "stock", "-p", "default", "-p", "tuned",
        "--engine", "slurm", "--node-engine", "local", "--slurm-nodes", str(nodes),
        "--model", args.model, "--batch-size", str(args.batch_size), "--num-batches",
        str(args.num_batches), "--num-warmup-batches", "2", "--repeats", str(args.repeats),
        "--results", str(results),
    ]  # fmt: skip


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, list[dict]]:
    """The command's wall time and the runs of the session it recorded."""
    results = Path(argv[argv.index("--results") + 1])
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode:
        sys.exit(f"kit failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    runs = [json.loads(p.read_text()) for p in sorted(session.glob("[0-9]*.json"))]
    return wall, runs


def interval(logs: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "unknown CPU")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="kit-bench-cluster-"))
    print(f"host: {cpu}, {os.cpu_count()} CPUs; starting a 2-node cluster in {root}", flush=True)
    cluster = start_cluster(root, 2, say=lambda line: print(" ", line, flush=True))
    env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
    walls: dict[int, list[float]] = {1: [], 2: []}
    try:
        for pair in range(args.pairs):
            order = (1, 2) if pair % 2 == 0 else (2, 1)
            for nodes in order:
                results = root / f"pair{pair}-{nodes}"
                wall, runs = timed(campaign(args, nodes, results), env)
                walls[nodes].append(wall)
                rate = statistics.fmean(r["images_per_sec"] or 0 for r in runs)
                print(f"pair {pair + 1}: {nodes} node(s) {wall:6.1f} s wall, {len(runs)} runs on "
                      f"{', '.join(sorted({r['engine'] for r in runs}))}, mean {rate:.0f} img/s",
                      flush=True)  # fmt: skip
    finally:
        cluster.stop()
    logs = [math.log(two / one) for one, two in zip(walls[1], walls[2], strict=True)]
    ratio, low, high = interval(logs)
    plan = f"{args.repeats} repeats x 2 cells"
    print(f"\none node:  {statistics.fmean(walls[1]):.1f} s mean wall ({plan})")
    print(f"two nodes: {statistics.fmean(walls[2]):.1f} s mean wall (each node the whole plan)")
    print(f"two/one:   {ratio:.2f} [{low:.2f}, {high:.2f}] 95% t interval over {len(logs)} pairs "
          "(~1.0: the nodes work at once; ~2.0: they take turns)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
