"""How long `kit site` takes and how heavy its pages are with hundreds of sessions: a results
database of N synthetic sessions (2 cells, 3 repeats each, a 10% step halfway), then `kit site`
timed as a user runs it, and the size of the index, a cell page, its plot and the whole site.

    .venv/bin/python benchmarks/site.py [--sessions 500]
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.model.results import RunResult, Status
from kit.model.workload_record import WorkloadRecord
from kit.store.database import ResultsDB

CELLS = ("stock:default", "intel:tuned")
HOST = {"hostname": "bench-host", "cpu_model": "synthetic", "kernel": "6.1.0", "boot_id": "b"}
WORKLOAD = WorkloadRecord("resnet50", batch_size=32, num_batches=10, num_warmup_batches=2)


def fill(db_path: Path, sessions: int) -> None:
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with ResultsDB(db_path) as db:
        for n in range(sessions):
            when = (start + timedelta(hours=n)).isoformat()
            sid = f"2026{n:06d}"
            db.add_session(sid, {"started": when, "kit_version": "0.1.0", "argv": ["compare"]})
            index = 0
            for cell in CELLS:
                image, profile = cell.split(":")
                level = 10.0 * (0.9 if n >= sessions // 2 and image == "stock" else 1.0)
                for repeat in range(3):
                    index += 1
                    rate = level * math.exp(rng.gauss(0, 0.03))
                    run = RunResult(
                        index, image, f"kit/tensorflow:{image}", profile, "0-1", "", ("python",),
                        {}, Status.ok, rate, when, when, 0, "/dev/null",
                        image_id=f"sha256:{image}{n >= sessions // 2}", host=HOST,
                        workload=WORKLOAD, repeat=repeat, provenance={"tf_version": "2.14.1"},
                    )  # fmt: skip
                    db.add_run(sid, run.to_json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = root / "results"
        results.mkdir()
        fill(results / "kit.db", args.sessions)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "kit", "site", "-o", str(root / "site"), "--results",
             str(results)], capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(done.stderr)
        site = root / "site"
        cell = next((site / "cells").glob("*stock*.html"))
        total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
        print(f"{args.sessions} sessions x {len(CELLS)} cells: kit site took {seconds:.1f} s")
        print(f"index.html {(site / 'index.html').stat().st_size / 1024:.1f} KiB; a cell page "
              f"{cell.stat().st_size / 1024:.1f} KiB + its plot "
              f"{cell.with_suffix('.png').stat().st_size / 1024:.1f} KiB; sessions.html "
              f"{(site / 'sessions.html').stat().st_size / 1024:.1f} KiB; whole site "
              f"{total / 2**20:.1f} MiB in {len(list(site.rglob('*.html')))} pages")  # fmt: skip
        print(done.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
