"""What the container costs: images/sec of one cell under Docker and as a bare process on the
same CPUs, the two engines taking turns run by run, as a ratio with a bootstrap 95% CI.

Runs `kit compare IMAGE -p PROFILE --engine docker --engine local --repeats N` (the local engine
builds or reuses its venv first) and reads the session back. Target: docker/local >= 0.98.

    .venv/bin/python benchmarks/container_vs_bare.py [--image stock] [--profile default]
        [--repeats 3] [--preset quick] [--model resnet50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.judging.stats import compare
from kit.store.folder import load_session

TARGET = 0.98


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="stock")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    results = args.results or Path(tempfile.mkdtemp(prefix="kit-bench-"))
    argv = [
        sys.executable, "-m", "kit", "compare", args.image, "-p", args.profile,
        "--engine", "docker", "--engine", "local", "--build-missing",
        "--repeats", str(args.repeats), "--preset", args.preset, "--model", args.model,
        "--results", str(results), "--allow-concurrent",
    ]  # fmt: skip
    print("$", " ".join(argv[2:]), flush=True)
    started = time.monotonic()
    code = subprocess.call(argv)
    wall = time.monotonic() - started
    sessions = sorted(p for p in results.iterdir() if p.is_dir())
    if not sessions:
        print("no session was recorded", file=sys.stderr)
        return 1
    runs = load_session(sessions[-1])
    rates = {
        engine: [r.images_per_sec for r in runs if r.engine == engine and r.ok]
        for engine in ("docker", "local")
    }
    for engine, values in rates.items():
        shown = ", ".join(f"{v:.2f}" for v in values) or "none"
        print(f"{engine:7} images/sec: {shown}")
    if not (rates["docker"] and rates["local"]):
        print("an engine has no successful run; no ratio", file=sys.stderr)
        return 1
    ratio = compare(rates["docker"], rates["local"])
    docker_median = statistics.median(rates["docker"])
    local_median = statistics.median(rates["local"])
    print(
        f"docker/local = {docker_median:.3f}/{local_median:.3f} = {ratio.ratio:.3f} "
        f"[95% CI {ratio.low:.3f}, {ratio.high:.3f}] ({ratio.verdict.value}); "
        f"target >= {TARGET}: {'met' if ratio.ratio >= TARGET else 'NOT met'}"
    )
    print(f"wall time {wall:.0f} s; session {sessions[-1]}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
