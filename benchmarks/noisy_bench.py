"""`make bench` on a host whose speed drifts: the same session judged three ways.

A neighbour kit cannot see (as on a shared cloud VM: its work is outside the VM) takes a share of
every CPU that drifts slowly between 0 and --load (benchmarks/host_speed.py's sine). Under it,
`make bench`'s own command runs (`kit compare stock intel --verify --repeats auto --max-repeats 5
--budget 30m`, with --keep-disturbed and --allow-concurrent, since the neighbour here is visible
to kit where a real one is not). Each cell is then compared with stock:default on the same runs:

- Welch on all repeats (how kit judged before rounds were blocks);
- paired by round (what kit judges now);
- paired, with the host-speed probe as a covariate: each round's log ratio less beta times the
  log ratio of the two runs' probes, beta fitted across rounds (one degree of freedom spent);
  and with beta = 1 (images/sec divided by the probe).

All at 95%, and the probe's correlation with the workload's speed. A recorded session can be
read instead (--session).

    .venv/bin/python benchmarks/noisy_bench.py [--load 0.6] [--period 300] [--budget 30m]
        [-- --model tiny --num-batches 30 ...]
    .venv/bin/python benchmarks/noisy_bench.py --session results/SESSION
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.host_speed import correlate, cpu_model, neighbours
from kit.judging.stats import compare, compare_paired, t_interval
from kit.store.folder import load_session

KIT = str(Path(sys.executable).with_name("kit"))
BASELINE = "stock:default"


def bench(args) -> Path:
    results = Path(tempfile.mkdtemp(prefix="kit-noisy-bench-"))
    with neighbours(args.load, args.period):
        subprocess.run(
            [KIT, "compare", "stock", "intel", "--verify", "--repeats", "auto",
             "--min-repeats", str(args.min_repeats), "--max-repeats", str(args.max_repeats),
             "--budget", args.budget, "--keep-disturbed",
             "--allow-concurrent", "--results", str(results), *args.extra],
            check=False,
        )  # fmt: skip
    found = [p for p in results.iterdir() if p.is_dir()]
    if not found:
        sys.exit("kit compare recorded no session")
    return found[0]


def _by_round(session: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Each cell's (images/sec, probe) by repeat round, the counted runs only."""
    cells: dict[str, dict[int, tuple[float, float]]] = {}
    for run in load_session(session):
        if run.ok and run.images_per_sec and run.host_speed:
            probe = statistics.fmean(run.host_speed)
            cells.setdefault(run.key, {})[run.repeat] = (run.images_per_sec, probe)
    return cells


def covariate(pairs: list[tuple[float, float, float]], beta: float | None):
    """Paired log ratios less ``beta`` times the probes' log ratio (fitted when None)."""
    ds = [d for d, _, _ in pairs]
    xs = [x for _, x, _ in pairs]
    n = len(ds)
    if beta is None:
        if n < 3 or statistics.pvariance(xs) == 0:
            return None
        fit = statistics.linear_regression(xs, ds)
        res = [d - fit.intercept - fit.slope * x for d, x in zip(ds, xs, strict=True)]
        sxx = sum((x - statistics.fmean(xs)) ** 2 for x in xs)
        s2 = sum(r * r for r in res) / (n - 2)
        # the difference at equal probes (x = 0): the intercept, and its standard error
        se = math.sqrt(s2 * (1 / n + statistics.fmean(xs) ** 2 / sxx))
        return t_interval(fit.intercept, se, n - 2, 0.95, n), fit.slope
    adjusted = [d - beta * x for d, x in zip(ds, xs, strict=True)]
    se = statistics.stdev(adjusted) / math.sqrt(n)
    return t_interval(statistics.fmean(adjusted), se, n - 1, 0.95, n), beta


def _said(speedup) -> str:
    return f"{speedup.ratio:.2f}x [{speedup.low:.2f}, {speedup.high:.2f}]"


def judge(session: Path) -> None:
    cells = _by_round(session)
    base = cells.get(BASELINE)
    if not base:
        print(f"{session}: no counted {BASELINE} runs")
        return
    print("| cell | rounds | Welch | paired by round | paired + probe (fitted beta) "
          "| paired + probe (beta 1) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for key, runs in cells.items():
        if key == BASELINE:
            continue
        welch = compare([v for v, _ in runs.values()], [v for v, _ in base.values()])
        common = sorted(set(runs) & set(base))
        pairs = [(math.log(runs[r][0] / base[r][0]), math.log(runs[r][1] / base[r][1]), r)
                 for r in common]  # fmt: skip
        paired = compare_paired([(runs[r][0], base[r][0]) for r in common])
        fitted, one = covariate(pairs, None), covariate(pairs, 1.0)
        fitted_text = f"{_said(fitted[0])} (beta {fitted[1]:.2f})" if fitted else "-"
        print(f"| {key} | {len(common)} | {_said(welch)} | {_said(paired)} | {fitted_text} "
              f"| {_said(one[0]) if one else '-'} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", type=Path, help="judge a recorded session instead")
    parser.add_argument("--load", type=float, default=0.6)
    parser.add_argument("--period", type=float, default=300.0)
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--min-repeats", type=int, default=2)
    parser.add_argument("--max-repeats", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="more options for kit compare (after --)")
    args = parser.parse_args()
    print(f"host: {cpu_model()}, {os.cpu_count()} CPUs")
    session = args.session if args.session is not None else bench(args)
    print(f"session: {session}")
    correlate(session)
    judge(session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
