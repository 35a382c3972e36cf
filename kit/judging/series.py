"""A cell over time: every session's measurement of one cell on one machine and workload, in time
order, each point with the provenance that can explain a change. Pure: sessions' runs in, series
out (``kit history --cell``, the change points, the history gate and the results site).

A series is one (machine, engine, cell, workload). It breaks where the workload differs: a
different batch size or warmup is another series, never a change in one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kit.cpus import format_cpu_list
from kit.errors import UsageError, did_you_mean
from kit.judging.cells import cells
from kit.model.footprint import MemoryUse
from kit.model.results import RunResult

CONFIDENCE = 0.95

# What a point's provenance says, in the order a change's explanation names them: the build
# first (what most often moves a number), then the machine, then the settings.
PROVENANCE_FIELDS = (
    "image digest", "TF", "oneDNN", "kit", "CPU", "microcode", "kernel", "governor", "boost",
    "SMT", "THP", "CPUs", "numactl", "memory nodes", "threads", "environment",
)  # fmt: skip


@dataclass(frozen=True)
class SessionRuns:
    """One stored session's runs, with what the session itself records."""

    session_id: str
    started: str
    kit_version: str | None
    runs: tuple[RunResult, ...]
    # oneDNN's version by IMAGE:PROFILE@ENGINE, where a --verify run read it from its log
    onednn: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesKey:
    """What makes two sessions' numbers one series: the same machine, engine, cell and workload."""

    machine: str  # the hostname its runs recorded
    engine: str
    cell: str  # IMAGE:PROFILE
    workload: str  # the workload's description; another one is another series

    @property
    def label(self) -> str:
        return f"{self.cell} on {self.machine} ({self.engine}), {self.workload}"


@dataclass(frozen=True)
class Point:
    """One session's measurement of a series' cell: the geometric mean of its repeats, with a t
    interval on the log mean (the point itself when one repeat gives none)."""

    session_id: str
    started: str
    samples: tuple[float, ...]
    provenance: tuple[tuple[str, str], ...]  # (field, value) in PROVENANCE_FIELDS order
    memory: MemoryUse | None = None  # where its first run's own memory went, per node

    def __post_init__(self) -> None:
        if not self.samples or not all(math.isfinite(v) and v > 0 for v in self.samples):
            raise UsageError(f"point {self.session_id} needs positive samples, not {self.samples}")

    @property
    def value(self) -> float:
        return statistics.geometric_mean(self.samples)

    @property
    def interval(self) -> tuple[float, float]:
        return log_interval(self.samples)

    def said(self, name: str) -> str:
        return dict(self.provenance).get(name, "-")


@dataclass(frozen=True)
class Series:
    key: SeriesKey
    points: tuple[Point, ...]  # oldest first

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points]


