"""A session's results as typed rows, the one model every exporter serializes. Pure.

A cell is one (image, profile) measurement on one engine, repeated; its number is the median
over repeats (for instances, the median of their per-repeat sum), and its speedup carries an
interval and a verdict from kit.judging.stats. A multi-instance cell's row is followed by one
row per instance.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.judging.blocked import balanced_rate, slow_machines, within_cv
from kit.judging.cells import (
    Cell,
    baselines,
    best_cells,
    cell_speedup,
    cells,
    machine_id,
)
from kit.judging.stats import (
    NOISE_HINT,
    Speedup,
    Summary,
    Verdict,
    is_noisy,
    sequential_confidence,
    summarize,
)
from kit.model.flops import gflops
from kit.model.results import RunResult, Status

UNSETTLED_HINT = (
    "the step time had not settled; use --num-warmup-batches auto, or a longer warmup or more "
    "--num-batches"
)
# A run that warmed up until settled and still trended: only more batches, or a longer fixed
# warmup, can help.
UNSETTLED_AUTO_HINT = (
    "the step time had not settled after a warmup until settled; give more --num-batches, or a "
    "longer fixed warmup (--num-warmup-batches N)"
)
ROW_SCHEMA = 6  # the JSON and CSV exports' version (docs/exports.md)


class RowKind(StrEnum):
    cell = "cell"
    instance = "instance"  # one instance of a multi-instance cell


class RowStatus(StrEnum):
    ok = "ok"
    noisy = "noisy"  # ok, but the repeats vary more than a verdict can bear
    unsettled = "unsettled"  # ok, but the timed batches' speed still moved: no steady state
    invalid = "INVALID"
    failed = "failed"
    timed_out = "timed out"
    disturbed = "disturbed"
    lost = "lost"


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
    confidence: float | None  # the interval's (above 95% when repeats stopped adaptively)
    verdict: Verdict | None
    baseline: bool
    best: bool  # the fastest valid cell on its engine (of a table of several)
    paired_rounds: int  # the speedup compared within this many repeat rounds; 0: unpaired
    status: RowStatus
    status_detail: str | None  # why it is not ok, or what to do about the noise
    knobs: Mapping[str, str] = field(default_factory=dict)  # a sweep's knob values for the cell
    mode: str = "train"  # train, or infer (whose latency the table shows)
    unit: str = "images/sec"  # what images_per_sec counts: GB/s for the bandwidth workload
    latency_p50: float | None = None  # per-batch ms, median over repeats
    latency_p99: float | None = None
    # Where its memory and threads went (kit.model.footprint), the median over its runs; the
    # share of its own memory on each NUMA node from its first run that read it.
    per_cpu: float | None = None  # images_per_sec over the CPUs its runs had (a quota's)
    memory_mb: float | None = None
    memory_share: Mapping[str, float] = field(default_factory=dict)
    process_threads: int | None = None
    busy_threads: int | None = None
    openmp_team: int | None = None
    switches_per_s: float | None = None
    idle_cpus: str = ""  # CPUs of its own that sat idle in the timed batches
    # Under a CPU quota: the share of CFS periods the kernel throttled it in, and for how long
    throttled_share: float | None = None
    throttled_s: float | None = None

    @property
    def label(self) -> str:
        """What the row is called in the table: a multi-instance cell is ``PROFILE xN``."""
        if self.kind is RowKind.instance:
            return f"  #{self.instance}/{self.instances}"
        return f"{self.profile} x{self.instances}" if self.instances > 1 else self.profile


def _status(runs: Sequence[RunResult], summary: Summary | None) -> tuple[RowStatus, str | None]:
    bad = [r for r in runs if not r.ok]
    if bad:
        first = f"{bad[0].status.value}: {bad[0].error}"
        detail = first if len(runs) == 1 else f"{len(bad)} of {len(runs)} runs not ok: {first}"
        return RowStatus(bad[0].status.value), detail
    unsettled = [(r, why) for r in runs if (why := r.unsettled())]
    if unsettled:
        share = f"{len(unsettled)} of {len(runs)} runs: " if len(runs) > 1 else ""
        run, why = unsettled[0]
        auto = (run.warmup or {}).get("mode") == "auto"
        return (
            RowStatus.unsettled,
            f"{share}{why}: {UNSETTLED_AUTO_HINT if auto else UNSETTLED_HINT}",
        )
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


def _median(values: Sequence[float | int | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def _footprint(runs: Sequence[RunResult]) -> dict[str, object]:
    """The Row fields of where the runs' memory and threads went."""
    memory = [r.footprint.memory for r in runs if r.footprint and r.footprint.memory]
    threads = [r.footprint.threads for r in runs if r.footprint and r.footprint.threads]
    mb = _median([m.total_kb / 1024 for m in memory])
    counts = {
        name: _median([getattr(t, name) for t in threads])
        for name in ("threads", "busy_threads", "openmp_team")
    }
    return dict(
        memory_mb=round(mb, 1) if mb is not None else None,
        memory_share={str(n): round(v, 4) for n, v in memory[0].shares().items()} if memory else {},
        process_threads=_int(counts["threads"]), busy_threads=_int(counts["busy_threads"]),
        openmp_team=_int(counts["openmp_team"]),
        switches_per_s=_median([t.switches_per_s for t in threads]),
        idle_cpus=format_cpu_list(threads[0].idle_cpus) if threads else "",
        throttled_share=_median([t.throttled_share for t in threads]),
        throttled_s=_median([t.throttled_s for t in threads]),
    )  # fmt: skip


