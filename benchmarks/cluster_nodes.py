"""Wall time of one campaign on one node and on two nodes of a real Slurm cluster (tests/cluster.py:
slurmctld here, each node a container on its own CPU): compare machines (each node the whole
plan) and --spread (each node half of every cell's repeats). The three take turns round by round,
the order rotated each round; wall-time ratios to one node with a t 95% interval on the log
ratios, and each arm's tuned/default speedup with its interval, for the same cells.

Two nodes working at the same time take about one node's time for the whole plan each (ratio
~1.0; taking turns would be ~2.0), and about half of it spread (ratio ~0.5).

    .venv/bin/python benchmarks/cluster_nodes.py [--rounds 3] [--model tiny] [--num-batches 200]
        [--repeats 4]

Needs what `make cluster-up` needs (make engine test-hosts, kit images build stock) and the CPUs:
run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
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

from kit.reporting.rows import rows  # noqa: E402
from kit.store.folder import load_session  # noqa: E402
from tests.cluster import start_cluster  # noqa: E402

ARMS = {"one node": (1, False), "two nodes": (2, False), "spread": (2, True)}


def campaign(args, arm: str, results: Path) -> list[str]:
    nodes, spread = ARMS[arm]
    return [
        sys.executable, "-m", "kit", "compare", "stock", "-p", "default", "-p", "tuned",
        "--keep-equivalent", "--engine", "slurm", "--node-engine", "local", "--slurm-nodes",
        str(nodes), *(["--spread"] if spread else []), "--model", args.model, "--batch-size",
        str(args.batch_size), "--num-batches", str(args.num_batches), "--num-warmup-batches",
        "2", "--repeats", str(args.repeats), "--results", str(results),
    ]  # fmt: skip


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, list]:
    """The command's wall time and the runs of the session it recorded."""
    results = Path(argv[argv.index("--results") + 1])
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode:
        sys.exit(f"kit failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    return wall, load_session(session)


def speedup(runs) -> str:
    """tuned over default as the table says it (the first machine's, comparing machines)."""
    row = next(r for r in rows(runs) if r.profile == "tuned")
    return f"{row.speedup:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] {row.verdict.value}"


def interval(logs: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "unknown CPU")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="kit-bench-cluster-"))
    print(f"host: {cpu}, {os.cpu_count()} CPUs; starting a 2-node cluster in {root}", flush=True)
    cluster = start_cluster(root, 2, say=lambda line: print(" ", line, flush=True))
    env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
    walls: dict[str, list[float]] = {arm: [] for arm in ARMS}
    names = list(ARMS)
    try:
        for turn in range(args.rounds):
            for arm in names[turn % 3 :] + names[: turn % 3]:
                wall, runs = timed(campaign(args, arm, root / f"round{turn}-{arm}"), env)
                walls[arm].append(wall)
                print(f"round {turn + 1}: {arm:9} {wall:6.1f} s wall, {len(runs)} runs on "
                      f"{', '.join(sorted({r.engine for r in runs}))}; tuned/default "
                      f"{speedup(runs)}", flush=True)  # fmt: skip
    finally:
        cluster.stop()
    plan = f"2 cells x {args.repeats} repeats, {args.model} x {args.num_batches} batches"
    print(f"\n{plan}; mean wall: " + ", ".join(
        f"{arm} {statistics.fmean(w):.1f} s" for arm, w in walls.items()))  # fmt: skip
    for arm in ("two nodes", "spread"):
        logs = [math.log(x / one) for one, x in zip(walls["one node"], walls[arm], strict=True)]
        ratio, low, high = interval(logs)
        print(f"{arm} / one node: {ratio:.2f} [{low:.2f}, {high:.2f}] (95% t, {len(logs)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
