"""The workload as a run records it: what ran, for the work per image, the references it is
placed against and the identity of its history's series. Not the request (``WorkloadSpec``,
whose checks are of a user's input on this host: a model file's path, --workload-dir): a record
keeps the user's model by its file name and content digest, and reads on any host. Older
records (``forward_only`` rather than ``mode``) read the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum

from kit.model.workload import (
    AUTO,
    WORDS,
    Allocator,
    DataFormat,
    Mode,
    Precision,
    Workload,
    WorkloadSpec,
)


@dataclass(frozen=True)
class WorkloadRecord:
    model: str  # kit's model, or the user's model file's name
    batch_size: int
    num_batches: int
    num_warmup_batches: int | str  # a number, or AUTO
    data_format: DataFormat = DataFormat.NHWC
    mode: Mode = Mode.train
    precision: Precision = Precision.fp32
    allocator: Allocator = Allocator.system
    workload: Workload = Workload.kit
    model_file: str | None = None  # the user's model: its path where it ran, and its sha256
    model_digest: str | None = None

    def __post_init__(self) -> None:
        for name, kind in _WORDS.items():
            object.__setattr__(self, name, kind(getattr(self, name)))
        least = {"batch_size": 1, "num_batches": 1, "num_warmup_batches": 0}
        for name, lowest in least.items():
            value = getattr(self, name)
            whole = isinstance(value, int) and not isinstance(value, bool) and value >= lowest
            if not whole and not (name == "num_warmup_batches" and value == AUTO):
                raise ValueError(f"a workload record's {name} cannot be {value!r}")

    @classmethod
    def of(cls, spec: WorkloadSpec) -> WorkloadRecord:
        """What a run of ``spec`` records."""
        mine = spec.model_file
        return cls(
            model=mine.name if mine else spec.model.value,
            batch_size=spec.batch_size, num_batches=spec.num_batches,
            num_warmup_batches=spec.num_warmup_batches, data_format=spec.data_format,
            mode=spec.mode, precision=spec.precision, allocator=spec.allocator,
            workload=spec.workload, model_file=str(mine) if mine else None,
            model_digest=spec.model_digest if mine else None,
        )  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping | None) -> WorkloadRecord | None:
        if not data:
            return None
        mode = data.get("mode") or ("infer" if data.get("forward_only") else "train")
        given = {k: data[k] for k in _OPTIONAL if data.get(k) is not None}
        return cls(
            model=str(data.get("model", "?")), batch_size=int(data["batch_size"]),
            num_batches=int(data["num_batches"]),
            num_warmup_batches=data.get("num_warmup_batches", AUTO), mode=mode, **given,
        )  # fmt: skip

    def to_json(self) -> dict:
        """As records have kept it (plain words; ``forward_only`` for older readers)."""
        data = {k: v.value if isinstance(v, Enum) else v for k, v in asdict(self).items()}
        return {**data, "forward_only": self.forward_only}

    @property
    def forward_only(self) -> bool:
        return self.mode is Mode.infer

    @property
    def bandwidth(self) -> bool:
        """The bandwidth workload's: GB/s, not images/sec."""
        return self.workload is Workload.bandwidth

    def describe(self) -> str:
        """One line, the same for every run of the same work: a series' workload."""
        model = self.model
        if self.model_file:  # the user's model: its content, not its path, makes the series
            model = f"{model} ({(self.model_digest or '?')[:12]})"
        parts = [
            f"{model} {self.mode.value}", f"batch {self.batch_size}",
            f"{self.num_batches} batches", f"warmup {self.num_warmup_batches}",
            self.data_format.value,
        ]  # fmt: skip
        parts += [v.value for v in (self.precision, self.allocator) if v not in ("fp32", "system")]
        if self.workload is not Workload.kit:
            parts.append(self.workload.value)
        return ", ".join(parts)


_WORDS = {name: kind for name, kind in WORDS.items() if name != "model"}  # a model is any name
_OPTIONAL = (*_WORDS.keys() - {"mode"}, "model_file", "model_digest")
