"""Slurm: a session's runs on whole nodes a scheduler allocates.

kit does not reach the nodes itself. A short probe step (``srun``, one task per node) reads each
node's topology and checks that the session folder is the same folder there (the results must
be on a filesystem the nodes share). Each node is then an engine of the session, placed on its
own topology. When a batch of runs starts, one job per node is submitted (``sbatch
--exclusive``, that node, all its CPUs); the job runs ``kit _worker`` on the node, which runs its
share through the node's own engine (docker, podman or local; ``kit.engines.slurm_worker``) and
writes each run's log and outcome into the session folder as it finishes. Each run starts on
the node when this host says its turn has come (a ``go`` file), so the session's order holds,
and runs of other engines on the same machine take turns with it. Here each run waits for its
outcome, streaming its log as it grows, and is judged as any other run. A job that ends early
fails its missing runs with Slurm's reason; Ctrl-C cancels the jobs (``scancel``).

The command lines and job scripts are pure functions of the plan (``sbatch_argv``,
``job_script``), as are the parsers of ``squeue`` and ``scontrol`` output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from kit.engines.base import LineSink
from kit.errors import EngineUnavailable, ImageNotFound, KitError, UsageError
from kit.host.facts import PROBE_PREFIX, HostFacts, facts_from_probe
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec, spec_from_json, spec_json
from kit.store.folder import SessionDir

JOB_PREFIX = "kit-"
POLL_S = 0.5
STATE_EVERY_S = 2.0
CANCEL_WAIT_S = 90.0  # Slurm's KillWait (30 s by default) and then some
# Job states in which the job may still run its share (squeue's %T names).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
          "RESIZING", "SIGNALING", "STAGE_OUT"}  # fmt: skip
_TIME = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+(:\d{2}(:\d{2})?)?)$")
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_WORD = re.compile(r"^[A-Za-z0-9_.,:|&()\[\]*-]+$")


class NodeEngine(StrEnum):
    docker = "docker"
    podman = "podman"
    local = "local"


@dataclass(frozen=True)
class SlurmOptions:
    """Where a session's jobs go: ``--partition``, ``--nodelist`` or ``--nodes``,
    ``--constraint``, ``--account``, ``--time``, ``--slurm-arg``, and the engine on the nodes."""

    partition: str | None = None
    nodelist: tuple[str, ...] = ()
    nodes: int | None = None
    constraint: str | None = None
    account: str | None = None
    time: str | None = None
    extra: tuple[str, ...] = ()
    node_engine: NodeEngine = NodeEngine.docker

    def __post_init__(self) -> None:
        for node in self.nodelist:
            if not _NODE.match(node):
                raise UsageError(f"--nodelist {node!r} is not a node name", "e.g. --nodelist n1,n2")
        if self.nodes is not None and not 1 <= self.nodes <= 4096:
            raise UsageError(f"--slurm-nodes must be between 1 and 4096, got {self.nodes}")
        if self.nodes is not None and self.nodelist and self.nodes != len(self.nodelist):
            raise UsageError(
                f"--slurm-nodes {self.nodes} and --nodelist of {len(self.nodelist)} node(s) "
                "disagree",
                "give one of them",
            )
        if self.time is not None and not _TIME.match(self.time):
            raise UsageError(
                f"--time {self.time!r} is not a Slurm time limit",
                "write minutes, MM:SS, HH:MM:SS or D-HH:MM:SS",
            )
        for name in ("partition", "account", "constraint"):
            value = getattr(self, name)
            if value is not None and not _WORD.match(value):
                raise UsageError(f"--{name} {value!r} holds characters Slurm does not take here")
        for arg in self.extra:
            if not arg.startswith("--"):
                raise UsageError(
                    f"--slurm-arg {arg!r} is not a long sbatch option",
                    "give it as --slurm-arg=--qos=high (one option each)",
                )

    @property
    def count(self) -> int:
        return len(self.nodelist) or self.nodes or 1

    def common(self) -> list[str]:
        """The options every step and job of the session takes."""
        args = [f"--{name}={value}" for name in ("partition", "account", "time", "constraint")
                if (value := getattr(self, name)) is not None]  # fmt: skip
        return [*args, *self.extra]


# The probe: what the node is (kit's probe script), and whether it sees the session's folder.
PROBE_CHECK = """
import json, os, sys
folder, token = sys.argv[1], sys.argv[2]
seen = None
try:
    with open(os.path.join(folder, ".kit-shared"), encoding="utf-8") as f:
        seen = f.read().strip() == token
    probe = os.path.join(folder, ".kit-write-" + os.uname().nodename + "-" + str(os.getpid()))
    with open(probe, "w") as f:
        f.write("x")
    os.unlink(probe)
    writable = None
