"""The Slurm engine: nodes probed, one exclusive job per node and batch, each run started when
its turn comes and followed to its outcome; Ctrl-C cancels the jobs."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.engines.base import ENGINE_NOTE, LineSink
from kit.engines.slurm.commands import (
    NodeProbe,
    check_nodes_up,
    ended_reason,
    job_script,
    parse_probe,
    parse_scontrol,
    parse_sinfo,
    parse_squeue,
    probe_argv,
    probe_failure,
    sbatch_argv,
    srun_line,
)
from kit.engines.slurm.options import (
    ACTIVE,
    CANCEL_WAIT_S,
    CONTROLLER_WAIT_S,
    JOB_PREFIX,
    POLL_S,
    STATE_EVERY_S,
    SlurmOptions,
)
from kit.engines.slurm.share import (
    go_path,
    node_log_path,
    outcome_from_json,
    outcome_path,
    share_record,
)
from kit.errors import EngineUnavailable, ImageNotFound, KitError
from kit.host.facts import HostFacts
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec


def _slurm(argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(argv), check=False, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise EngineUnavailable(
            f"{argv[0]} is not installed here",
            "run kit on a Slurm login node (or install slurm-client)",
        ) from None
    except subprocess.TimeoutExpired:
        raise EngineUnavailable(f"{argv[0]} did not answer within {timeout:g}s") from None


def probe_nodes(options: SlurmOptions, folder: Path) -> list[NodeProbe]:
    """Run the probe step; each node's facts (UsageError naming what is wrong)."""
    where = [f"--partition={options.partition}"] if options.partition else []
    shown = _slurm(["sinfo", "-h", "-N", "-o", "%N %T", *where])
    if shown.returncode:
        raise EngineUnavailable(f"sinfo failed: {shown.stderr.strip()[:200]}",
                                "check that Slurm's controller answers (`sinfo`)")  # fmt: skip
    check_nodes_up(parse_sinfo(shown.stdout), options)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    marker = folder / ".kit-shared"
    marker.write_text(token, encoding="utf-8")
    python = options.python(sys.executable)
    try:
        done = _slurm(probe_argv(options, folder, token, python), timeout=600)
    finally:
        marker.unlink(missing_ok=True)
    if done.returncode:
        raise probe_failure(done.stderr, done.returncode, python)
    probes = parse_probe(done.stdout, folder, python, __version__)
    if len(probes) != options.count:
        raise probe_failure(done.stderr, done.returncode, python)
    # In the nodes' order, not the order their answers came in: the plan (and so --resume) is
    # the same each time.
    return sorted(probes, key=lambda p: _natural(p.node))


