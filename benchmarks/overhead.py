"""What kit costs per run, on each engine: the wall time from a run's start (as a session
starts it) to its result being on disk, minus how long the workload's process itself lived
(the container's StartedAt..FinishedAt on Docker; spawn to exit on the local engine). The
tiny model keeps the workload short, so the overhead is not lost in its noise.
Target: under 1 s per run on Docker.

    .venv/bin/python benchmarks/overhead.py [--engine docker --engine local] [--runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from kit.campaign.request import CampaignRequest, How, What, Where
from kit.campaign.run import execute, prepare
from kit.campaign.session import RunFinished, RunStarted
from kit.engines.factory import SystemEngines
from kit.engines.kinds import EngineKind
from kit.model.feedback import Quiet
from kit.model.results import RunResult
from kit.model.workload import Model, WorkloadSpec

TARGET_S = 1.0
TINY = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)


class Timing(Quiet):
    """Feedback that times each run from its start event to its result (on disk by then)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[int, float] = {}
        self.walls: dict[int, float] = {}

    @contextlib.contextmanager
    def running(self, workload, show_engine):
        def listener(event) -> None:
            if isinstance(event, RunStarted):
                self.started[event.spec.index] = time.perf_counter()
            elif isinstance(event, RunFinished):
                self.walls[event.spec.index] = time.perf_counter() - self.started[event.spec.index]

        yield listener


def measure(
    kind: EngineKind, runs: int, image: str, results: Path
) -> list[tuple[float, RunResult]]:
    """The runs through kit's own campaign core, as `kit run` makes them."""
    request = CampaignRequest(
        What((image,), ("default",), workload=TINY, repeats=runs),
        Where((kind,)),
        How(results=results, allow_concurrent=True),
    )
    timing = Timing()
    finished = execute(prepare(request, SystemEngines(), timing), timing)
    return [(timing.walls[r.index], r) for r in finished.runs]


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
