"""Pure exporters: results -> text. tabulate is imported here and nowhere else."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from enum import StrEnum

from tabulate import tabulate

from kit.errors import UsageError
from kit.results import RunResult

HEADERS = (
    "image",
    "TF",
    "profile",
    "numactl",
    "cpus",
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


def baseline_result(results: Sequence[RunResult], baseline: str | None) -> RunResult | None:
    """The row speedups are measured against: ``IMAGE:PROFILE`` if given, else the first run
    that succeeded."""
    ok = [r for r in results if r.ok]
    if baseline is None:
        return ok[0] if ok else None
    for result in ok:
        if result.key == baseline:
            return result
    return None


def check_baseline(keys: Sequence[str], baseline: str | None) -> None:
    if baseline is not None and baseline not in keys:
        raise UsageError(
            f"baseline {baseline!r} is not one of the runs",
            f"use IMAGE:PROFILE, one of: {', '.join(dict.fromkeys(keys))}",
        )


def rows(results: Sequence[RunResult], baseline: str | None = None) -> list[dict]:
    base = baseline_result(results, baseline)
    out = []
    for r in results:
        speedup = (
            r.images_per_sec / base.images_per_sec if base and r.ok and r.images_per_sec else None
        )
        out.append(
            {
                "image": r.image,
                "tf_version": r.tf_version,
                "profile": r.profile,
                "numactl": r.numactl,
                "cpus": r.cpus,
                "threads": r.threads,
                "images_per_sec": r.images_per_sec,
                "speedup": speedup,
                "status": r.status.value if r.ok else f"{r.status.value}: {r.error}",
            }
        )
    return out


def _cells(row: dict) -> list[str]:
    rate = row["images_per_sec"]
    speedup = row["speedup"]
    status = row["status"]
    return [
        row["image"],
        row["tf_version"] or "?",
        row["profile"],
        row["numactl"],
        row["cpus"],
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
