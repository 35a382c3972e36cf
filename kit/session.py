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
from kit.errors import UsageError
from kit.report import Format, render
from kit.results import RunResult, SessionDir, load_session, make_result, new_session_id
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


def plan_record(plan: Sequence[RunSpec]) -> list[dict]:
    """The plan as session.json keeps it; a resumed session must match it exactly."""
    return [
        {
            "index": s.index,
            "image": s.image.reference,
            "profile": s.profile.name,
            "cpus": s.cpu_list,
            "instance": f"{s.instance}/{s.instances}",
            "repeat": s.repeat,
            "command": list(s.command()),
            "env": dict(s.environment()),
        }
        for s in plan
    ]


def open_session(
    plan: Sequence[RunSpec],
    engine: Engine,
    results_root: Path,
    resume: str | None = None,
    meta: dict | None = None,
) -> tuple[SessionDir, list[RunResult]]:
    """A new session folder, or the one being resumed with the runs it already has."""
    if resume is not None:
        store = SessionDir.open(results_root, resume)
        recorded = store.read_meta().get("plan")
        if recorded != plan_record(plan):
            raise UsageError(
                f"session {store.session_id} was a different plan (images, profiles, CPUs, "
                "sizes or settings differ)",
                "resume with exactly the command that started it",
            )
        return store, load_session(store.path)
    store = SessionDir.create(results_root, new_session_id())
    store.write_meta(
        {
            "session": store.session_id,
            "kit_version": __version__,
            "engine": engine.name,
            "host": platform.node(),
            "started": datetime.now(UTC).isoformat(),
            "plan": plan_record(plan),
            "workload": plan[0].workload.describe() if plan else None,
            **(meta or {}),
        }
    )
    return store, []


def run_session(
    plan: Sequence[RunSpec],
    engine: Engine,
    store: SessionDir,
    listener: Listener = lambda event: None,
    baseline: str | None = None,
    previous: Sequence[RunResult] = (),
) -> list[RunResult]:
    """Run every spec not already in ``previous``, in order. A failed run is recorded and the
    session goes on; each result is on disk before the next run starts. On an interrupt the
    engine stops what it is running, and the interrupt goes on up."""
    done = {r.index for r in previous}
    results: list[RunResult] = sorted(previous, key=lambda r: r.index)
    lock = threading.Lock()
    cancelled = threading.Event()

    def run_one(spec: RunSpec) -> None:
        listener(RunStarted(spec, len(plan)))
        outcome: RunOutcome = engine.run(
            spec,
            store.session_id,
            store.log_path(spec),
            lambda line: listener(RunOutput(spec, line)),
        )
        if cancelled.is_set():
            return  # stopped by the interrupt: not a measurement, so it stays missing
        result = make_result(spec, outcome)
        with lock:
            store.record(result)
            results.append(result)
            results.sort(key=lambda r: r.index)
            store.write_summary(render(results, Format.markdown, baseline) + "\n")
        listener(RunFinished(spec, result))

    for cell in _cells([s for s in plan if s.index not in done]):
        # A cell's instances run at once, each on its own CPUs: that is the measurement.
        with ThreadPoolExecutor(len(cell), thread_name_prefix="kit-run") as pool:
            futures = [pool.submit(run_one, spec) for spec in cell]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                cancelled.set()
                engine.cancel()  # before the pool waits for its threads
                raise
    return results


def _cells(plan: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Specs that run together: one repeat of one cell (its instances, or a single run)."""
    grouped: dict[tuple[int, int], list[RunSpec]] = {}
    for spec in plan:
        grouped.setdefault((spec.repeat, spec.cell), []).append(spec)
    return list(grouped.values())
