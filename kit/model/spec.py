"""Frozen, self-validating descriptions of what to run: workload sizes and one run's spec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.model.profiles import ResolvedProfile
from kit.workload.cnn_benchmarks import MODEL_NAMES as TF_CNN_NAMES

MAX_BATCH = 65536
MAX_BATCHES = 1_000_000
# Where a --workload-dir is mounted, read-only, inside the container.
WORKLOAD_MOUNT = "/opt/tf-benchmarks"
TF_CNN_SCRIPT = "scripts/tf_cnn_benchmarks/tf_cnn_benchmarks.py"


class Model(StrEnum):
    """Keras applications (weights=None) and kit's tiny test CNN."""

    resnet50 = "resnet50"
    resnet101 = "resnet101"
    resnet152 = "resnet152"
    inception_v3 = "inception_v3"
    mobilenet_v2 = "mobilenet_v2"
    vgg16 = "vgg16"
    efficientnet_b0 = "efficientnet_b0"
    densenet121 = "densenet121"
    tiny = "tiny"


# The models tf_cnn_benchmarks has too (kit_workload.cnn_benchmarks names them its way).
TF_CNN_MODELS = tuple(TF_CNN_NAMES)
# Depthwise convolutions run NHWC only on CPU.
NHWC_ONLY = ("mobilenet_v2", "efficientnet_b0")


class Mode(StrEnum):
    train = "train"
    infer = "infer"  # the forward pass alone, compiled; per-batch latency reported


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"  # Keras' mixed_bfloat16 policy


class Allocator(StrEnum):
    system = "system"  # glibc malloc
    jemalloc = "jemalloc"
    tcmalloc = "tcmalloc"


class DataFormat(StrEnum):
    NHWC = "NHWC"
    NCHW = "NCHW"


class Workload(StrEnum):
    kit = "kit"
    tf_cnn_benchmarks = "tf_cnn_benchmarks"
    peak = "peak"  # the GEMM ceiling `kit peak` measures; not a training benchmark


class Preset(StrEnum):
    quick = "quick"
    seed = "seed"
    latency = "latency"
    throughput = "throughput"


# The experiment's sizes ("seed") and a short run that still reaches steady state ("quick").
PRESETS: dict[Preset, dict[str, object]] = {
    Preset.quick: {
        "model": Model.resnet50,
        "batch_size": 32,
        "num_batches": 10,
        "num_warmup_batches": 2,
    },
    Preset.seed: {
        "model": Model.resnet50,
        "batch_size": 128,
        "num_batches": 30,
        "num_warmup_batches": 10,
    },
    # Inference: one image at a time, for the latency of a request, and full batches.
    Preset.latency: {
        "model": Model.resnet50,
        "mode": Mode.infer,
        "batch_size": 1,
        "num_batches": 50,
        "num_warmup_batches": 5,
    },
    Preset.throughput: {
        "model": Model.resnet50,
        "mode": Mode.infer,
        "batch_size": 32,
        "num_batches": 20,
        "num_warmup_batches": 3,
    },
}


