"""A session's results as typed rows, the one model every exporter serializes. Pure.

A cell is one (image, profile) measurement on one engine, repeated; its number is the median
over repeats (for instances, the median of their per-repeat sum), and its speedup carries an
interval and a verdict from kit.stats. A multi-instance cell's row is followed by one row per
instance.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.flops import gflops
from kit.results import RunResult, Status
from kit.stats import (
    NOISE_HINT,
    Speedup,
    Summary,
    Verdict,
    compare,
    is_noisy,
    sequential_confidence,
    summarize,
)

ROW_SCHEMA = 4  # the JSON and CSV exports' version (README: "Exported rows")


class RowKind(StrEnum):
    cell = "cell"
    instance = "instance"  # one instance of a multi-instance cell


class RowStatus(StrEnum):
    ok = "ok"
    noisy = "noisy"  # ok, but the repeats vary more than a verdict can bear
    invalid = "INVALID"
    failed = "failed"
    timed_out = "timed out"


@dataclass(frozen=True)
class Cell:
    """One (image, profile) measurement on one engine: its runs over every repeat and instance."""

    runs: tuple[RunResult, ...]

    @property
    def first(self) -> RunResult:
        return self.runs[0]

    @property
    def key(self) -> str:
        return self.first.key

    @property
    def engine(self) -> str:
        return self.first.engine

    @property
    def instances(self) -> int:
        return self.first.instances

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def repeats(self) -> list[list[RunResult]]:
        """The runs of each repeat (its instances), in repeat order."""
        by_repeat: dict[int, list[RunResult]] = {}
        for r in self.runs:
            by_repeat.setdefault(r.repeat, []).append(r)
        return [runs for _, runs in sorted(by_repeat.items())]

    def samples(self) -> list[float]:
        """images/sec per repeat in which every instance succeeded (instances summed)."""
        return [
            sum(r.images_per_sec for r in runs)  # type: ignore[misc]
            for runs in self.repeats()
            if all(r.ok and r.images_per_sec for r in runs)
        ]

    def summary(self) -> Summary | None:
        samples = self.samples()
        return summarize(samples) if samples else None

    def latencies(self, percentile: str) -> list[float]:
        """A latency percentile (ms) per repeat in which every instance succeeded and reported
        one: the worst instance's, since a request waits for the slowest."""
        out = []
        for runs in self.repeats():
            values = [r.latency(percentile) for r in runs if r.ok]
            if len(values) == len(runs) and all(v is not None for v in values):
                out.append(max(values))  # type: ignore[type-var]
        return out


@dataclass(frozen=True)
class Row:
    kind: RowKind
    engine: str
    host: str  # the machine the engine runs on, by hostname
    image: str
    tf_version: str | None
    profile: str
    instance: int | None  # for an instance row
    instances: int
    cpus: str
    nodes: str
    numactl: str
    memory_policy: str
    threads: str
    images_per_sec: float | None
    min: float | None
    max: float | None
    cv: float | None
    repeats: int
    gflops: float | None
    peak_fraction: float | None
    busy_in: float | None
    busy_out: float | None
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: Verdict | None
    baseline: bool
    best: bool  # the fastest valid cell on its engine (of a table of several)
    status: RowStatus
    status_detail: str | None  # why it is not ok, or what to do about the noise
    knobs: Mapping[str, str] = field(default_factory=dict)  # a sweep's knob values for the cell
    mode: str = "train"  # train, or infer (whose latency the table shows)
    latency_p50: float | None = None  # per-batch ms, median over repeats
    latency_p99: float | None = None

    @property
    def label(self) -> str:
        """What the row is called in the table: a multi-instance cell is ``PROFILE xN``."""
        if self.kind is RowKind.instance:
            return f"  #{self.instance}/{self.instances}"
        return f"{self.profile} x{self.instances}" if self.instances > 1 else self.profile


def cells(results: Sequence[RunResult]) -> list[Cell]:
    grouped: dict[tuple[str, str, int], list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (r.cell, r.repeat, r.instance)):
        grouped.setdefault((r.engine, r.key, r.cell), []).append(r)
    return [Cell(tuple(runs)) for runs in grouped.values()]


def cell_keys(key: str, engine: str) -> tuple[str, str]:
    """Names a cell answers to as a baseline: IMAGE:PROFILE, and IMAGE:PROFILE@ENGINE."""
    return key, f"{key}@{engine}"


