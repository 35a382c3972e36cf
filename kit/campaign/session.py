"""A session: run a plan through an engine, persisting every result the moment it exists."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.engines.base import Runner
from kit.errors import HostBusy, UsageError
from kit.host.sampler import Sampler
from kit.judging.judge import REFUSED, make_result
from kit.judging.onednn import OneDnnSummary, VerboseAccumulator
from kit.judging.parse import ParsedOutput, parse_output
from kit.judging.verify import diagnostic_spec, verify_record
from kit.judging.zendnn import ZenDnnSummary, split_zendnn
from kit.model.results import RunOutcome, RunResult, Status
from kit.model.spec import RunSpec
from kit.reporting.formats import Format
from kit.reporting.table import render
from kit.store.database import ResultsDB
from kit.store.folder import SessionDir, new_session_id, slug


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
    engine: Runner,
    results_root: Path,
    resume: str | None = None,
    meta: dict | None = None,
    db: ResultsDB | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> tuple[SessionDir, list[RunResult]]:
    """A new session folder, or the one being resumed with the runs it already has."""
    if resume is not None:
        folder = SessionDir.open(results_root, resume, db)
        check_resumable(folder, plan)
        if db is not None:
            db.add_session(folder.session_id, folder.read_meta())
        runs = recorded_runs(folder, db, say)
        lost = [r for r in runs if r.status is Status.lost]
        if lost:
            say(
                f"{len(lost)} run(s) their engine lost run again (run {lost[0].index}: "
                f"{lost[0].cause})"
            )
        return folder, [r for r in runs if r.status is not Status.lost]
    folder = SessionDir.create(results_root, new_session_id(), db)
    folder.write_meta(
        {
            "session": folder.session_id,
            "kit_version": __version__,
            "engine": engine.name,
            "started": datetime.now(UTC).isoformat(),
            "plan": plan_record(plan),
            "workload": plan[0].workload.describe() if plan else None,
            **(meta or {}),
        }
    )
    return folder, []


def check_resumable(folder: SessionDir, plan: Sequence[RunSpec], by_kind: bool = False) -> None:
    """A resumed session must be the same plan: UsageError saying so otherwise. ``by_kind``:
    the plan names engines by kind (checked before they answer), so engines are not compared."""
    recorded = folder.read_meta().get("plan")
    if by_kind and isinstance(recorded, list):
        recorded = [{**r, "engine": None} for r in recorded if isinstance(r, dict)]
    planned = [{**r, "engine": None} for r in plan_record(plan)] if by_kind else plan_record(plan)
    if recorded != planned:
        raise UsageError(
            f"session {folder.session_id} was a different plan (images, profiles, CPUs, "
            "sizes or settings differ)",
            "resume with exactly the command that started it",
        )


def recorded_runs(
    folder: SessionDir, db: ResultsDB | None, say: Callable[[str], None]
) -> list[RunResult]:
    """Every run the session already has: the database's (the source of truth) and the
    folder's. Where they disagree the folder is repaired from the database (and a run only the
    folder kept is added to the database), and that is said: nothing finished runs again."""
    on_disk, damaged = folder.read_records()
    known = db.has_session(folder.session_id) if db is not None else False
    in_db = [RunResult.from_json(r) for r in db.runs(folder.session_id)] if known else []
    merged = {r.index: r for r in on_disk} | {r.index: r for r in in_db}
    stored = {r.index for r in in_db}
    only_folder = [r for r in on_disk if r.index not in stored]
    if db is not None:
        for run in only_folder:
            db.add_run(folder.session_id, run.to_json())
    missing = sorted(set(merged) - {r.index for r in on_disk})
    if damaged or missing:
        folder.rewrite_records(list(merged.values()))
        say(
            f"repaired {folder.path / 'results.jsonl'} from the results database: "
            f"{len(merged)} run(s) kept, {damaged} damaged line(s) dropped, {len(missing)} "
            "run(s) restored"
        )
    if only_folder and db is not None:
        say(f"added {len(only_folder)} run(s) the results database lacked from {folder.path}")
    return sorted(merged.values(), key=lambda r: r.index)


def run_session(
    plan: Sequence[RunSpec],
    engine: Runner,
    folder: SessionDir,
    listener: Listener = lambda event: None,
    baseline: str | None = None,
    previous: Sequence[RunResult] = (),
    host_records: Mapping[str, dict] | None = None,
    machine_of: Mapping[str, str] | None = None,
    keep_disturbed: bool = False,
) -> list[RunResult]:
    """Run every spec not already in ``previous``. A failed run is recorded and the session goes
    on; each result is on disk before the next run starts. ``machine_of`` maps an engine to the
    machine it runs on: one machine's runs go one after another, as its CPUs are pinned, and
    the machines run at once. ``host_records`` holds each engine's host record for provenance. On an
    interrupt every engine stops what it is running, and the interrupt goes on up."""
    progress = _InProgress(
        len(plan), engine, folder, listener, baseline, previous, host_records or {}, keep_disturbed
    )
    done = {r.index for r in previous}
    by_machine: dict[str, list[RunSpec]] = {}
    for spec in plan:
        if spec.index not in done:
            by_machine.setdefault((machine_of or {}).get(spec.engine, ""), []).append(spec)
    jobs = [lambda specs=specs: progress.run_machine(specs) for specs in by_machine.values()]
    engine.begin(
        [s for specs in by_machine.values() for s in specs], folder.session_id, folder.path
    )
    _all_at_once(jobs, "kit-machine", progress.stop)
    refused = [r for r in progress.results if r.error and r.error.startswith(REFUSED)]
    if refused:  # every run of the model would say the same
        raise UsageError(f"run {refused[0].index} ({refused[0].key}): {refused[0].error}",
                         f"its log and record are in {folder.path}")  # fmt: skip
    if progress.busy:
        raise HostBusy(busy_message(progress.busy, folder.path),
                       f"close that work and finish it with the same command plus --resume "
                       f"{folder.session_id} (or --wait-quiet SECONDS first; --keep-disturbed "
                       "counts such runs)")  # fmt: skip
    return progress.results


STOP_AFTER_DISTURBED = 3  # runs in a row that other work disturbed: the host is busy, not noisy


def disturbed_streak(results: Sequence[RunResult]) -> list[RunResult]:
    """The last runs to end, as long as every one of them was disturbed."""
    streak: list[RunResult] = []
    for r in sorted(results, key=lambda r: r.ended, reverse=True):
        if r.status is not Status.disturbed:
            break
        streak.append(r)
    return streak


def busy_message(streak: Sequence[RunResult], folder: Path) -> str:
    shares = sorted(r.disturbance for r in streak if r.disturbance is not None)
    took = " to ".join(dict.fromkeys(f"{s:.0%}" for s in (shares[0], shares[-1]))) if shares else (
        "a share")  # fmt: skip
    last = streak[0].utilization
    found = last.consumers if last is not None else ()
    who = ", ".join(c.label for c in found[:3]) or "no process kit could see: another VM's?"
    return (f"stopped after {len(streak)} runs in a row were disturbed: other work took {took} "
            f"of their CPUs (the busiest: {who}); every run that ended is in {folder}")  # fmt: skip


class _InProgress:
    """A session's runs in progress: each machine's cells in turn, each result kept as it comes."""

    def __init__(self, total, engine, folder, listener, baseline, previous, records, keep) -> None:
        self.total, self.engine, self.folder, self.listener = total, engine, folder, listener
        self.baseline, self.host_records = baseline, records
        self.results: list[RunResult] = sorted(previous, key=lambda r: r.index)
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.keep_disturbed = keep  # --keep-disturbed: a disturbed run counts as ok
        self.busy: list[RunResult] = []  # the disturbed runs in a row that stopped the session

    def stop(self) -> None:
        self.cancelled.set()
        self.engine.cancel()

    def run_machine(self, specs: Sequence[RunSpec]) -> None:
        for together in _together(specs):
            if self.cancelled.is_set():
                return
            # A cell's instances run at once, each on its own CPUs: that is the measurement.
            jobs = [lambda spec=spec: self.run_one(spec) for spec in together]
            _all_at_once(jobs, "kit-run", self.stop)

    def run_one(self, spec: RunSpec) -> None:
        self.listener(RunStarted(spec, self.total))
        sampler = Sampler() if self.engine.samples_host else contextlib.nullcontext()
        log_path = self.folder.log_path(spec)
        with sampler:
            outcome: RunOutcome = self.engine.run(
                spec, self.folder.session_id, log_path,
                lambda line: self.listener(RunOutput(spec, line)),
            )  # fmt: skip
        if self.cancelled.is_set():
            return  # stopped by the interrupt: not a measurement, so it stays missing
        utilization = sampler.result() if isinstance(sampler, Sampler) else None
        host = self.host_records.get(spec.engine)
        rerun = self.engine.rerun_line(spec, self.folder.session_id)
        result = make_result(
            spec, outcome, utilization, host, rerun, keep_disturbed=self.keep_disturbed
        )
        with self.lock:
            self.folder.record(result)
            self.results.append(result)
            self.results.sort(key=lambda r: r.index)
            self.folder.write_summary(render(self.results, Format.markdown, self.baseline) + "\n")
            streak = disturbed_streak(self.results)
        self.listener(RunFinished(spec, result))
        if len(streak) >= STOP_AFTER_DISTURBED and not self.busy:
            self.busy = streak
            self.stop()
        if result.error and result.error.startswith(REFUSED):  # every run would say the same
            self.stop()


def _all_at_once(jobs: Sequence[Callable[[], None]], name: str, stop: Callable[[], None]) -> None:
    """Run the jobs concurrently, each in a worker thread, while this thread only waits: an
    interrupt then always lands here, never inside a library's streaming code. If a job fails
    or this thread is interrupted, ``stop`` is called until every job has returned (a job about
    to start a run still finds it stopped), then the error goes on up."""
    if not jobs:
        return  # a resumed session with nothing left to run
    with ThreadPoolExecutor(len(jobs), thread_name_prefix=name) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            while not all(f.done() for f in futures):
                stop()
                wait(futures, timeout=0.5)
            raise


def _together(plan: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Specs that run together: one repeat of one cell (its instances, or a single run)."""
    grouped: dict[tuple[int, int], list[RunSpec]] = {}
    for spec in plan:
        grouped.setdefault((spec.repeat, spec.cell), []).append(spec)
    return list(grouped.values())