@dataclass(frozen=True)
class WorkloadSpec:
    model: Model = Model.resnet50
    batch_size: int = 32
    num_batches: int = 10
    num_warmup_batches: int = 2
    data_format: DataFormat = DataFormat.NHWC
    mode: Mode = Mode.train
    precision: Precision = Precision.fp32
    allocator: Allocator = Allocator.system
    workload: Workload = Workload.kit
    workload_dir: Path | None = None

    def __post_init__(self) -> None:
        for name, kind in _WORDS.items():  # a profile's or a record's word becomes the enum
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(k.value for k in kind)
                raise UsageError(f"unknown {name} {value!r}", f"choose {choices}") from None
        _bounded("batch size", self.batch_size, 1, MAX_BATCH)
        _bounded("number of batches", self.num_batches, 1, MAX_BATCHES)
        _bounded("number of warmup batches", self.num_warmup_batches, 0, MAX_BATCHES)
        if self.data_format is DataFormat.NCHW and self.model.value in NHWC_ONLY:
            raise UsageError(
                f"{self.model.value}'s depthwise convolutions run NHWC only on CPU",
                "use --data-format NHWC with it",
            )
        if self.workload is Workload.tf_cnn_benchmarks:
            self._check_tf_cnn()
        elif self.workload_dir is not None:
            raise UsageError("--workload-dir is only for --workload tf_cnn_benchmarks")

    def _check_tf_cnn(self) -> None:
        if self.workload_dir is None:
            raise UsageError(
                "--workload tf_cnn_benchmarks needs --workload-dir",
                "point it at a checkout of tensorflow/benchmarks",
            )
        if tf_cnn_script(self.workload_dir) is None:
            raise UsageError(
                f"{self.workload_dir} has no {TF_CNN_SCRIPT}",
                "point --workload-dir at a checkout of tensorflow/benchmarks (or its "
                "scripts/tf_cnn_benchmarks folder)",
            )
        if self.model.value not in TF_CNN_MODELS:
            raise UsageError(
                f"tf_cnn_benchmarks has no {self.model.value!r} model",
                f"use --model {' or '.join(TF_CNN_MODELS)} with it",
            )
        if self.precision is not Precision.fp32:
            raise UsageError("tf_cnn_benchmarks has no bf16 on CPU", "use --precision fp32 with it")

    @property
    def forward_only(self) -> bool:
        return self.mode is Mode.infer

    @classmethod
    def from_preset(cls, preset: Preset, **overrides: object) -> WorkloadSpec:
        values = dict(PRESETS[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def argv(self, inter_op: int | None, intra_op: int | None) -> tuple[str, ...]:
        """The container's workload command. Thread flags only when the profile sets them."""
        flags = [
            f"--model={self.model.value}",
            f"--batch_size={self.batch_size}",
            f"--num_batches={self.num_batches}",
            f"--num_warmup_batches={self.num_warmup_batches}",
            f"--data_format={self.data_format.value}",
        ]
        if inter_op:
            flags.append(f"--num_inter_threads={inter_op}")
        if intra_op:
            flags.append(f"--num_intra_threads={intra_op}")
        if self.mode is not Mode.train:
            flags.append(f"--mode={self.mode.value}")
        if self.precision is not Precision.fp32:
            flags.append(f"--precision={self.precision.value}")
        if self.allocator is not Allocator.system:
            flags.append(f"--allocator={self.allocator.value}")
        if self.workload is Workload.peak:
            return ("python", "-m", "kit_workload.peak")
        if self.workload is Workload.tf_cnn_benchmarks:
            return (
                "python",
                "-m",
                "kit_workload.cnn_benchmarks",
                f"--workload_dir={WORKLOAD_MOUNT}",
                *flags,
            )
        return ("python", "-m", "kit_workload", *flags)

    def describe(self) -> str:
        mode = "inference" if self.forward_only else "training"
        extra = "".join(
            f", {v.value}" for v in (self.precision, self.allocator) if v not in ("fp32", "system")
        )
        return (
            f"{self.model.value} {mode}, batch {self.batch_size}, {self.num_batches} batches "
            f"+ {self.num_warmup_batches} warmup, {self.data_format.value}{extra}"
        )


_WORDS = {
    "model": Model, "data_format": DataFormat, "mode": Mode, "precision": Precision,
    "allocator": Allocator, "workload": Workload,
}  # fmt: skip


def tf_cnn_script(folder: Path) -> Path | None:
    """tf_cnn_benchmarks.py in a checkout of tensorflow/benchmarks, or in its
    scripts/tf_cnn_benchmarks folder given directly."""
    from kit.inputs import stat_of

    for relative in (TF_CNN_SCRIPT, Path(TF_CNN_SCRIPT).name):
        if stat_of(folder / relative, "--workload-dir") is not None:
            return folder / relative
    return None


def _bounded(what: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise UsageError(f"{what} must be between {lo} and {hi}, got {value}")


_MEMORY = re.compile(r"([1-9][0-9]{0,15})([bkmg]?)\Z", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
MIN_MEMORY_BYTES = 6 * 2**20  # Docker's own minimum for a container's memory limit
MAX_PIDS = 4_194_304  # the kernel's PID_MAX_LIMIT: no pids cgroup takes more


@dataclass(frozen=True)
class Limits:
    """Resource limits for each container: memory (Docker's syntax, e.g. 8g) and processes."""

    memory: str | None = None
    pids: int | None = None

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
    cell: int = 1  # the (image, profile) cell this run measures
    instance: int = 1
    instances: int = 1
    repeat: int = 0  # which repeat of the cell (0-based); each is a fresh container
    looks: int = 1  # how often the cell's interval is looked at (adaptive repeats: every round)
    engine: str = "docker"  # which engine runs it (a session may compare engines)
    limits: Limits = field(default_factory=Limits)

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
            "memory_policy": self.profile.numa.memory_policy,
            "memory_nodes": None if nodes is None else set(parse_cpu_list(nodes)),
        }

    def command(self) -> tuple[str, ...]:
        return (
            *self.profile.numa.argv(),
            *self.workload.argv(self.profile.inter_op, self.profile.intra_op),
        )

    def environment(self) -> MappingProxyType:
        return MappingProxyType(dict(self.profile.env))


def spec_json(spec: RunSpec) -> dict:
    """A run spec as JSON (a Slurm job's share of a plan): everything, resolved."""
    from kit.campaign.recipe import workload_json

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
        "limits": {"memory": spec.limits.memory, "pids": spec.limits.pids},
    }  # fmt: skip


NUMA_FIELDS = ("interleave", "membind", "preferred", "cpunodebind", "physcpubind", "localalloc")


def spec_from_json(data: dict) -> RunSpec:
    from kit.campaign.recipe import workload_from_json
    from kit.model.profiles import NumaPolicy

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
    )  # fmt: skip