def check_baseline(keys: Sequence[str], baseline: str | None) -> None:
    if baseline is not None and baseline not in keys:
        raise UsageError(
            f"baseline {baseline!r} is not one of the runs",
            f"use IMAGE:PROFILE, one of: {', '.join(dict.fromkeys(keys))}",
        )


def baseline_cell(table: Sequence[Cell], baseline: str | None) -> Cell | None:
    """The cell speedups are measured against: ``IMAGE:PROFILE`` if given, else the first cell
    with a measurement."""
    measured = [c for c in table if c.samples()]
    if baseline is None:
        return measured[0] if measured else None
    return next((c for c in measured if baseline in cell_keys(c.key, c.engine)), None)


def machine_id(cell: Cell) -> str:
    """The machine a cell ran on: its kernel's boot id, else its engine's name."""
    return str((cell.first.host or {}).get("boot_id") or cell.engine)


def baselines(table: Sequence[Cell], baseline: str | None) -> dict[str, Cell | None]:
    """Each machine's baseline cell, by machine. Engines on one machine (docker and local)
    share one, so their ratio is the container's cost; each other machine is measured against
    its own, unless the baseline names one engine (``IMAGE:PROFILE@ENGINE``)."""
    machines: dict[str, list[Cell]] = {}
    for cell in table:
        machines.setdefault(machine_id(cell), []).append(cell)
    if (baseline is not None and "@" in baseline) or len(machines) == 1:
        return dict.fromkeys(machines, baseline_cell(table, baseline))
    return {m: baseline_cell(cells_, baseline) for m, cells_ in machines.items()}


def best_cells(table: Sequence[Cell]) -> dict[str, Cell]:
    """The fastest valid cell (by median) on each engine, by engine (none for a lone cell)."""
    best: dict[str, tuple[float, Cell]] = {}
    for cell in table if len(table) > 1 else ():
        summary = cell.summary()
        if summary is None or not cell.ok:
            continue
        if cell.engine not in best or summary.median > best[cell.engine][0]:
            best[cell.engine] = (summary.median, cell)
    return {engine: cell for engine, (_, cell) in best.items()}


def _status(runs: Sequence[RunResult], summary: Summary | None) -> tuple[RowStatus, str | None]:
    bad = [r for r in runs if not r.ok]
    if bad:
        first = f"{bad[0].status.value}: {bad[0].error}"
        detail = first if len(runs) == 1 else f"{len(bad)} of {len(runs)} runs not ok: {first}"
        return RowStatus(bad[0].status.value), detail
    if summary is not None and is_noisy(summary):
        return RowStatus.noisy, f"cv {summary.cv:.0%}: {NOISE_HINT}"
    return RowStatus.ok, None


def _busy(runs: Sequence[RunResult]) -> tuple[float | None, float | None]:
    """Mean busy % of the runs' own CPUs and of the host's others (None: not sampled)."""
    pairs = [r.busy() for r in runs]
    inside = [p[0] for p in pairs if p[0] is not None]
    outside = [p[1] for p in pairs if p[1] is not None]
    return (
        sum(inside) / len(inside) if inside else None,
        sum(outside) / len(outside) if outside else None,
    )


@dataclass(frozen=True)
class _Measured:
    """What a group of runs measured, as the numbers a row carries."""

    summary: Summary | None
    gflops: float | None
    peak_fraction: float | None
    busy: tuple[float | None, float | None]


def _measured(runs: Sequence[RunResult], rates: Sequence[float], peaks) -> _Measured:
    summary = summarize(rates) if rates else None
    rate = gflops(summary.median, runs[0].flop_per_image) if summary else None
    peak = (peaks or {}).get(runs[0].image_id or "")
    return _Measured(summary, rate, rate / peak if rate is not None and peak else None, _busy(runs))


def _latency(runs: Sequence[RunResult], percentile: str) -> float | None:
    """The median over ok runs of their per-batch latency percentile, None if none report it."""
    values = [v for r in runs if r.ok and (v := r.latency(percentile)) is not None]
    return statistics.median(values) if values else None


