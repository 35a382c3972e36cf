"""A session: run a plan through an engine, persisting every result the moment it exists."""

from __future__ import annotations

import contextlib
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
from kit.onednn import parse_verbose
from kit.parse import ParsedOutput, parse_output
from kit.report import Format, render
from kit.results import (
    RunResult,
    SessionDir,
    Status,
    judge,
    load_session,
    make_result,
    new_session_id,
    slug,
)
from kit.spec import RunSpec
from kit.store import ResultsDB
from kit.utilization import Sampler
from kit.verify import diagnostic_spec, verify_record


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
VERIFY_INDEX = 9000  # diagnostic runs are numbered apart from measured ones
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
            "engine": s.engine,
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
    db: ResultsDB | None = None,
) -> tuple[SessionDir, list[RunResult]]:
    """A new session folder, or the one being resumed with the runs it already has."""
    if resume is not None:
        store = SessionDir.open(results_root, resume, db)
        recorded = store.read_meta().get("plan")
        if recorded != plan_record(plan):
            raise UsageError(
                f"session {store.session_id} was a different plan (images, profiles, CPUs, "
                "sizes or settings differ)",
                "resume with exactly the command that started it",
            )
        if db is not None:
            db.add_session(store.session_id, store.read_meta())
        return store, load_session(store.path)
    store = SessionDir.create(results_root, new_session_id(), db)
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
    host: dict | None = None,
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
        sampler = Sampler() if engine.samples_host else contextlib.nullcontext()
        with sampler:
            outcome: RunOutcome = engine.run(
                spec,
                store.session_id,
                store.log_path(spec),
                lambda line: listener(RunOutput(spec, line)),
            )
        if cancelled.is_set():
            return  # stopped by the interrupt: not a measurement, so it stays missing
        utilization = sampler.result() if isinstance(sampler, Sampler) else None
        result = make_result(spec, outcome, utilization, host)
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


def _tail(log_path: Path) -> ParsedOutput:
    with log_path.open(encoding="utf-8", errors="replace") as log:
        return parse_output(log)


def run_verify(
    plan: Sequence[RunSpec], engine: Engine, store: SessionDir, listener: Listener
) -> list[dict]:
    """One diagnostic run per (image, profile) with oneDNN's verbose log on, read back streaming
    (the log can reach hundreds of MB); the records go into the session's meta."""
    firsts = {}
    for spec in plan:
        firsts.setdefault(spec.key, spec)
    records = []
    for n, spec in enumerate(firsts.values(), 1):
        diag = diagnostic_spec(spec, index=VERIFY_INDEX + n)
        log_path = store.path / f"verify-{n:02d}-{slug(spec.key)}.log"
        listener(RunStarted(diag, len(firsts)))
        outcome = engine.run(
            diag, store.session_id, log_path, lambda line, d=diag: listener(RunOutput(d, line))
        )
        with log_path.open(encoding="utf-8", errors="replace") as log:
            summary = parse_verbose(log)
        record = verify_record(diag, summary, str(log_path))
        status, error = judge(diag, outcome, _tail(log_path))
        if status is not Status.ok:  # a failed diagnostic run proves nothing either way
            record["warnings"] = [f"diagnostic run {status.value}: {error}"]
        records.append(record)
        listener(RunFinished(diag, make_result(diag, outcome)))
    meta = store.read_meta()
    meta["verify"] = records
    store.write_meta(meta)
    return records
