"""What a run's workload is: the words of the workload's vocabulary (models, modes, precisions,
allocators, data formats), the presets, and one frozen, self-validating ``WorkloadSpec`` with
its command line and its JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from kit.errors import UsageError, did_you_mean
from kit.inputs import stat_of
from kit.workload.cnn_benchmarks import MODEL_NAMES as TF_CNN_NAMES
from kit.workload.cnn_benchmarks import TF1_ONLY as TF_CNN_TF1_ONLY
from kit.workload.steady import AUTO

MAX_BATCH = 65536
MAX_BATCHES = 1_000_000
# Where a --workload-dir is mounted, read-only, inside the container.
WORKLOAD_MOUNT = "/opt/tf-benchmarks"
MODEL_MOUNT = "/opt/kit-model"  # where a run finds --model FILE, read-only
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
    # STREAM's triad on the run's threads and placement, GB/s (kit_workload.bandwidth): why
    # memory placement matters, without TensorFlow
    bandwidth = "bandwidth"


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
        "num_warmup_batches": AUTO,
    },
    Preset.seed: {
        "model": Model.resnet50,
        "batch_size": 128,
        "num_batches": 30,
        "num_warmup_batches": AUTO,
    },
    # Inference: one image at a time, for the latency of a request, and full batches.
    Preset.latency: {
        "model": Model.resnet50,
        "mode": Mode.infer,
        "batch_size": 1,
        "num_batches": 50,
        "num_warmup_batches": AUTO,
    },
    Preset.throughput: {
        "model": Model.resnet50,
        "mode": Mode.infer,
        "batch_size": 32,
        "num_batches": 20,
        "num_warmup_batches": AUTO,
    },
}


@dataclass(frozen=True)
class WorkloadSpec:
    model: Model = Model.resnet50
    batch_size: int = 32
    num_batches: int = 10
    num_warmup_batches: int | str = AUTO  # a number, or AUTO
    data_format: DataFormat = DataFormat.NHWC
    mode: Mode = Mode.train
    precision: Precision = Precision.fp32
    allocator: Allocator = Allocator.system
    workload: Workload = Workload.kit
    workload_dir: Path | None = None
    # --model FILE: the user's saved Keras model, mounted read-only into each run, and its
    # sha256 (the workload of a series is the model's content, not its path)
    model_file: Path | None = None
    model_digest: str | None = None

    def __post_init__(self) -> None:
        for name, kind in WORDS.items():  # a profile's or a record's word becomes the enum
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(k.value for k in kind)
                hint = f"{did_you_mean(str(value), (k.value for k in kind))}choose {choices}"
                raise UsageError(f"unknown {name} {value!r}", hint) from None
        _bounded("batch size", self.batch_size, 1, MAX_BATCH)
        _bounded("number of batches", self.num_batches, 1, MAX_BATCHES)
        if self.num_warmup_batches != AUTO:
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
        if self.model_file is not None and self.model_file.is_dir() and self.mode is Mode.train:
            raise UsageError(
                f"--model {self.model_file.name} is a SavedModel: kit runs it forward only",
                "add --mode infer (save a .keras file to train it)",
            )
        if self.model_file is not None and self.workload is not Workload.kit:
            raise UsageError(f"--model {self.model_file.name} runs in kit's own workload",
                             "leave --workload out with your model")  # fmt: skip

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
        if self.model.value in TF_CNN_TF1_ONLY:
            raise UsageError(
                f"tf_cnn_benchmarks' {TF_CNN_TF1_ONLY[self.model.value]} model needs TensorFlow 1 "
                "(tf.contrib), and kit's images run TensorFlow 2",
                f"use --model {' or '.join(TF_CNN_MODELS)} with it",
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
        model = (
            f"--model_file={self.model_path}" if self.model_file else f"--model={self.model.value}"
        )
        flags = [
            model,
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
        if self.workload is Workload.bandwidth:  # its repeats are the timed batches
            threads = [f"--threads={intra_op}"] if intra_op else []
            return ("python", "-m", "kit_workload.bandwidth", f"--repeats={self.num_batches}",
                    *threads)  # fmt: skip
        if self.workload is Workload.tf_cnn_benchmarks:
            return (
                "python",
                "-m",
                "kit_workload.cnn_benchmarks",
                f"--workload_dir={WORKLOAD_MOUNT}",
                *flags,
            )
        return ("python", "-m", "kit_workload", *flags)

    @property
    def model_path(self) -> str:
        """Where a run reads the user's model: its mount in a container (MODEL_MOUNT)."""
        assert self.model_file is not None
        return f"{MODEL_MOUNT}/{self.model_file.name}"

    @property
    def model_name(self) -> str:
        """The built-in model's name, or the user's file with the start of its digest."""
        if self.model_file is None:
            return self.model.value
        return f"{self.model_file.name} ({(self.model_digest or '?')[:12]})"

    def describe(self) -> str:
        if self.workload is Workload.bandwidth:
            return f"STREAM's triad (GB/s), the best of {self.num_batches} timed repeats"
        mode = "inference" if self.forward_only else "training"
        extra = "".join(
            f", {v.value}" for v in (self.precision, self.allocator) if v not in ("fp32", "system")
        )
        return (
            f"{self.model_name} {mode}, batch {self.batch_size}, {self.num_batches} batches "
            f"after {self.warmup_text}, {self.data_format.value}{extra}"
        )

    @property
    def warmup_text(self) -> str:
        if self.num_warmup_batches == AUTO:
            return "a warmup until settled"
        return f"{self.num_warmup_batches} warmup"


