"""The record of one run: frozen, serialised the same way to its JSON file and the database."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from kit.cpus import parse_cpu_list
from kit.model.flops import TRAINING_FACTOR, flop_per_image
from kit.model.footprint import Footprint
from kit.model.latency import Latency
from kit.model.numa import parse_numactl_show
from kit.model.utilization import Utilization, mean_busy
from kit.model.workload_record import WorkloadRecord
from kit.workload.steady import Trend, growing, trend

SCHEMA_VERSION = 2  # 2: `rerun` (the engine's own line) for `docker_run`
SLOW_STEP = 1.1  # a batch that grew memory is said when it took this much longer than the median


class Status(StrEnum):
    ok = "ok"
    invalid = "INVALID"  # it ran, but not where or how it asked to: the number is not the cell's
    failed = "failed"
    timed_out = "timed out"
    # It ran as asked, but other work took a share of its CPUs: out of verdicts, like INVALID.
    disturbed = "disturbed"
    # Its engine lost it before it ended (its node failed, its Slurm job ended): not a
    # measurement, so --resume runs it again.
    lost = "lost"


@dataclass(frozen=True)
class RunOutcome:
    """What the engine saw of one run; the log itself is in ``log_path``."""

    started: datetime
    ended: datetime
    exit_code: int | None
    log_path: Path
    image_id: str | None = None
    timed_out: bool = False
    oom_killed: bool = False
    error: str | None = None
    lost: bool = False  # the engine lost the run before it ended (``error`` says how)
    # How long the workload's process lived, as the engine measured it (the container's
    # StartedAt..FinishedAt): the rest of ``seconds`` is what kit and the engine cost.
    process_s: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


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
    utilization: Utilization | None = None  # per-CPU busy % over time; None when not sampled
    host: dict | None = None
    workload: WorkloadRecord | None = None  # model and sizes, for the work per image
    engine: str = "docker"
    process_s: float | None = None  # the workload process's lifetime, as its engine saw it
    rerun: str = ""  # the line that reruns it by hand, in its engine's form (docker, srun, ...)
    knobs: dict[str, str] = field(default_factory=dict)  # a sweep's knob values for the cell
    looks: int = 1  # adaptive repeats: the looks its interval is spread over (kit.judging.stats)
    latency_ms: Latency | None = None  # per-batch p50/p90/p99 and how many batches
    stands_for: tuple[str, ...] = ()  # profiles merged into this cell: they run the same here
    # The share of the run's CPUs' time other work took (busy less the workload's own CPU
    # time, over the sampled window); None where it is not measured.
    disturbance: float | None = None
    # kit's workload: the warmup it ran (mode, batches, seconds, settled, each batch's seconds)
    # and every timed batch's seconds, for the trend across them.
    warmup: dict | None = None
    step_seconds: tuple[float, ...] = ()
    step_faults: tuple[int, ...] = ()  # the pages each timed batch faulted in
    spread: tuple[str, ...] = ()  # --spread: the identical machines its cell was dealt over
    # The host's speed (kit_workload.speed, million loop iterations a second on the run's own
    # CPUs) just before and just after its work; None where the workload does not say.
    host_speed: tuple[float, float] | None = None
    # Where its memory (pages per NUMA node) and threads went, as its process read them at the
    # end of its timed batches (kit_workload.footprint); None where the workload does not say.
    footprint: Footprint | None = None

    def __post_init__(self) -> None:
        """A record that cannot be right is a bug in what made it: refused where it is made."""
        typed = ((self.status, Status), (self.utilization, Utilization | None),
                 (self.latency_ms, Latency | None), (self.footprint, Footprint | None),
                 (self.workload, WorkloadRecord | None))  # fmt: skip
        for value, kind in typed:
            if not isinstance(value, kind):
                raise TypeError(f"run {self.index}: {value!r} is not a {kind}")
        rate = self.images_per_sec
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"run {self.index}: a rate of {rate} is no measurement")
        if self.repeat < 0 or not 1 <= self.instance <= self.instances:
            raise ValueError(f"run {self.index}: repeat {self.repeat}, instance "
                             f"{self.instance} of {self.instances}")  # fmt: skip

    def grew(self) -> list[int]:
        """The timed batches (from 0) that grew the process's memory, against its first warmup
        step's page faults above the level every later step faults anew (kit.workload.steady)."""
        warmup = [f for f in (self.warmup or {}).get("minor_faults") or [] if isinstance(f, int)]
        first = warmup[0] if warmup else 0
        level = min([*warmup[1:], *self.step_faults], default=0)
        return growing(self.step_faults, first, level)

    @property
    def trend(self) -> Trend | None:
        """How images/sec moved across the timed batches (None: too few, or not said)."""
        return trend(self.step_seconds)

    def unsettled(self) -> str | None:
        """Why its timed batches measured no steady state: their speed still moved, or a batch
        grew the process's memory and took noticeably longer than the others (None: settled)."""
        moved = self.trend
        if moved is not None and moved.significant:
            return moved.describe()
        times = self.step_seconds
        median = statistics.median(times) if times else 0.0
        slow = [i for i in self.grew() if i < len(times) and times[i] > SLOW_STEP * median]
        if not slow:
            return None
        i = slow[0]
        return (
            f"timed batch {i + 1} grew the process's memory ({self.step_faults[i]:,} page faults, "
            f"{times[i]:.2f} s against a median {median:.2f} s)"
        )

    def latency(self, percentile: str) -> float | None:
        """A per-batch latency percentile (p50, p90, p99) in ms, None when not reported."""
        if self.latency_ms is None or percentile not in ("p50", "p90", "p99"):
            return None
        return float(getattr(self.latency_ms, percentile))

    @property
    def key(self) -> str:
        return f"{self.image}:{self.profile}"

    @property
    def cell_engine(self) -> str:
        """The engine its cell is named by: its own, or (``--spread``) the machines its cell was
        dealt over, ``n1+n2``."""
        return "+".join(self.spread) if self.spread else self.engine

    @property
    def cause(self) -> str:
        """Why it is not ok, without the output's last lines its ``error`` ends with."""
        return (self.error or "").split("; output ended:")[0]

    @property
    def ok(self) -> bool:
        return self.status is Status.ok

    @property
    def tf_version(self) -> str | None:
        return (self.provenance or {}).get("tf_version")

    def busy(self) -> tuple[float | None, float | None]:
        """Mean busy % of the run's CPUs and of the host's other CPUs (None: not sampled)."""
        util = self.utilization
        if util is None:
            return None, None
        mine = set(parse_cpu_list(self.effective_cpus or self.cpus))
        others = [c for c in range(len(util.busy)) if c not in mine]
        return mean_busy(util, sorted(mine)), mean_busy(util, others)

    @property
    def cpus_used(self) -> float:
        """The CPUs its work had: its quota where a CFS quota limited it, else the CPUs it may
        run on."""
        limit = (self.provenance or {}).get("cpu_limit")
        quota = limit.get("quota_cpus") if isinstance(limit, dict) else None
        if isinstance(quota, (int, float)) and quota > 0:
            return float(quota)
        return float(len(parse_cpu_list(self.effective_cpus or self.cpus)))

    @property
    def unit(self) -> str:
        """What its number counts: images/sec, or GB/s for the bandwidth workload."""
        return "GB/s" if self.workload and self.workload.bandwidth else "images/sec"

    @property
    def flop_per_image(self) -> float | None:
        w = self.workload
        if w is None or w.bandwidth:
            return None
        if w.model_file:  # counted by TensorFlow's profiler in the run (or not at all)
            forward = ((self.provenance or {}).get("model_file") or {}).get("forward_flop")
            if not isinstance(forward, (int, float)) or forward <= 0:
                return None
            return float(forward) if w.forward_only else float(forward) * TRAINING_FACTOR
        return flop_per_image(w.model, None, w.forward_only)

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
        if threads and "inter_op" not in threads:  # the bandwidth workload: one pool of threads
            text = str(threads.get("intra_op", "?"))
        omp = (prov.get("env") or {}).get("OMP_NUM_THREADS")
        return f"{text} omp={omp}" if omp else text

    def to_json(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["knobs"] = [[k, v] for k, v in self.knobs.items()]  # pairs: stores sort dict keys
        data["footprint"] = self.footprint.to_json() if self.footprint is not None else None
        data["utilization"] = self.utilization.to_json() if self.utilization is not None else None
        data["workload"] = self.workload.to_json() if self.workload is not None else None
        data["schema"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunResult:
        data = {k: v for k, v in data.items() if k != "schema"}
        if "docker_run" in data:  # schema 1
            data["rerun"] = data.pop("docker_run")
        data["status"] = Status(data["status"])
        data["command"] = tuple(data["command"])
        data["steps"] = tuple(data.get("steps", ()))
        data["knobs"] = dict(data.get("knobs") or [])
        data["stands_for"] = tuple(data.get("stands_for") or ())
        data["step_seconds"] = tuple(data.get("step_seconds") or ())
        data["step_faults"] = tuple(data.get("step_faults") or ())
        data["spread"] = tuple(data.get("spread") or ())
        data["host_speed"] = tuple(data["host_speed"]) if data.get("host_speed") else None
        data["footprint"] = Footprint.from_json(data.get("footprint"))
        util = data.get("utilization")
        data["utilization"] = Utilization.from_json(util) if util and util.get("times_s") else None
        data["latency_ms"] = Latency(**data["latency_ms"]) if data.get("latency_ms") else None
        data["workload"] = WorkloadRecord.from_json(data.get("workload"))
        return cls(**data)
