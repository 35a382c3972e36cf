"""Pure exporters: results -> text. tabulate is imported here and nowhere else."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tabulate import tabulate

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.results import RunResult

HEADERS = (
    "image",
    "TF",
    "profile",
    "cpus",
    "nodes",
    "numactl",
    "memory policy",
    "threads",
    "images/sec",
    "speedup",
    "status",
)


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@dataclass(frozen=True)
class Cell:
    """One (image, profile) measurement: a single run, or the instances that ran together."""

    runs: tuple[RunResult, ...]

    @property
    def first(self) -> RunResult:
        return self.runs[0]

    @property
    def key(self) -> str:
        return self.first.key

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def images_per_sec(self) -> float | None:
        """The cell's throughput; for instances the aggregate (their sum)."""
        rates = [r.images_per_sec for r in self.runs]
        if any(rate is None for rate in rates):
            return None
        return sum(rates)  # type: ignore[arg-type]


def cells(results: Sequence[RunResult]) -> list[Cell]:
    grouped: dict[tuple[str, int], list[RunResult]] = {}
    for r in results:
        grouped.setdefault((r.key, r.cell), []).append(r)
    return [Cell(tuple(sorted(runs, key=lambda r: r.instance))) for runs in grouped.values()]


def baseline_cell(table: Sequence[Cell], baseline: str | None) -> Cell | None:
    """The cell speedups are measured against: ``IMAGE:PROFILE`` if given, else the first cell
    that succeeded."""
    ok = [c for c in table if c.ok]
    if baseline is None:
        return ok[0] if ok else None
    return next((c for c in ok if c.key == baseline), None)


def check_baseline(keys: Sequence[str], baseline: str | None) -> None:
    if baseline is not None and baseline not in keys:
        raise UsageError(
            f"baseline {baseline!r} is not one of the runs",
            f"use IMAGE:PROFILE, one of: {', '.join(dict.fromkeys(keys))}",
        )


def _status(runs: Sequence[RunResult]) -> str:
    bad = [r for r in runs if not r.ok]
    if not bad:
        return "ok"
    if len(runs) == 1:
        return f"{bad[0].status.value}: {bad[0].error}"
    return f"{len(bad)} of {len(runs)} instances not ok: {bad[0].status.value}: {bad[0].error}"


def _row(r: RunResult, profile: str, rate: float | None, speedup: float | None, status: str):
    return {
        "image": r.image,
        "tf_version": r.tf_version,
        "profile": profile,
        "cpus": r.cpus,
        "nodes": r.nodes,
        "numactl": r.numactl,
        "memory_policy": r.memory_policy,
        "threads": r.threads,
        "images_per_sec": rate,
        "speedup": speedup,
        "status": status,
        "instance": f"{r.instance}/{r.instances}",
    }


def rows(results: Sequence[RunResult], baseline: str | None = None) -> list[dict]:
    """One row per cell; a multi-instance cell is its aggregate row followed by one row per
    instance (``#i/n``)."""
    table = cells(results)
    base = baseline_cell(table, baseline)
    out = []
    for cell in table:
        rate = cell.images_per_sec
        speedup = rate / base.images_per_sec if base and cell.ok and rate else None
        if len(cell.runs) == 1:
            out.append(_row(cell.first, cell.first.profile, rate, speedup, _status(cell.runs)))
            continue
        total = _row(
            cell.first, f"{cell.first.profile} x{len(cell.runs)}", rate, speedup, _status(cell.runs)
        )
        total.update(
            cpus=format_cpu_list(c for r in cell.runs for c in parse_cpu_list(r.cpus)),
            nodes=format_cpu_list(n for r in cell.runs if r.nodes for n in parse_cpu_list(r.nodes)),
            memory_policy=", ".join(dict.fromkeys(r.memory_policy for r in cell.runs)),
            threads=f"{cell.first.threads} each",
            instance=f"sum of {len(cell.runs)}",
        )
        out.append(total)
        for r in cell.runs:
            status = "ok" if r.ok else f"{r.status.value}: {r.error}"
            out.append(_row(r, f"  #{r.instance}/{r.instances}", r.images_per_sec, None, status))
    return out


def _cells(row: dict) -> list[str]:
    rate = row["images_per_sec"]
    speedup = row["speedup"]
    status = row["status"]
    return [
        row["image"],
        row["tf_version"] or "?",
        row["profile"],
        row["cpus"],
        row["nodes"],
        row["numactl"],
        row["memory_policy"],
        row["threads"],
        f"{rate:.2f}" if rate is not None else "-",
        f"{speedup:.2f}x" if speedup is not None else "-",
        status if len(status) <= 90 else status[:87] + "...",
    ]


def render(
    results: Sequence[RunResult], fmt: Format = Format.table, baseline: str | None = None
) -> str:
    table = rows(results, baseline)
    if fmt is Format.json:
        return json.dumps(table, indent=2)
    if fmt is Format.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(table[0]) if table else ["image"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(table)
        return buffer.getvalue()
    tablefmt = "github" if fmt is Format.markdown else "simple"
    return tabulate(
        [_cells(r) for r in table], headers=HEADERS, tablefmt=tablefmt, disable_numparse=True
    )


def tabulate_rows(table: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)