def _natural(name: str) -> list[object]:
    """``n2`` before ``n10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class SlurmEngine:
    """One node of the cluster, as an engine: its runs go to the job its share was given."""

    samples_host = False

    images = None  # no images of its own to move

    def __init__(self, probe: NodeProbe, options: SlurmOptions) -> None:
        self.probe, self.options = probe, options
        self.name = probe.node
        self.jobs: dict[int, tuple[str, Path]] = {}  # run index -> (job id, share folder)
        self.waiting: dict[str, set[int]] = {}  # job id -> its runs not yet over here
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.submitted: list[str] = []

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        one = replace(self.options, nodelist=(self.name,), nodes=None)  # this node alone
        return srun_line(one, spec, session_id)

    def check(self) -> None:
        done = _slurm(["squeue", "-h", "-o", "%i", "-j", "0"])
        if done.returncode and "Invalid job id" not in done.stderr:
            raise EngineUnavailable(f"Slurm does not answer: {done.stderr.strip()[:200]}")

    def host_facts(self, image: str) -> HostFacts:
        return self.probe.facts

    def image_id(self, reference: str) -> str:
        if self.probe.images is None:
            if self.probe.images_error:
                raise ImageNotFound(
                    f"node {self.name}'s {self.options.node_engine.value} does not answer: "
                    f"{self.probe.images_error}",
                    "start the engine on the node, or pick another with --node-engine",
                )
            return f"venv:{reference}"
        found = self.probe.images.get(reference)
        if found is None:
            raise ImageNotFound(
                f"image {reference!r} is not on node {self.name}'s "
                f"{self.options.node_engine.value} engine",
                "load it there (`kit images load FILE` on the node) or build it there",
            )
        return found

    def begin(self, specs: Sequence[RunSpec], session_id: str, folder: Path) -> None:
        """Submit this node's share of the batch as one job."""
        mine = [s for s in specs if s.engine == self.name]
        if not mine:
            return
        # Absolute: the job starts on the node in slurmd's working directory, not this one.
        share_dir = folder.resolve() / "slurm" / self.name / f"batch-{mine[0].index:04d}"
        share_dir.mkdir(parents=True, exist_ok=True)
        share = share_dir / "share.json"
        record = share_record(mine, session_id, self.name, self.options.node_engine,
                              self.probe.facts.record)  # fmt: skip
        share.write_text(json.dumps(record, indent=2), encoding="utf-8")
        script = share_dir / "job.sh"
        python = self.options.python(sys.executable)
        text = job_script(python, share, session_id, self.name, [s.index for s in mine])
        script.write_text(text, encoding="utf-8")
        script.chmod(0o755)
        cpus = len(self.probe.facts.usable_cpus)  # a node confined to some CPUs has those
        done = _slurm(sbatch_argv(self.options, self.name, cpus, share_dir, script, session_id))
        if done.returncode:
            raise KitError(
                f"sbatch refused the job for node {self.name}: {done.stderr.strip()[:300]}",
                "check --partition, --account, --time and --slurm-arg",
            )
        job = done.stdout.strip().split(";")[0]
        with self.lock:
            self.submitted.append(job)
            self.waiting[job] = {s.index for s in mine}
            for s in mine:
                self.jobs[s.index] = (job, share_dir)

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        outcome = self._follow(spec, log_path, on_line)
        job = self.jobs[spec.index][0]
        with self.lock:
            self.waiting[job].discard(spec.index)
            last = not self.waiting[job]
        # The job's share is over: it ends by itself, and the session waits until it has.
        if last and not _wait_over([job], CANCEL_WAIT_S):
            _slurm(["scancel", job])
        return outcome

    def _follow(self, spec: RunSpec, log_path: Path, on_line: LineSink) -> RunOutcome:
        """The run's turn given to its job, its log streamed here, its outcome read."""
        job, share_dir = self.jobs[spec.index]
        started = datetime.now(UTC)
        go_path(share_dir, spec).write_text(started.isoformat(), encoding="utf-8")
        follower = _Follower(node_log_path(share_dir, spec), log_path, on_line)
        done, watch = outcome_path(share_dir, spec), _JobWatch(job, on_line)
        while True:
            follower.poll()
            if done.is_file():
                follower.poll()
                return outcome_from_json(json.loads(done.read_text(encoding="utf-8")), log_path)
            why = f"job {job} cancelled by kit" if self.cancelled.is_set() else watch.why_over()
            if why is not None and not done.is_file():
                follower.poll()
                return self._missing(spec, started, log_path, why)
            time.sleep(POLL_S)

    @staticmethod
    def _missing(spec: RunSpec, started: datetime, log_path: Path, why: str) -> RunOutcome:
        if not log_path.exists():
            log_path.write_text("", encoding="utf-8")
        return RunOutcome(started, datetime.now(UTC), None, log_path, error=why, lost=True)

    def cancel(self) -> None:
        """Cancel the session's jobs (once), and wait until Slurm has ended them."""
        with self.lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            jobs = list(self.submitted)
        if jobs:
            _slurm(["scancel", *jobs])
            _wait_over(jobs, CANCEL_WAIT_S)

    def remove_strays(self) -> int:
        return cancel_strays()

    def remove_orphans(self) -> list[str]:
        return []  # a job outlives its kit by design (kit follows it again); `kit clean --slurm`


def cancel_strays() -> int:
    """Cancel this user's kit jobs still queued or running (``kit clean --slurm``)."""
    done = _slurm(["squeue", "-h", "-u", str(os.getuid()), "-o", "%i|%j"])
    ids = [line.split("|")[0] for line in done.stdout.splitlines()
           if "|" in line and line.split("|", 1)[1].startswith(JOB_PREFIX)]  # fmt: skip
    if ids:
        _slurm(["scancel", *ids])
        _wait_over(ids, CANCEL_WAIT_S)
    return len(ids)