def _per_cpu(runs: Sequence[RunResult], rate: float | None) -> float | None:
    """The rate over the CPUs one repeat's runs had together (each instance its own)."""
    if rate is None:
        return None
    first = {r.instance: r for r in runs if r.repeat == runs[0].repeat}
    cpus = sum(r.cpus_used for r in first.values())
    return round(rate / cpus, 4) if cpus else None


def _int(value: float | None) -> int | None:
    return round(value) if value is not None else None


def _row(kind: RowKind, runs: Sequence[RunResult], m: _Measured, speedup: Speedup | None,
         **fields: object) -> Row:  # fmt: skip
    r, s = runs[0], m.summary
    host = ", ".join(r.spread) if r.spread else str((r.host or {}).get("hostname") or r.engine)
    values: dict[str, object] = dict(
        kind=kind, engine=r.cell_engine, host=host,
        image=r.image, tf_version=r.tf_version, profile=r.profile, instance=None, knobs=r.knobs,
        instances=r.instances, cpus=r.cpus, nodes=r.nodes, numactl=r.numactl,
        memory_policy=r.memory_policy, threads=r.threads,
        images_per_sec=s.median if s else None, min=s.min if s else None,
        max=s.max if s else None, cv=s.cv if s else None, repeats=s.n if s else 0,
        gflops=m.gflops, peak_fraction=m.peak_fraction, busy_in=m.busy[0], busy_out=m.busy[1],
        speedup=speedup.ratio if speedup else None, ci_low=speedup.low if speedup else None,
        ci_high=speedup.high if speedup else None,
        confidence=speedup.confidence if speedup else None,
        verdict=speedup.verdict if speedup else None,
        paired_rounds=speedup.rounds if speedup else 0, baseline=False, best=False,
        mode=r.workload.mode.value if r.workload else "train", unit=r.unit,
        latency_p50=_latency(runs, "p50"), latency_p99=_latency(runs, "p99"),
        per_cpu=_per_cpu(runs, s.median if s else None),
        **_footprint(runs),
    )  # fmt: skip
    status, detail = _status(runs, s if kind is RowKind.cell else None)
    values.update(status=status, status_detail=detail, **fields)
    return Row(**values)  # type: ignore[arg-type]


def _spread_measured(cell: Cell, measured: _Measured) -> tuple[_Measured, dict[str, str]]:
    """A --spread cell's rate weighs every machine alike (a cell dealt twice to the slower one
    is not slower for it), as its speedup does; its noise is what repeats on one machine vary
    by, as the machines' offsets are not noise (a machine slower than its peers is said apart,
    kit.judging.blocked.slow_machines). And the CPUs each machine ran it on."""
    blocks, summary = cell.blocks(), measured.summary
    assert summary is not None
    within = within_cv(blocks)
    level = min(max(balanced_rate(blocks), summary.min), summary.max)  # float rounding
    summary = replace(summary, median=level, cv=summary.cv if within is None else within)
    return replace(measured, summary=summary), {r.engine: r.cpus for r in cell.runs}


def _cell_rows(cell: Cell, base: Cell | None, best: bool, peaks) -> list[Row]:
    samples = cell.samples()
    looks = max(r.looks for r in (*cell.runs, *(base.runs if base is not None else ())))
    confidence = sequential_confidence(looks)
    speedup = cell_speedup(cell, base, confidence) if base is not None else None
    measured = _measured(cell.runs, samples, peaks)
    extra: dict[str, object] = {"baseline": cell is base, "best": best}
    if cell.first.spread and measured.summary is not None:
        measured, where = _spread_measured(cell, measured)
        if len(set(where.values())) > 1:  # each machine's runs on its own CPUs
            extra["cpus"] = " ".join(f"{m}:{cpus}" for m, cpus in sorted(where.items()))
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
    for r in results:
        if r.spread:
            hosts[r.cell_engine] = {**(r.host or {}), "hostname": ", ".join(r.spread)}
    best = [row for row in table if row.best and row.images_per_sec is not None]
    top = max((row.images_per_sec for row in best), default=0.0)  # type: ignore[type-var]
    out = []
    for row in best:
        host = hosts.get(row.engine, {})
        cores = host.get("physical_cores")
        usable = host.get("usable_cpus")
        size = f"CPU {usable}" if usable else cores and f"{cores} cores"
        parts = (host.get("hostname"), host.get("cpu_model"), size)
        out.append(
            BestRow(
                row.engine, ", ".join(str(v) for v in parts if v) or "?",
                f"{row.image}:{row.profile}", row.images_per_sec, row.speedup,  # type: ignore[arg-type]
                row.ci_low, row.ci_high, row.verdict, row.images_per_sec / top,  # type: ignore[operator]
            )
        )  # fmt: skip
    return out


def several_engines(results: Sequence[RunResult]) -> bool:
    """Rows of several engines (a --spread campaign's machines are one)."""
    return len({r.cell_engine for r in results}) > 1


def shape_line(results: Sequence[RunResult]) -> str | None:
    """The campaign's shape, for the table's header, when it ran on several machines: each ran
    the whole plan (compare machines), or the cells were dealt over alike ones (--spread)."""
    spread = next((r.spread for r in results if r.spread), ())
    if spread:
        return (f"spread over alike machines {', '.join(spread)}: one row per cell, its repeats "
                "dealt over them and compared within each machine")  # fmt: skip
    machines = {str((r.host or {}).get("machine") or r.engine) for r in results}
    if len(machines) > 1:
        return "compare machines: each ran the whole plan; one row per machine and cell"
    return None


def spread_notes(results: Sequence[RunResult]) -> list[str]:
    """A machine of a --spread campaign that ran slower than its peers in every cell."""
    spread = [c.blocks() for c in cells(results) if c.first.spread]
    return [slow.line for slow in slow_machines(spread)] if spread else []