def log_interval(samples: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A t interval on the geometric mean (log scale); the mean itself for one sample."""
    logs = [math.log(v) for v in samples]
    centre = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(centre), math.exp(centre)
    from scipy.stats import t as student_t  # noqa: PLC0415 -- heavy: scipy takes ~1 s

    half = float(student_t.ppf(0.5 + confidence / 2, len(logs) - 1))
    half *= statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(centre - half), math.exp(centre + half)


def series_of(sessions: Iterable[SessionRuns]) -> list[Series]:
    """Every series the sessions hold, each in time order (a session's start, then its id)."""
    points: dict[SeriesKey, list[Point]] = {}
    for session in sorted(sessions, key=lambda s: (s.started, s.session_id)):
        for cell in cells(session.runs):
            samples = cell.samples()
            if not samples:  # no successful repeat: the session says nothing of the cell
                continue
            first = cell.first
            key = SeriesKey(_machine(first), cell.engine, cell.key, describe_workload(first))
            onednn = session.onednn.get(f"{cell.key}@{cell.engine}")
            memory = first.footprint.memory if first.footprint else None
            point = Point(session.session_id, session.started, tuple(samples),
                          provenance_of(first, session.kit_version, onednn), memory)  # fmt: skip
            points.setdefault(key, []).append(point)
    return [Series(key, tuple(found)) for key, found in points.items()]


def split_cell(cell: str) -> tuple[str, str]:
    """IMAGE:PROFILE as (image, profile); an image reference may hold a ':' of its own."""
    image, sep, profile = cell.rpartition(":")
    if not (sep and image and profile):
        raise UsageError(f"--cell takes IMAGE:PROFILE, got {cell!r}", "e.g. --cell stock:default")
    return image, profile


def select(found: Sequence[Series], cell: str | None, machine: str | None) -> list[Series]:
    """The series of one cell (IMAGE:PROFILE) and machine, when given."""
    chosen = [
        s
        for s in found
        if (cell is None or s.key.cell == cell) and (machine is None or s.key.machine == machine)
    ]
    if not chosen:
        what = " on ".join(x for x in (cell, machine) if x) or "anything"
        known = ", ".join(dict.fromkeys(f"{s.key.cell} on {s.key.machine}" for s in found))
        near = did_you_mean(cell, {s.key.cell for s in found}) if cell else ""
        raise UsageError(
            f"no session measured {what}",
            f"{near}known: {known}" if known else "run a session first",
        )
    return chosen


def _memory_nodes(run: RunResult) -> str | None:
    """The nodes that held a tenth or more of its own memory: coarse, so that a change names
    memory that moved between nodes, not a share that wobbled."""
    memory = run.footprint.memory if run.footprint else None
    return format_cpu_list(memory.nodes()) if memory and memory.nodes() else None


def _machine(run: RunResult) -> str:
    return str((run.host or {}).get("hostname") or run.engine)


def describe_workload(run: RunResult) -> str:
    """The workload that defines a series: model, mode, batch, timed batches, warmup, format,
    precision, allocator and which benchmark ran it."""
    return run.workload.describe() if run.workload else "workload not recorded"


def provenance_of(
    run: RunResult, kit_version: str | None, onednn: str | None = None
) -> tuple[tuple[str, str], ...]:
    """What a point's first run recorded of its build, machine and settings."""
    host = run.host or {}
    prov = run.provenance or {}
    env = prov.get("env") or run.env or {}
    said: dict[str, object] = {
        "image digest": run.image_id,
        "TF": prov.get("tf_version"),
        "oneDNN": onednn,
        "kit": kit_version,
        "CPU": host.get("cpu_model"),
        "microcode": host.get("microcode"),
        "kernel": host.get("kernel"),
        "governor": host.get("governor"),
        "boost": host.get("boost"),
        "SMT": host.get("smt"),
        "THP": host.get("thp"),
        "CPUs": run.effective_cpus or run.cpus,
        "numactl": run.numactl,
        "memory nodes": _memory_nodes(run),
        "threads": run.threads,
        "environment": " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k != "KIT_FLAVOR"),
    }
    return tuple((f, "-" if said[f] in (None, "") else str(said[f])) for f in PROVENANCE_FIELDS)


def provenance_diff(before: Point, after: Point) -> list[tuple[str, str, str]]:
    """What differs between two points' provenance: (field, before, after), in field order."""
    a, b = dict(before.provenance), dict(after.provenance)
    return [(f, a.get(f, "-"), b.get(f, "-")) for f in PROVENANCE_FIELDS if a.get(f) != b.get(f)]


def explain(diff: Sequence[tuple[str, str, str]], image: str) -> str:
    """A provenance diff in words: "image stock rebuilt (sha256:1234…), TF 2.14.1 -> 2.21.0"."""
    if not diff:
        return "nothing recorded changed around it (the host, or load kit cannot see)"
    words = []
    for name, was, now in diff:
        if name == "image digest":
            words.append(f"image {image} rebuilt ({_short(was)} -> {_short(now)})")
        else:
            words.append(f"{name} {was} -> {now}")
    return ", ".join(words)


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12] if digest != "-" else digest
