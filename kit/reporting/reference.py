"""One line placing a session's best cell against recorded systems of the same workload
(kit/reporting/references.toml), per CPU; "no reference" where none fits. Pure."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kit.model.results import RunResult
from kit.model.workload_record import WorkloadRecord
from kit.reporting.rows import Row, RowKind, RowStatus


@dataclass(frozen=True)
class Reference:
    """A recorded system's figure, and the workload it holds for."""

    system: str
    isa: str
    build: str
    model: str
    mode: str
    precision: str
    batch_size: int
    images_per_sec: float
    cpus: int
    source: str

    @property
    def per_cpu(self) -> float:
        return self.images_per_sec / self.cpus

    def fits(self, workload: WorkloadRecord) -> bool:
        return (self.model, self.mode, self.precision, self.batch_size) == (
            workload.model,
            workload.mode,
            workload.precision,
            workload.batch_size,
        )


@cache
def references() -> tuple[Reference, ...]:
    text = resources.files("kit.reporting").joinpath("references.toml").read_text("utf-8")
    return tuple(Reference(**r) for r in tomllib.loads(text)["reference"])


def reference_notes(results: Sequence[RunResult], table: Sequence[Row]) -> list[str]:
    """The best ok cell's rate per CPU against each recorded system of its workload."""
    counted = (RowStatus.ok, RowStatus.noisy)
    cells = [r for r in table if r.kind is RowKind.cell and r.per_cpu is not None
             and r.status in counted and r.unit == "images/sec"]  # fmt: skip
    if not cells:
        return []
    best = max(cells, key=lambda r: r.per_cpu or 0.0)
    run = next(r for r in results if r.image == best.image and r.profile == best.profile)
    workload = run.workload
    if workload is None:
        return []
    fits = [ref for ref in references() if ref.fits(workload)]
    said = f"{workload.model} {workload.mode}, batch {workload.batch_size}, {workload.precision}"
    if not fits:
        return [f"reference: none recorded for {said} (kit/reporting/references.toml)"]
    best_text = f"{best.image}:{best.label} {best.per_cpu:.2f} images/sec per CPU"
    others = "; ".join(
        f"{ref.per_cpu:.2f} on {ref.system}, {ref.build} ({ref.isa}; {ref.source})" for ref in fits
    )
    return [f"reference, {said}: {best_text} here, against {others}"]
