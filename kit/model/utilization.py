"""Per-CPU busy % of the host over one run (what ``kit.host.sampler`` recorded), and the mean
over a set of CPUs. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Consumer:
    """A process that used CPU time during a run (not the run's own, not kit)."""

    name: str
    pid: int
    cpu_s: float
    container: str | None = None  # the container it ran in (its id, short), if any

    @property
    def label(self) -> str:
        inside = f", container {self.container}" if self.container else ""
        return f"{self.name} (pid {self.pid}{inside}, {self.cpu_s:.1f} CPU-s)"


@dataclass(frozen=True)
class Utilization:
    times_s: tuple[float, ...]  # seconds since the run started
    busy: tuple[
        tuple[float, ...], ...
    ]  # one row per host CPU (index = CPU id), one column per time
    # The processes that ran through the run and used the most CPU time in it, most first
    consumers: tuple[Consumer, ...] = ()

    def to_json(self) -> dict:
        return {"times_s": list(self.times_s), "busy": [list(row) for row in self.busy],
                "consumers": [vars(c) for c in self.consumers]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> Utilization:
        consumers = tuple(Consumer(**c) for c in data.get("consumers") or ())
        return cls(tuple(data["times_s"]), tuple(tuple(row) for row in data["busy"]), consumers)


def mean_busy(util: Utilization, cpus: Sequence[int]) -> float | None:
    """Mean busy % over the given CPUs and the whole run; None with no sample or no CPU."""
    rows = [util.busy[c] for c in cpus if c < len(util.busy)]
    values = [v for row in rows for v in row]
    return sum(values) / len(values) if values else None