def _read_verify_log(log_path: Path) -> tuple[OneDnnSummary, ZenDnnSummary, ParsedOutput]:
    """One pass over a verbose log (it can reach hundreds of MB): oneDNN's lines to the verbose
    parser, ZenDNN's to its counter, the few others to the output parser."""
    accumulator = VerboseAccumulator()
    others: list[str] = []
    with log_path.open(encoding="utf-8", errors="replace") as log:
        accumulator.feed_all(log, others)
    zen, others = split_zendnn(others)
    return accumulator.summary(), zen, parse_output(others)


def run_verify(
    plan: Sequence[RunSpec], engine: Runner, folder: SessionDir, listener: Listener
) -> list[dict]:
    """One diagnostic run per (image, profile) with oneDNN's verbose log on, read back streaming
    (the log can reach hundreds of MB); the records go into the session's meta."""
    firsts = {}
    for spec in plan:
        firsts.setdefault((spec.engine, spec.key), spec)  # each engine's own proof
    records = []
    for n, spec in enumerate(firsts.values(), 1):
        diag = diagnostic_spec(spec, index=VERIFY_INDEX + n)
        log_path = folder.path / f"verify-{n:02d}-{slug(spec.key)}-{slug(spec.engine)}.log"
        listener(RunStarted(diag, len(firsts)))
        outcome = engine.run(
            diag, folder.session_id, log_path, lambda line, d=diag: listener(RunOutput(d, line))
        )
        summary, zen, parsed = _read_verify_log(log_path)
        record = verify_record(diag, summary, str(log_path), zen)
        result = make_result(diag, outcome, parsed=parsed)
        if result.status is not Status.ok:  # a failed diagnostic run proves nothing either way
            record["warnings"] = [f"diagnostic run {result.status.value}: {result.error}"]
        records.append(record)
        listener(RunFinished(diag, result))
    meta = folder.read_meta()
    meta["verify"] = records
    folder.write_meta(meta)
    return records
