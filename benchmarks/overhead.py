"""What kit costs per run, on each engine: the wall time from a run's start (as a session
starts it) to its result being on disk, minus how long the workload's process itself lived
(the container's StartedAt..FinishedAt on Docker; spawn to exit on the local engine). The
tiny model keeps the workload short, so the overhead is not lost in its noise.
Target: under 1 s per run on Docker.

    .venv/bin/python benchmarks/overhead.py [--engine docker --engine local] [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kit.cli.common import EngineKind, make_engine
from kit.flavors import resolve_image
from kit.plan import build_fleet_plan
from kit.profiles import load_profiles, pick
from kit.results import RunResult
from kit.session import RunFinished, RunStarted, open_session, run_session
from kit.spec import Model, WorkloadSpec

TARGET_S = 1.0
TINY = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)


def measure(
    kind: EngineKind, runs: int, image: str, results: Path
) -> list[tuple[float, RunResult]]:
    engine = make_engine(kind)
    engine.check()
    facts = engine.host_facts(resolve_image(image).reference)
    plan = build_fleet_plan(
        [(facts.topology, [engine.name])], [image], pick(load_profiles(), ["default"]), TINY,
        repeats=runs,
    )  # fmt: skip
    started: dict[int, float] = {}
    walls: dict[int, float] = {}

    def listener(event) -> None:
        if isinstance(event, RunStarted):
            started[event.spec.index] = time.perf_counter()
        elif isinstance(event, RunFinished):
            walls[event.spec.index] = time.perf_counter() - started[event.spec.index]

    store, _ = open_session(plan, engine, results)
    done = run_session(plan, engine, store, listener, hosts={engine.name: facts.record})
    return [(walls[r.index], r) for r in done]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", type=EngineKind, default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", default="stock")
    args = parser.parse_args()
    failed = False
    for kind in args.engine or [EngineKind.docker]:
        with tempfile.TemporaryDirectory(prefix="kit-overhead-") as tmp:
            measured = measure(kind, args.runs, args.image, Path(tmp))
        ok = [(wall, r) for wall, r in measured if r.ok and r.process_s is not None]
        if not ok:
            print(f"{kind.value}: no successful run", flush=True)
            failed = True
            continue
        walls = [wall for wall, _ in ok]
        procs = [r.process_s for _, r in ok]
        overheads = [wall - proc for wall, proc in zip(walls, procs, strict=True)]
        verdict = "met" if statistics.median(overheads) < TARGET_S else "NOT met"
        print(
            f"{kind.value:6} {len(ok)} runs of the tiny model: wall per run median "
            f"{statistics.median(walls):.2f} s, workload process {statistics.median(procs):.2f} s, "
            f"kit+engine overhead median {statistics.median(overheads):.3f} s "
            f"(min {min(overheads):.3f}, max {max(overheads):.3f}); "
            f"target < {TARGET_S:g} s{' on Docker' if kind is EngineKind.docker else ''}: "
            f"{verdict}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