def _row(kind: RowKind, runs: Sequence[RunResult], m: _Measured, speedup: Speedup | None,
         **fields: object) -> Row:  # fmt: skip
    r, s = runs[0], m.summary
    values: dict[str, object] = dict(
        kind=kind, engine=r.engine, host=str((r.host or {}).get("hostname") or r.engine),
        image=r.image, tf_version=r.tf_version, profile=r.profile, instance=None, knobs=r.knobs,
        instances=r.instances, cpus=r.cpus, nodes=r.nodes, numactl=r.numactl,
        memory_policy=r.memory_policy, threads=r.threads,
        images_per_sec=s.median if s else None, min=s.min if s else None,
        max=s.max if s else None, cv=s.cv if s else None, repeats=s.n if s else 0,
        gflops=m.gflops, peak_fraction=m.peak_fraction, busy_in=m.busy[0], busy_out=m.busy[1],
        speedup=speedup.ratio if speedup else None, ci_low=speedup.low if speedup else None,
        ci_high=speedup.high if speedup else None, verdict=speedup.verdict if speedup else None,
        baseline=False, best=False, mode=str((r.workload or {}).get("mode") or "train"),
        latency_p50=_latency(runs, "p50"), latency_p99=_latency(runs, "p99"),
    )  # fmt: skip
    status, detail = _status(runs, s if kind is RowKind.cell else None)
    values.update(status=status, status_detail=detail, **fields)
    return Row(**values)  # type: ignore[arg-type]


def _cell_rows(cell: Cell, base: Cell | None, best: bool, peaks) -> list[Row]:
    samples = cell.samples()
    base_samples = base.samples() if base is not None else []
    looks = max(r.looks for r in (*cell.runs, *(base.runs if base is not None else ())))
    confidence = sequential_confidence(looks)
    both = samples and base_samples
    speedup = compare(samples, base_samples, confidence=confidence) if both else None
    measured = _measured(cell.runs, samples, peaks)
    extra: dict[str, object] = {"baseline": cell is base, "best": best}
    if cell.instances > 1:
        runs = cell.runs
        extra.update(
            cpus=format_cpu_list(c for r in runs for c in parse_cpu_list(r.cpus)),
            nodes=format_cpu_list(n for r in runs if r.nodes for n in parse_cpu_list(r.nodes)),
            memory_policy=", ".join(dict.fromkeys(r.memory_policy for r in runs)),
            threads=f"{cell.first.threads} each",
        )
    out = [_row(RowKind.cell, cell.runs, measured, speedup, **extra)]
    if cell.instances == 1:
        return out
    for i in sorted({r.instance for r in cell.runs}):  # a session in progress lacks some
        runs = [r for r in cell.runs if r.instance == i]
        rates = [r.images_per_sec for r in runs if r.status is Status.ok and r.images_per_sec]
        out.append(_row(RowKind.instance, runs, _measured(runs, rates, peaks), None, instance=i))
    return out


def rows(
    results: Sequence[RunResult],
    baseline: str | None = None,
    peaks: Mapping[str, float] | None = None,
) -> list[Row]:
    """One row per cell, a multi-instance cell followed by one row per instance."""
    table = cells(results)
    bases = baselines(table, baseline)
    best = best_cells(table)
    out: list[Row] = []
    for cell in table:
        out += _cell_rows(cell, bases[machine_id(cell)], best.get(cell.engine) is cell, peaks)
    return out


@dataclass(frozen=True)
class BestRow:
    """An engine's fastest cell, and how the engines compare on their best."""

    engine: str
    host: str  # hostname, CPU model, cores
    cell: str
    images_per_sec: float
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: Verdict | None
    of_fastest: float


def best_rows(results: Sequence[RunResult], table: Sequence[Row]) -> list[BestRow]:
    hosts = {r.engine: r.host or {} for r in results}
    best = [row for row in table if row.best and row.images_per_sec is not None]
    top = max((row.images_per_sec for row in best), default=0.0)  # type: ignore[type-var]
    out = []
    for row in best:
        host = hosts.get(row.engine, {})
        cores = host.get("physical_cores")
        parts = (host.get("hostname"), host.get("cpu_model"), cores and f"{cores} cores")
        out.append(
            BestRow(
                row.engine, ", ".join(str(v) for v in parts if v) or "?",
                f"{row.image}:{row.profile}", row.images_per_sec, row.speedup,  # type: ignore[arg-type]
                row.ci_low, row.ci_high, row.verdict, row.images_per_sec / top,  # type: ignore[operator]
            )
        )  # fmt: skip
    return out


def several_engines(results: Sequence[RunResult]) -> bool:
    return len({r.engine for r in results}) > 1
