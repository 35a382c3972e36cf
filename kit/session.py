"""A session: run a plan through an engine, persisting every result the moment it exists."""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.engine import Engine, RunOutcome
from kit.report import Format, render
from kit.results import RunResult, SessionDir, make_result, new_session_id
from kit.spec import RunSpec


@dataclass(frozen=True)
class RunStarted:
    spec: RunSpec
    total: int


@dataclass(frozen=True)
class RunOutput:
    spec: RunSpec
    line: str


@dataclass(frozen=True)
class RunFinished:
    spec: RunSpec
    result: RunResult


Event = RunStarted | RunOutput | RunFinished
Listener = Callable[[Event], None]


def check_images(engine: Engine, plan: Sequence[RunSpec]) -> dict[str, str]:
    """Every image the plan needs, by reference -> id; ImageNotFound before anything runs."""
    return {ref: engine.image_id(ref) for ref in dict.fromkeys(s.image.reference for s in plan)}


def run_session(
    plan: Sequence[RunSpec],
    engine: Engine,
    results_root: Path,
    listener: Listener = lambda event: None,
    baseline: str | None = None,
    meta: dict | None = None,
) -> tuple[SessionDir, list[RunResult]]:
    """Run every spec in order. A failed run is recorded and the session goes on."""
    store = SessionDir(results_root, new_session_id())
    store.write_meta(
        {
            "session": store.session_id,
            "kit_version": __version__,
            "engine": engine.name,
            "host": platform.node(),
            "started": datetime.now(UTC).isoformat(),
            "plan": [
                {
                    "index": s.index,
                    "image": s.image.reference,
                    "profile": s.profile.name,
                    "cpus": s.cpu_list,
                    "instance": f"{s.instance}/{s.instances}",
                    "command": list(s.command()),
                    "env": dict(s.environment()),
                }
                for s in plan
            ],
            "workload": plan[0].workload.describe() if plan else None,
            **(meta or {}),
        }
    )
    results: list[RunResult] = []
    lock = threading.Lock()

    def run_one(spec: RunSpec) -> None:
        listener(RunStarted(spec, len(plan)))
        outcome: RunOutcome = engine.run(
            spec,
            store.session_id,
            store.log_path(spec),
            lambda line: listener(RunOutput(spec, line)),
        )
        result = make_result(spec, outcome)
        with lock:
            store.record(result)
            results.append(result)
            results.sort(key=lambda r: r.index)
            store.write_summary(render(results, Format.markdown, baseline) + "\n")
        listener(RunFinished(spec, result))

    for cell in _cells(plan):
        if len(cell) == 1:
            run_one(cell[0])
            continue
        # The instances of a cell run at once, each on its own CPUs: that is the measurement.
        with ThreadPoolExecutor(max_workers=len(cell), thread_name_prefix="kit-instance") as pool:
            for future in [pool.submit(run_one, spec) for spec in cell]:
                future.result()
    return store, results


def _cells(plan: Sequence[RunSpec]) -> list[list[RunSpec]]:
    grouped: dict[int, list[RunSpec]] = {}
    for spec in plan:
        grouped.setdefault(spec.cell, []).append(spec)
    return list(grouped.values())