except OSError as exc:
    writable = f"{exc.strerror} ({exc.filename})"
facts = collect()
facts["node"] = os.environ.get("SLURMD_NODENAME") or os.uname().nodename.split(".")[0]
facts["shared"] = seen
facts["unwritable"] = writable
facts["images"] = images(sys.argv[3])
print("kit-probe: " + json.dumps(facts), flush=True)
"""

PROBE_IMAGES = """
import subprocess
def images(tool):
    if tool == "local":
        return None
    try:
        out = subprocess.run([tool, "images", "--no-trunc", "--format",
                              "{{.Repository}}:{{.Tag}} {{.ID}}"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["no answer"])[-1]}
    found = {}
    for line in out.stdout.splitlines():
        ref, _, image_id = line.partition(" ")
        if image_id and not image_id.startswith("sha256:"):
            image_id = "sha256:" + image_id
        found[ref.removeprefix("localhost/")] = image_id
    return found
"""


def probe_code() -> str:
    from importlib import resources

    script = resources.files("kit.host").joinpath("probe_script.py").read_text(encoding="utf-8")
    script = script.split('if __name__ == "__main__":')[0]
    return script + PROBE_IMAGES + PROBE_CHECK


def probe_argv(options: SlurmOptions, folder: Path, token: str) -> list[str]:
    """One task on each node (exclusive), printing the node's facts."""
    where = [f"--nodelist={','.join(options.nodelist)}"] if options.nodelist else []
    return [
        "srun", f"--nodes={options.count}", *where, "--ntasks-per-node=1", "--exclusive",
        f"--job-name={JOB_PREFIX}probe", *options.common(), "python3", "-c", probe_code(),
        str(folder), token, options.node_engine.value,
    ]  # fmt: skip


@dataclass(frozen=True)
class NodeProbe:
    node: str
    facts: HostFacts
    images: Mapping[str, str] | None  # reference -> id on the node's engine (None: local)
    images_error: str | None


def parse_probe(text: str, folder: Path) -> list[NodeProbe]:
    """Each node's facts from the probe step's output; UsageError when a node cannot write
    the session's folder or does not share it."""
    found = []
    for line in text.splitlines():
        if not line.startswith(PROBE_PREFIX):
            continue
        raw = json.loads(line[len(PROBE_PREFIX) :])
        node = str(raw["node"])
        if raw.get("unwritable"):
            raise UsageError(
                f"node {node} cannot write the results folder {folder}: {raw['unwritable']}",
                "put --results on a filesystem every node shares and can write",
            )
        if not raw.get("shared"):
            raise UsageError(
                f"node {node} does not see this host's results folder {folder}: it is not on "
                "a filesystem the nodes share",
                "put --results on a shared filesystem (e.g. NFS, Lustre, your home)",
            )
        images = raw.get("images")
        error = images.get("error") if isinstance(images, dict) else None
        facts = facts_from_probe(raw, node)
        found.append(NodeProbe(node, facts, None if error else images, error))
    return found


def sbatch_argv(options: SlurmOptions, node: str, cpus: int, folder: Path, script: Path,
                session_id: str) -> list[str]:  # fmt: skip
    """The job of one node's share: that node, whole and alone, all its CPUs."""
    return [
        "sbatch", "--parsable", f"--job-name={JOB_PREFIX}{session_id}-{node}",
        f"--nodelist={node}", "--nodes=1", "--ntasks=1", f"--cpus-per-task={cpus}",
        "--exclusive", f"--output={folder / 'job-%j.out'}", f"--chdir={folder}",
        *options.common(), str(script),
    ]  # fmt: skip


def job_script(python: str, share: Path, session_id: str, node: str, indices: Sequence[int]) -> str:
    """The script a node's job runs: kit's worker on its share of the plan."""
    runs = ", ".join(str(i) for i in indices)
    return (
        "#!/bin/sh\n"
        f"# kit session {session_id}: node {node}, runs {runs}\n"
        f"exec {shlex.quote(python)} -m kit _worker {shlex.quote(str(share))}\n"
    )


def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """``squeue -h -o '%i|%T|%r'`` -> job id -> (state, reason)."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0]:
            out[parts[0]] = (parts[1], parts[2])
    return out


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o ID`` -> its fields (a value runs to the next ``Key=``)."""
    fields: dict[str, str] = {}
    for match in re.finditer(r"(\w[\w/:]*)=(.*?)(?=\s+\w[\w/:]*=|\s*$)", text.strip()):
        fields.setdefault(match.group(1), match.group(2))
    return fields


def ended_reason(fields: Mapping[str, str]) -> str:
    """Why a job is over, in Slurm's words (its state, reason and exit code)."""
    state = fields.get("JobState", "gone")
    reason = fields.get("Reason", "")
    code = fields.get("ExitCode", "")
    said = [state]
    if reason and reason != "None":
        said.append(f"reason {reason}")
    if code and code != "0:0":
        said.append(f"exit code {code}")
    return ", ".join(said)


