"""Per-CPU busy % of the host over one run (what ``kit.host.sampler`` recorded), and the mean
over a set of CPUs. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Utilization:
    times_s: tuple[float, ...]  # seconds since the run started
    busy: tuple[
        tuple[float, ...], ...
    ]  # one row per host CPU (index = CPU id), one column per time

    def to_json(self) -> dict:
        return {"times_s": list(self.times_s), "busy": [list(row) for row in self.busy]}

    @classmethod
    def from_json(cls, data: dict) -> Utilization:
        return cls(tuple(data["times_s"]), tuple(tuple(row) for row in data["busy"]))


def mean_busy(util: Utilization, cpus: Sequence[int]) -> float | None:
    """Mean busy % over the given CPUs and the whole run; None with no sample or no CPU."""
    rows = [util.busy[c] for c in cpus if c < len(util.busy)]
    values = [v for row in rows for v in row]
    return sum(values) / len(values) if values else None
