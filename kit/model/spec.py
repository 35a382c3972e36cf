"""Frozen, self-validating descriptions of one run: its image, limits and spec (what the engine
runs, with nothing of its own added), and the spec's JSON form for a Slurm job's share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.model.numa import NumaPolicy
from kit.model.profiles import ResolvedProfile
from kit.model.workload import DataFormat, WorkloadSpec, workload_from_json, workload_json

_MEMORY = re.compile(r"([1-9][0-9]{0,15})([bkmg]?)\Z", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
MIN_MEMORY_BYTES = 6 * 2**20  # Docker's own minimum for a container's memory limit
MAX_PIDS = 4_194_304  # the kernel's PID_MAX_LIMIT: no pids cgroup takes more


@dataclass(frozen=True)
class Limits:
    """Resource limits for each container: memory (Docker's syntax, e.g. 8g), processes, and a
    CFS quota in CPUs (as Docker's --cpus and Kubernetes CPU limits set it: a profile's
    ``select.quota``, whose cpuset is left whole)."""

    memory: str | None = None
    pids: int | None = None
    cpu_quota: float | None = None

    def __post_init__(self) -> None:
        if self.memory is not None:
            match = _MEMORY.match(self.memory)
            if not match:
                raise UsageError(
                    f"--memory {self.memory!r} is not a size", "write it like 512m or 8g"
                )
            if self.memory_bytes < MIN_MEMORY_BYTES:  # type: ignore[operator]
                raise UsageError(
                    f"--memory {self.memory} is below Docker's minimum of 6 MB",
                    "TensorFlow needs gigabytes: write it like 8g",
                )
        if self.cpu_quota is not None and self.cpu_quota < 0.01:
            raise UsageError(f"a CPU quota of {self.cpu_quota} CPUs is below Docker's minimum")
        if self.pids is not None and not 16 <= self.pids <= MAX_PIDS:
            raise UsageError(
                f"--pids-limit {self.pids} is outside [16, {MAX_PIDS}] (TensorFlow's threads "
                "need 16 or more; the kernel allows no more)",
                "use e.g. --pids-limit 4096",
            )

    @property
    def memory_bytes(self) -> int | None:
        match = _MEMORY.match(self.memory or "")
        return int(match.group(1)) * _UNITS[match.group(2).lower()] if match else None


@dataclass(frozen=True)
class ImageRef:
    """An image as the user named it (a flavor or any reference) and the reference to run."""

    label: str
    reference: str
    flavor: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """Everything one container run needs; the engine adds nothing of its own."""

    index: int
    image: ImageRef
    profile: ResolvedProfile
    cpus: tuple[int, ...]  # the container's cpuset
    workload: WorkloadSpec
    timeout_s: float = 3600.0
    # The CPUs the workload may use: the cpuset narrowed by numactl's CPU binding.
    effective_cpus: tuple[int, ...] | None = None
    mems: tuple[int, ...] | None = None  # the container's cpuset.mems, when restricted
    memory_nodes: str | None = None  # the nodes the memory policy should show inside
    nodes: tuple[int, ...] = ()  # NUMA nodes of the effective CPUs
    cell: int = 1  # the cell this run measures: one number per (image, profile, engine)
    instance: int = 1
    instances: int = 1
    repeat: int = 0  # which repeat of the cell (0-based); each is a fresh container
    looks: int = 1  # how often the cell's interval is looked at (adaptive repeats: every round)
    engine: str = "docker"  # which engine runs it (a session may compare engines)
    limits: Limits = field(default_factory=Limits)
    # The other profiles this cell stands for: they run the same on this host (merged).
    stands_for: tuple[str, ...] = ()
    # --spread: the identical machines the cell's repeats are dealt over (``engine`` is the one
    # this run is dealt to); empty when every machine runs the whole plan.
    spread: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.cpus:
            raise UsageError("a run needs at least one CPU")
        if self.effective_cpus is None:
            object.__setattr__(self, "effective_cpus", self.cpus)
        if self.timeout_s <= 0:
            raise UsageError(f"timeout must be positive, got {self.timeout_s}")
        if (
            self.workload.data_format is DataFormat.NCHW
            and self.profile.env.get("TF_ENABLE_ONEDNN_OPTS") == "0"
        ):
            raise UsageError(
                f"profile {self.profile.name!r} turns oneDNN off, and NCHW training needs oneDNN",
                "use --data-format NHWC with that profile",
            )

    @property
    def key(self) -> str:
        return f"{self.image.label}:{self.profile.name}"

    @property
    def cpu_list(self) -> str:
        return format_cpu_list(self.cpus)

    @property
    def mems_list(self) -> str | None:
        return format_cpu_list(self.mems) if self.mems is not None else None

    def requested_placement(self) -> dict[str, object]:
        """What the run asked for, in the terms placement checks compare against."""
        nodes = self.memory_nodes
        return {
            "cpuset": self.cpu_list,
            "cpus": format_cpu_list(self.effective_cpus or self.cpus),
            "mems": self.mems_list,
            "cpu_quota": self.limits.cpu_quota,
            "memory_policy": self.profile.numa.memory_policy,
            "memory_nodes": None if nodes is None else set(parse_cpu_list(nodes)),
        }

    def command(self) -> tuple[str, ...]:
        return (
            *self.profile.numa.argv(),
            *self.workload.argv(self.profile.inter_op, self.profile.intra_op),
        )

    def host_command(self, python: str) -> tuple[str, ...]:
        """The argv of this run outside a container (the local engine, a node's): taskset for
        the cpuset, then numactl (the profile's policy, or memory bound to the instance's
        nodes), then the workload on ``python``."""
        numa = list(self.profile.numa.argv())
        if self.mems is not None and self.profile.numa.memory_policy is None:
            numa = [*(numa or ["numactl"]), f"--membind={self.mems_list}"]
        workload = list(self.workload.argv(self.profile.inter_op, self.profile.intra_op))
        if self.workload.model_file is not None:  # no mount outside a container: the file
            here = f"--model_file={self.workload.model_file.resolve()}"
            workload = [here if a.startswith("--model_file=") else a for a in workload]
        return ("taskset", "--cpu-list", self.cpu_list, *numa, python, *workload[1:])

    def environment(self) -> MappingProxyType:
        return MappingProxyType(dict(self.profile.env))


def spec_json(spec: RunSpec) -> dict:
    """A run spec as JSON (a Slurm job's share of a plan): everything, resolved."""
    p = spec.profile
    return {
        "index": spec.index,
        "image": {"label": spec.image.label, "reference": spec.image.reference,
                  "flavor": spec.image.flavor},
        "profile": {"name": p.name, "env": dict(p.env), "inter_op": p.inter_op,
                    "intra_op": p.intra_op, "numa": {f: getattr(p.numa, f) for f in NUMA_FIELDS},
                    "knobs": [list(k) for k in p.knobs]},
        "cpus": list(spec.cpus),
        "workload": workload_json(spec.workload),
        "timeout_s": spec.timeout_s,
        "effective_cpus": list(spec.effective_cpus or spec.cpus),
        "mems": list(spec.mems) if spec.mems is not None else None,
        "memory_nodes": spec.memory_nodes,
        "nodes": list(spec.nodes),
        **{k: getattr(spec, k) for k in ("cell", "instance", "instances", "repeat", "looks",
                                         "engine")},
        "limits": {"memory": spec.limits.memory, "pids": spec.limits.pids,
                   "cpu_quota": spec.limits.cpu_quota},
        "stands_for": list(spec.stands_for),
        "spread": list(spec.spread),
    }  # fmt: skip


NUMA_FIELDS = ("interleave", "membind", "preferred", "cpunodebind", "physcpubind", "localalloc")


def spec_from_json(data: dict) -> RunSpec:
    p = data["profile"]
    profile = ResolvedProfile(
        p["name"], p["env"], p["inter_op"], p["intra_op"], NumaPolicy(**p["numa"]),
        tuple((str(k), str(v)) for k, v in p["knobs"]),
    )  # fmt: skip
    mems = data["mems"]
    return RunSpec(
        index=data["index"], image=ImageRef(**data["image"]), profile=profile,
        cpus=tuple(data["cpus"]), workload=workload_from_json(data["workload"]),
        timeout_s=data["timeout_s"], effective_cpus=tuple(data["effective_cpus"]),
        mems=tuple(mems) if mems is not None else None, memory_nodes=data["memory_nodes"],
        nodes=tuple(data["nodes"]), cell=data["cell"], instance=data["instance"],
        instances=data["instances"], repeat=data["repeat"], looks=data["looks"],
        engine=data["engine"], limits=Limits(**data["limits"]),
        stands_for=tuple(data.get("stands_for") or ()),
        spread=tuple(data.get("spread") or ()),
    )  # fmt: skip
