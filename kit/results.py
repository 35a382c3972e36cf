"""Results: one frozen record per run, and the session folder they are written to as they arrive."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.engine import RunOutcome
from kit.errors import KitError, UsageError
from kit.flops import flop_per_image
from kit.parse import ParsedOutput, parse_output
from kit.placement import parse_numactl_show, placement_problems
from kit.spec import RunSpec
from kit.store import ResultsDB
from kit.utilization import Utilization, mean_busy

SCHEMA_VERSION = 1
DB_NAME = "kit.db"  # the results database, beside the session folders
MIN_FREE_BYTES = 64 * 2**20


class Status(StrEnum):
    ok = "ok"
    invalid = "INVALID"  # it ran, but not where or how it asked to: the number is not the cell's
    failed = "failed"
    timed_out = "timed out"


@dataclass(frozen=True)
class RunResult:
    index: int
    image: str
    image_ref: str
    profile: str
    cpus: str
    numactl: str
    command: tuple[str, ...]
    env: dict[str, str]
    status: Status
    images_per_sec: float | None
    started: str
    ended: str
    exit_code: int | None
    log_path: str
    image_id: str | None = None
    error: str | None = None
    steps: tuple[dict, ...] = ()
    provenance: dict | None = field(default=None)
    effective_cpus: str = ""
    nodes: str = ""
    mems: str | None = None
    cell: int = 1
    instance: int = 1
    instances: int = 1
    repeat: int = 0
    utilization: dict | None = None  # per-CPU busy % over time; None when not sampled
    host: dict | None = None
    workload: dict | None = None  # model and sizes, for the work per image
    engine: str = "docker"
    process_s: float | None = None  # the workload process's lifetime, as its engine saw it

    @property
    def key(self) -> str:
        return f"{self.image}:{self.profile}"

    @property
    def ok(self) -> bool:
        return self.status is Status.ok

    @property
    def tf_version(self) -> str | None:
        return (self.provenance or {}).get("tf_version")

    def busy(self) -> tuple[float | None, float | None]:
        """Mean busy % of the run's CPUs and of the host's other CPUs (None: not sampled)."""
        if not self.utilization:
            return None, None
        util = Utilization.from_json(self.utilization)
        mine = set(parse_cpu_list(self.effective_cpus or self.cpus))
        others = [c for c in range(len(util.busy)) if c not in mine]
        return mean_busy(util, sorted(mine)), mean_busy(util, others)

    @property
    def flop_per_image(self) -> float | None:
        w = self.workload or {}
        return flop_per_image(w.get("model", ""), None, bool(w.get("forward_only")))

    @property
    def memory_policy(self) -> str:
        """The memory policy the process really had, from ``numactl --show`` inside."""
        text = (self.provenance or {}).get("numactl_show")
        if not isinstance(text, str) or not text.strip():
            return "?"
        shown = parse_numactl_show(text)
        policy = shown.get("policy", "?")
        nodes = {
            "interleave": shown.get("interleavemask"),
            "bind": shown.get("membind"),
            "preferred": shown.get("preferred node"),
        }.get(policy)
        return f"{policy} {nodes.replace(' ', ',')}" if nodes else policy

    @property
    def threads(self) -> str:
        """Threads the run really used, as read inside the container: inter/intra and OpenMP."""
        prov = self.provenance or {}
        threads = prov.get("threads") or {}
        text = f"{threads.get('inter_op', '?')}/{threads.get('intra_op', '?')}" if threads else "?"
        omp = (prov.get("env") or {}).get("OMP_NUM_THREADS")
        return f"{text} omp={omp}" if omp else text

    def to_json(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["schema"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunResult:
        data = {k: v for k, v in data.items() if k != "schema"}
        data["status"] = Status(data["status"])
        data["command"] = tuple(data["command"])
        data["steps"] = tuple(data.get("steps", ()))
        return cls(**data)


NUMACTL_REFUSED = "Operation not permitted"


def judge(spec: RunSpec, outcome: RunOutcome, parsed: ParsedOutput) -> tuple[Status, str | None]:
    """A run's status and, when it is not ok, why (with the output's last lines)."""
    tail = parsed.tail_text()
    numa = spec.profile.numa
    if (
        outcome.exit_code not in (0, None)
        and numa.needs_sys_nice
        and parsed.provenance is None
        and any(NUMACTL_REFUSED in line for line in parsed.tail)
    ):
        return Status.invalid, (
            f"numactl could not apply {numa.summary()} ({tail}); the container lacks "
            "CAP_SYS_NICE, which Docker's seccomp profile requires for memory policies: "
            "let the engine grant --cap-add SYS_NICE (kit asks for it)"
        )
    if outcome.timed_out:
        return (
            Status.timed_out,
            f"killed after the {spec.timeout_s:g}s timeout; output ended: {tail}",
        )
    if outcome.error:
        return Status.failed, f"{outcome.error}; output ended: {tail}"
    if outcome.oom_killed:
        return Status.failed, f"out of memory (container OOM-killed); output ended: {tail}"
    if outcome.exit_code != 0:
        return Status.failed, f"exit status {outcome.exit_code}; output ended: {tail}"
    if parsed.images_per_sec is None or parsed.images_per_sec <= 0:
        return Status.failed, f"no throughput in the output; it ended: {tail}"
    problems = placement_problems(spec.requested_placement(), parsed.provenance)
    if problems:
        return Status.invalid, "placement differs from the request: " + "; ".join(problems)
    return Status.ok, None


def make_result(
    spec: RunSpec,
    outcome: RunOutcome,
    utilization: Utilization | None = None,
    host: dict | None = None,
) -> RunResult:
    """Parse the run's log (one streaming pass) and judge it."""
    try:
        with outcome.log_path.open(encoding="utf-8", errors="replace") as log:
            parsed = parse_output(log)
    except FileNotFoundError:
        parsed = parse_output([])
    status, error = judge(spec, outcome, parsed)
    return RunResult(
        index=spec.index,
        image=spec.image.label,
        image_ref=spec.image.reference,
        profile=spec.profile.name,
        cpus=spec.cpu_list,
        numactl=spec.profile.numa.summary(),
        command=spec.command(),
        env=dict(spec.environment()),
        status=status,
        # An INVALID run keeps its number (shown, never used as a cell's or a baseline's).
        images_per_sec=parsed.images_per_sec if status in (Status.ok, Status.invalid) else None,
        started=outcome.started.isoformat(),
        ended=outcome.ended.isoformat(),
        exit_code=outcome.exit_code,
        log_path=str(outcome.log_path),
        image_id=outcome.image_id,
        error=error,
        steps=tuple(asdict(s) for s in parsed.steps),
        provenance=parsed.provenance,
        effective_cpus=format_cpu_list(spec.effective_cpus or spec.cpus),
        nodes=format_cpu_list(spec.nodes),
        mems=spec.mems_list,
        cell=spec.cell,
        instance=spec.instance,
        instances=spec.instances,
        repeat=spec.repeat,
        utilization=utilization.to_json() if utilization is not None else None,
        host=host,
        engine=spec.engine,
        process_s=outcome.process_s,
        workload={
            "model": spec.workload.model.value,
            "batch_size": spec.workload.batch_size,
            "num_batches": spec.workload.num_batches,
            "num_warmup_batches": spec.workload.num_warmup_batches,
            "data_format": spec.workload.data_format.value,
            "forward_only": spec.workload.forward_only,
            "workload": spec.workload.workload.value,
        },
    )