# The spec's fields that are words of an enum (a record's too, but for its model: a file's name).
WORDS = {
    "model": Model, "data_format": DataFormat, "mode": Mode, "precision": Precision,
    "allocator": Allocator, "workload": Workload,
}  # fmt: skip


def tf_cnn_script(folder: Path) -> Path | None:
    """tf_cnn_benchmarks.py in a checkout of tensorflow/benchmarks, or in its
    scripts/tf_cnn_benchmarks folder given directly."""
    for relative in (TF_CNN_SCRIPT, Path(TF_CNN_SCRIPT).name):
        if stat_of(folder / relative, "--workload-dir") is not None:
            return folder / relative
    return None


def warmup_of(value: object) -> int | str:
    """A warmup as given on a command line, in a profile or a record: ``auto`` or a number."""
    if value == AUTO:
        return AUTO
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise UsageError(
        f"number of warmup batches must be auto or a whole number, got {value!r}",
        "e.g. --num-warmup-batches auto (until the step time settles) or 2",
    )


def _bounded(what: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise UsageError(f"{what} must be between {lo} and {hi}, got {value}")


def workload_json(workload: WorkloadSpec) -> dict:
    data = asdict(workload)
    data["workload_dir"] = str(workload.workload_dir) if workload.workload_dir else None
    data["model_file"] = str(workload.model_file) if workload.model_file else None
    return data


def workload_from_json(data: Mapping) -> WorkloadSpec:
    return WorkloadSpec(
        model=Model(data["model"]),
        batch_size=int(data["batch_size"]),
        num_batches=int(data["num_batches"]),
        num_warmup_batches=warmup_of(data["num_warmup_batches"]),
        data_format=DataFormat(data["data_format"]),
        mode=Mode(data.get("mode") or ("infer" if data.get("forward_only") else "train")),
        precision=Precision(data.get("precision", "fp32")),
        allocator=Allocator(data.get("allocator", "system")),
        workload=Workload(data["workload"]),
        workload_dir=Path(data["workload_dir"]) if data.get("workload_dir") else None,
        model_file=Path(data["model_file"]) if data.get("model_file") else None,
        model_digest=data.get("model_digest"),
    )


def model_digest(path: Path) -> str | None:
    """The sha256 of --model's file, or of a SavedModel folder's files (their paths and bytes,
    in order); None where it cannot be read."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        for file in files:
            if path.is_dir():
                digest.update(str(file.relative_to(path)).encode() + b"\0")
            with file.open("rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