def _wait_over(jobs: Sequence[str], seconds: float) -> bool:
    """Wait until Slurm has ended every one of the jobs; False if one still runs after."""
    deadline = time.monotonic() + seconds
    while any(not job_state(j).over for j in jobs):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


@dataclass(frozen=True)
class JobState:
    over: bool  # the job will run nothing more
    reason: str = ""  # why it is over (Slurm's state, reason, exit code), or why not known
    answered: bool = True  # False: the controller did not answer, so nothing is known
    waiting: str = ""  # why it is pending (in the queue, or requeued), as squeue says


def job_state(job: str) -> JobState:
    """Where a job is, as Slurm's controller says; a requeued job is not over (it runs its
    share again, and the worker skips the runs already measured)."""
    try:
        queued = _slurm(["squeue", "-h", "-j", job, "-o", "%i|%T|%r"], timeout=30)
    except EngineUnavailable as exc:
        return JobState(False, str(exc), answered=False)
    if queued.returncode and "Invalid job id" not in queued.stderr:
        said = (queued.stderr.strip().splitlines() or ["no answer"])[-1]
        return JobState(False, said[:200], answered=False)
    found = parse_squeue(queued.stdout)
    if job in found and found[job][0] in ACTIVE:
        state, reason = found[job]
        return JobState(False, waiting=reason if state in ("PENDING", "REQUEUED") else "")
    shown = _slurm(["scontrol", "show", "job", "-o", job], timeout=30)
    fields = parse_scontrol(shown.stdout) if shown.returncode == 0 else {}
    if fields.get("JobState") in ACTIVE:
        return JobState(False)
    return JobState(True, ended_reason(fields) if fields else "gone from the queue")


class _JobWatch:
    """A job's state, asked of Slurm every few seconds while one of its runs is followed."""

    def __init__(self, job: str, on_line: LineSink) -> None:
        self.job, self.on_line = job, on_line
        self.checked, self.silent, self.waiting, self.said = 0.0, None, "", False

    def why_over(self) -> str | None:
        """Why the job will not finish the run (None while it may); what it waits for said."""
        if time.monotonic() - self.checked < STATE_EVERY_S:
            return None
        self.checked = time.monotonic()
        state = job_state(self.job)
        if not state.answered:  # the node goes on: its outcome arrives by the folder
            self.silent = self.silent or self.checked
            if self.checked - self.silent < CONTROLLER_WAIT_S:
                return None
            return (f"Slurm's controller has not answered for {CONTROLLER_WAIT_S:g}s "
                    f"({state.reason}); job {self.job} may still run: `kit clean --slurm` once "
                    "it answers, then --resume")  # fmt: skip
        self.silent = None
        # Said once it has waited two checks (a job just submitted is pending for a moment).
        if state.waiting and state.waiting == self.waiting and not self.said:
            why = "" if state.waiting == "None" else f" ({state.waiting})"
            self.on_line(f"{ENGINE_NOTE}Slurm job {self.job} is pending{why}; the run starts "
                         "when the job does")  # fmt: skip
            self.said = True
        self.said = self.said and bool(state.waiting)
        self.waiting = state.waiting
        if state.over:
            return f"Slurm job {self.job} ended before this run finished: {state.reason}"
        return None


class _Follower:
    """Copies a growing log (written on the node) into the session's log, line by line."""

    def __init__(self, source: Path, target: Path, on_line: LineSink) -> None:
        self.source, self.target, self.on_line = source, target, on_line
        self.offset, self.partial = 0, b""

    def poll(self) -> None:
        try:
            with self.source.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data and self.offset and self.source.stat().st_size < self.offset:
            self._restart()  # the node started the run again (its job was requeued)
            return
        if not data:
            return
        self.offset += len(data)
        with self.target.open("ab") as out:
            out.write(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self.on_line(line.decode("utf-8", "replace"))

    def _restart(self) -> None:
        """The log starts again: so does the session's copy (the record is the run that ends)."""
        self.offset, self.partial = 0, b""
        self.target.write_bytes(b"")
        self.on_line(f"{ENGINE_NOTE}the run started again on its node (its Slurm job was requeued)")
