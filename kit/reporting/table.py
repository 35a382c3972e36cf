"""Pure exporters: results -> text. tabulate is imported here and nowhere else.

A cell is one (image, profile) measurement, repeated; its number is the median over repeats
(for instances, the median of their per-repeat sum), and its speedup carries a bootstrap
interval and a verdict from kit.stats.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tabulate import tabulate

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.flops import gflops
from kit.results import RunResult
from kit.stats import NOISE_HINT, Speedup, Summary, Verdict, compare, is_noisy, summarize

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
    "cv",
    "GFLOP/s",
    "CPU busy in/out",
    "speedup [95% CI]",
    "verdict",
    "status",
)


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@dataclass(frozen=True)
class Cell:
    """One (image, profile) measurement: its runs over every repeat and instance."""

    runs: tuple[RunResult, ...]

    @property
    def first(self) -> RunResult:
        return self.runs[0]

    @property
    def key(self) -> str:
        return self.first.key

    @property
    def instances(self) -> int:
        return self.first.instances

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def samples(self) -> list[float]:
        """images/sec per repeat in which every instance succeeded (instances summed)."""
        by_repeat: dict[int, list[RunResult]] = {}
        for r in self.runs:
            by_repeat.setdefault(r.repeat, []).append(r)
        return [
            sum(r.images_per_sec for r in runs)  # type: ignore[misc]
            for _, runs in sorted(by_repeat.items())
            if all(r.ok and r.images_per_sec for r in runs)
        ]

    def summary(self) -> Summary | None:
        samples = self.samples()
        return summarize(samples) if samples else None


def cells(results: Sequence[RunResult]) -> list[Cell]:
    grouped: dict[tuple[str, str, int], list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (r.cell, r.repeat, r.instance)):
        grouped.setdefault((r.engine, r.key, r.cell), []).append(r)
    return [Cell(tuple(runs)) for runs in grouped.values()]


def cell_keys(key: str, engine: str) -> tuple[str, str]:
    """Names a cell answers to as a baseline: IMAGE:PROFILE, and IMAGE:PROFILE@ENGINE."""
    return key, f"{key}@{engine}"


def baseline_cell(table: Sequence[Cell], baseline: str | None) -> Cell | None:
    """The cell speedups are measured against: ``IMAGE:PROFILE`` if given, else the first cell
    with a measurement."""
    measured = [c for c in table if c.samples()]
    if baseline is None:
        return measured[0] if measured else None
    return next((c for c in measured if baseline in cell_keys(c.key, c.first.engine)), None)


def machine_of(cell: Cell) -> str:
    """The machine a cell ran on (its kernel's boot id, else its engine's name)."""
    return str((cell.first.host or {}).get("boot_id") or cell.first.engine)


def baselines(table: Sequence[Cell], baseline: str | None) -> dict[str, Cell | None]:
    """Each machine's baseline cell, by machine. Engines on one machine (docker and local)
    share one, so their ratio is the container's cost; each other machine is measured against
    its own, unless the baseline names one host (``IMAGE:PROFILE@HOST``)."""
    machines: dict[str, list[Cell]] = {}
    for cell in table:
        machines.setdefault(machine_of(cell), []).append(cell)
    if (baseline is not None and "@" in baseline) or len(machines) == 1:
        base = baseline_cell(table, baseline)
        return dict.fromkeys(machines, base)
    return {m: baseline_cell(cells_, baseline) for m, cells_ in machines.items()}


def best_cells(table: Sequence[Cell]) -> dict[str, Cell]:
    """The fastest valid cell (by median) on each engine, by engine."""
    best: dict[str, Cell] = {}
    for cell in table:
        summary = cell.summary()
        if summary is None or not cell.ok:
            continue
        engine = cell.first.engine
        current = best.get(engine)
        if current is None or summary.median > current.summary().median:  # type: ignore[union-attr]
            best[engine] = cell
    return best


def check_baseline(keys: Sequence[str], baseline: str | None) -> None:
    if baseline is not None and baseline not in keys:
        raise UsageError(
            f"baseline {baseline!r} is not one of the runs",
            f"use IMAGE:PROFILE, one of: {', '.join(dict.fromkeys(keys))}",
        )


def _status(runs: Sequence[RunResult], summary: Summary | None) -> str:
    bad = [r for r in runs if not r.ok]
    if bad:
        first = f"{bad[0].status.value}: {bad[0].error}"
        return first if len(runs) == 1 else f"{len(bad)} of {len(runs)} runs not ok: {first}"
    if summary is not None and is_noisy(summary):
        return f"ok, noisy (cv {summary.cv:.0%}): {NOISE_HINT}"
    return "ok"


def _row(r: RunResult, profile: str) -> dict:
    return {
        "image": r.image,
        "engine": r.engine,
        "tf_version": r.tf_version,
        "profile": profile,
        "cpus": r.cpus,
        "nodes": r.nodes,
        "numactl": r.numactl,
        "memory_policy": r.memory_policy,
        "threads": r.threads,
        "images_per_sec": None,
        "gflops": None,
        "peak_fraction": None,
        "busy_in": None,
        "busy_out": None,
        "min": None,
        "max": None,
        "cv": None,
        "repeats": 0,
        "speedup": None,
        "ci_low": None,
        "ci_high": None,
        "verdict": None,
        "status": "",
        "instance": f"{r.instance}/{r.instances}",
        "best": False,
    }


def _busy(runs: Sequence[RunResult]) -> tuple[float | None, float | None]:
    """Mean busy % of the runs' own CPUs and of the host's others (None: not sampled)."""
    pairs = [r.busy() for r in runs]
    inside = [p[0] for p in pairs if p[0] is not None]
    outside = [p[1] for p in pairs if p[1] is not None]
    return (
        sum(inside) / len(inside) if inside else None,
        sum(outside) / len(outside) if outside else None,
    )


def _measure(
    row: dict,
    summary: Summary | None,
    speedup: Speedup | None,
    runs: Sequence[RunResult] = (),
    peaks: Mapping[str, float] | None = None,
) -> dict:
    if runs:
        row["busy_in"], row["busy_out"] = _busy(runs)
    if summary is not None:
        rate = gflops(summary.median, runs[0].flop_per_image) if runs else None
        peak = (peaks or {}).get(runs[0].image_id or "") if runs else None
        row.update(
            gflops=rate,
            peak_fraction=rate / peak if rate is not None and peak else None,
            images_per_sec=summary.median,
            min=summary.min,
            max=summary.max,
            cv=summary.cv,
            repeats=summary.n,
        )
    if speedup is not None:
        row.update(
            speedup=speedup.ratio,
            ci_low=speedup.low,
            ci_high=speedup.high,
            verdict=speedup.verdict.value,
        )
    return row


def rows(
    results: Sequence[RunResult],
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
) -> list[dict]:
    """One row per cell; a multi-instance cell is its aggregate row followed by one row per
    instance (``#i/n``)."""
    table = cells(results)
    bases = baselines(table, baseline)
    best = best_cells(table) if len(table) > 1 else {}
    per_engine = Counter(cell.first.engine for cell in table)
    out = []
    for cell in table:
        summary = cell.summary()
        samples = cell.samples()
        base = bases[machine_of(cell)]
        base_samples = base.samples() if base else []
        speedup = compare(samples, base_samples) if samples and base_samples else None
        row = _measure(_row(cell.first, cell.first.profile), summary, speedup, cell.runs, peaks)
        row["best"] = best.get(cell.first.engine) is cell
        row["cells_on_host"] = per_engine[cell.first.engine]
        if cell is base:
            row["verdict"] = "baseline"
        row["status"] = _status(cell.runs, summary)
        if cell.instances == 1:
            out.append(row)
            continue
        row.update(
            profile=f"{cell.first.profile} x{cell.instances}",
            cpus=format_cpu_list(c for r in cell.runs for c in parse_cpu_list(r.cpus)),
            nodes=format_cpu_list(n for r in cell.runs if r.nodes for n in parse_cpu_list(r.nodes)),
            memory_policy=", ".join(dict.fromkeys(r.memory_policy for r in cell.runs)),
            threads=f"{cell.first.threads} each",
            instance=f"sum of {cell.instances}",
        )
        out.append(row)
        for i in sorted({r.instance for r in cell.runs}):  # a session in progress lacks some
            runs = [r for r in cell.runs if r.instance == i]
            rates = [r.images_per_sec for r in runs if r.ok and r.images_per_sec]
            sub = _measure(
                _row(runs[0], f"  #{i}/{cell.instances}"),
                summarize(rates) if rates else None,
                None,
                runs,
                peaks,
            )
            sub["status"] = _status(runs, None)
            out.append(sub)
    return out


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _gflops_text(row: dict) -> str:
    if row["gflops"] is None:
        return "-"
    if row["peak_fraction"] is None:
        return f"{row['gflops']:.1f}"
    return f"{row['gflops']:.1f} ({row['peak_fraction']:.0%} of peak)"


def _busy_text(row: dict) -> str:
    if row["busy_in"] is None:
        return "not sampled"
    outside = "-" if row["busy_out"] is None else f"{row['busy_out']:.0f}%"
    return f"{row['busy_in']:.0f}% / {outside}"


def _speedup_text(row: dict) -> str:
    if row["speedup"] is None:
        return "-"
    if row["verdict"] in (Verdict.unknown, "baseline"):
        return f"{row['speedup']:.2f}x"
    return f"{row['speedup']:.2f}x [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def _verdict_text(row: dict) -> str:
    verdict = row["verdict"] or "-"
    # "best" says something only where a host ran more than one cell
    return f"{verdict}, best" if row["best"] and row.get("cells_on_host", 0) > 1 else verdict


def several_hosts(results: Sequence[RunResult]) -> bool:
    return len({r.engine for r in results}) > 1


def headers(results: Sequence[RunResult]) -> tuple[str, ...]:
    """The table's columns: a host column first when the runs were on more than one engine."""
    return ("host", *HEADERS) if several_hosts(results) else HEADERS


def _cells(row: dict, with_host: bool = False) -> list[str]:
    status = row["status"]
    return [
        *([row["engine"]] if with_host else []),
        row["image"],
        row["tf_version"] or "?",
        row["profile"],
        row["cpus"],
        row["nodes"],
        row["numactl"],
        row["memory_policy"],
        row["threads"],
        _num(row["images_per_sec"], ".2f"),
        _num(row["cv"], ".1%") if row["repeats"] and row["repeats"] > 1 else "-",
        _gflops_text(row),
        _busy_text(row),
        _speedup_text(row),
        _verdict_text(row),
        status if len(status) <= 90 else status[:87] + "...",
    ]


def table_cells(
    results: Sequence[RunResult],
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
) -> list[list[str]]:
    """The table as strings, in ``headers(results)`` order (for HTML and other renderers)."""
    several = several_hosts(results)
    return [_cells(r, several) for r in rows(results, baseline, peaks)]


def render(
    results: Sequence[RunResult],
    fmt: Format = Format.table,
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
    wide: bool = True,
) -> str:
    table = rows(results, baseline, peaks)
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
    several = several_hosts(results)
    text = tabulate(
        [_cells(r, several) for r in table],
        headers=headers(results),
        tablefmt=tablefmt,
        disable_numparse=True,
    )
    if several:
        best = tabulate(
            best_per_host(results, table), headers=BEST_HEADERS, tablefmt=tablefmt,
            disable_numparse=True,
        )  # fmt: skip
        text += f"\n\nBest per host:\n{best}"
    return text


BEST_HEADERS = ("host", "machine", "best", "images/sec", "vs its baseline", "vs fastest host")


def best_per_host(results: Sequence[RunResult], table: Sequence[dict]) -> list[list[str]]:
    """Each host's fastest cell, and how the hosts compare on their best."""
    machine = {r.engine: r.host or {} for r in results}
    best = [row for row in table if row["best"]]
    top = max((row["images_per_sec"] for row in best), default=None)
    out = []
    for row in best:
        host = machine.get(row["engine"], {})
        cores = host.get("physical_cores")
        what = ", ".join(
            str(v)
            for v in (host.get("hostname"), host.get("cpu_model"), cores and f"{cores} cores")
            if v
        )
        out.append(
            [
                row["engine"],
                what or "?",
                f"{row['image']}:{row['profile'].strip()}",
                _num(row["images_per_sec"], ".2f"),
                _speedup_text(row),
                f"{row['images_per_sec'] / top:.2f}x" if top else "-",
            ]
        )
    return out


def tabulate_rows(table: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)