def share_record(specs: Sequence[RunSpec], session_id: str, node: str, engine: NodeEngine,
                 host: Mapping) -> dict:  # fmt: skip
    return {
        "kit_share": 1,
        "session": session_id,
        "node": node,
        "node_engine": engine.value,
        "host": dict(host),
        "runs": [spec_json(s) for s in specs],
    }


def read_share(path: Path) -> tuple[dict, list[RunSpec]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kit_share") != 1:
        raise UsageError(f"{path} is not a kit job share", "it is written by --engine slurm")
    return data, [spec_from_json(s) for s in data["runs"]]


def outcome_json(outcome: RunOutcome) -> dict:
    return {
        "started": outcome.started.isoformat(), "ended": outcome.ended.isoformat(),
        "exit_code": outcome.exit_code, "log_path": str(outcome.log_path),
        "image_id": outcome.image_id, "timed_out": outcome.timed_out,
        "oom_killed": outcome.oom_killed, "error": outcome.error, "process_s": outcome.process_s,
    }  # fmt: skip


def outcome_from_json(data: Mapping, log_path: Path) -> RunOutcome:
    return RunOutcome(
        started=datetime.fromisoformat(data["started"]),
        ended=datetime.fromisoformat(data["ended"]), exit_code=data["exit_code"],
        log_path=log_path, image_id=data["image_id"],
        timed_out=data["timed_out"], oom_killed=data["oom_killed"], error=data["error"],
        process_s=data["process_s"],
    )  # fmt: skip


def outcome_path(folder: Path, spec: RunSpec) -> Path:
    return folder / f"{spec.index:04d}.outcome.json"


def go_path(folder: Path, spec: RunSpec) -> Path:
    """Written by the submitting host when the run's turn comes (its order, its lanes)."""
    return folder / f"{spec.index:04d}.go"


def node_log_path(folder: Path, spec: RunSpec) -> Path:
    """Where the node writes a run's log (as a session folder names it)."""
    return SessionDir(folder).log_path(spec)


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
    import secrets

    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    marker = folder / ".kit-shared"
    marker.write_text(token, encoding="utf-8")
    try:
        done = _slurm(probe_argv(options, folder, token), timeout=600)
    finally:
        marker.unlink(missing_ok=True)
    probes = parse_probe(done.stdout, folder) if done.returncode == 0 else []
    if done.returncode or len(probes) != options.count:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EngineUnavailable(
            f"the Slurm probe step failed (exit {done.returncode}): {said}",
            "check the partition, nodes and constraint with `sinfo`",
        )
    return probes


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
        script.write_text(job_script(sys.executable, share, session_id, self.name,
                                     [s.index for s in mine]), encoding="utf-8")  # fmt: skip
        script.chmod(0o755)
        cpus = len(self.probe.facts.topology.cpus)
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
        done, checked = outcome_path(share_dir, spec), 0.0
        while True:
            follower.poll()
            if done.is_file():
                follower.poll()
                return outcome_from_json(json.loads(done.read_text(encoding="utf-8")), log_path)
            if self.cancelled.is_set():
                return self._missing(spec, started, log_path, f"job {job} cancelled by kit")
            if time.monotonic() - checked > STATE_EVERY_S:
                checked = time.monotonic()
                reason = job_over(job)
                if reason is not None and not done.is_file():
                    follower.poll()
                    why = f"Slurm job {job} ended before this run finished: {reason}"
                    return self._missing(spec, started, log_path, why)
            time.sleep(POLL_S)

    @staticmethod
    def _missing(spec: RunSpec, started: datetime, log_path: Path, why: str) -> RunOutcome:
        if not log_path.exists():
            log_path.write_text("", encoding="utf-8")
        return RunOutcome(started, datetime.now(UTC), None, log_path, error=why)

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
    while any(job_over(j) is None for j in jobs):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def job_over(job: str) -> str | None:
    """None while the job may still run; else why it is over."""
    queued = parse_squeue(_slurm(["squeue", "-h", "-j", job, "-o", "%i|%T|%r"]).stdout)
    if job in queued and queued[job][0] in ACTIVE:
        return None
    shown = _slurm(["scontrol", "show", "job", "-o", job])
    fields = parse_scontrol(shown.stdout) if shown.returncode == 0 else {}
    if fields.get("JobState") in ACTIVE:
        return None
    return ended_reason(fields) if fields else "gone from the queue"


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
        if not data:
            return
        self.offset += len(data)
        with self.target.open("ab") as out:
            out.write(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self.on_line(line.decode("utf-8", "replace"))