def new_session_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


class SessionDir:
    """``results/<UTC timestamp>/``: a log and a JSON record per run, written as each finishes."""

    def __init__(self, path: Path, db: ResultsDB | None = None) -> None:
        self.path = path
        self.session_id = path.name
        self.db = db

    @classmethod
    def create(cls, root: Path, session_id: str, db: ResultsDB | None = None) -> SessionDir:
        check_writable(root)
        for attempt in range(1, 100):
            name = session_id if attempt == 1 else f"{session_id}-{attempt}"
            try:
                (root / name).mkdir()
            except FileExistsError:
                continue
            return cls(root / name, db)
        raise KitError(f"cannot create a session folder under {root}")

    @classmethod
    def open(cls, root: Path, session: str, db: ResultsDB | None = None) -> SessionDir:
        """An existing session, by id (under ``root``) or by path."""
        path = Path(session) if Path(session).is_dir() else root / session
        if not (path / "session.json").is_file():
            raise UsageError(
                f"no kit session at {path}", f"name a folder under {root} (see its session.json)"
            )
        check_writable(path)
        return cls(path, db)

    def read_meta(self) -> dict:
        return json.loads((self.path / "session.json").read_text(encoding="utf-8"))

    def log_path(self, spec: RunSpec) -> Path:
        return self.path / f"{spec.index:02d}-{slug(spec.key)}.log"

    def write_meta(self, meta: dict) -> None:
        _write_atomic(self.path / "session.json", json.dumps(meta, indent=2, sort_keys=True))
        if self.db is not None:
            self.db.add_session(self.session_id, meta)

    def record(self, result: RunResult) -> None:
        """Persist one run the moment it exists: its JSON file, the session's line log and the
        results database (one transaction)."""
        record = result.to_json()
        stem = Path(result.log_path).stem
        _write_atomic(self.path / f"{stem}.json", json.dumps(record, indent=2))
        with (self.path / "results.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if self.db is not None:
            self.db.add_run(self.session_id, record)

    def write_summary(self, markdown: str) -> None:
        _write_atomic(self.path / "summary.md", markdown)


def load_session(path: Path) -> list[RunResult]:
    """The runs a session recorded (none yet is an empty list). A line cut short by a crash
    mid-write is skipped: every complete line is a whole run."""
    try:
        lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KitError(f"cannot read results in {path}: {exc.strerror}") from None
    results = []
    for line in lines:
        try:
            results.append(RunResult.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return results


def check_writable(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"results path {root} is a file", "pass a directory to --results")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create results directory {root}: {exc.strerror}",
            "pass a writable directory to --results",
        ) from None
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise UsageError(
            f"results directory {root} has only {free // 2**20} MB free; logs and records "
            "could not be kept",
            f"free some space or pass another directory to --results (kit wants "
            f"{MIN_FREE_BYTES // 2**20} MB)",
        )
    probe = root / f".kit-write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as out:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise UsageError(
            f"results directory {root} is not writable: {exc.strerror}",
            "pass a writable directory to --results",
        ) from None
    finally:
        probe.unlink(missing_ok=True)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
