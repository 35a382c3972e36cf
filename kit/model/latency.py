"""Per-batch time percentiles of a run (kit's workload prints them). Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Per-batch time percentiles, in milliseconds, over ``batches`` timed batches."""

    p50: float
    p90: float
    p99: float
    batches: int

    def __post_init__(self) -> None:
        if not 0 <= self.p50 <= self.p90 <= self.p99 or self.batches < 1:
            raise ValueError(f"latency percentiles out of order or no batch: {self}")
