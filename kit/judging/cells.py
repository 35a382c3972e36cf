"""The cell model: a session's runs grouped into cells, each one (image, profile) measurement on one
engine over every repeat and instance, and the cells a speedup is measured against. Pure; the
one grouping of samples per cell every reader uses (table, gate, tune, model search, replay)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kit.errors import UsageError
from kit.judging.blocked import compare_blocked
from kit.judging.stats import (
    MIN_PAIRED_ROUNDS,
    Speedup,
    Summary,
    compare,
    compare_paired,
    summarize,
)
from kit.model.results import RunResult


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
        """Its engine's name; a cell spread over machines (``--spread``) is named by them all."""
        return self.first.cell_engine

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
        return list(self.samples_by_repeat().values())

    def samples_by_repeat(self) -> dict[int, float]:
        """The same samples by repeat number, in repeat order."""
        return {
            runs[0].repeat: sum(r.images_per_sec for r in runs)  # type: ignore[misc]
            for runs in self.repeats()
            if all(r.ok and r.images_per_sec for r in runs)
        }

    def blocks(self) -> dict[str, list[float]]:
        """The samples by the machine each repeat was dealt to (``--spread``: a block each)."""
        out: dict[str, list[float]] = {}
        by_repeat = self.samples_by_repeat()
        for runs in self.repeats():
            if runs[0].repeat in by_repeat:
                out.setdefault(runs[0].engine, []).append(by_repeat[runs[0].repeat])
        return out

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


def first_repeats(cell: Cell, n: int) -> Cell:
    """The cell as it stood after its first ``n`` measured repeats."""
    kept = list(cell.samples_by_repeat())[:n]
    return Cell(tuple(r for r in cell.runs if r.repeat in kept))


def cells(results: Sequence[RunResult]) -> list[Cell]:
    grouped: dict[tuple[str, str, int], list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (r.cell, r.repeat, r.instance)):
        grouped.setdefault((r.cell_engine, r.key, r.cell), []).append(r)
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
    """The machine a cell ran on (``HostFacts.machine``: its kernel's boot id, with the CPUs
    allowed when they were part of it), else its engine's name."""
    if cell.first.spread:
        return cell.engine
    host = cell.first.host or {}
    return str(host.get("machine") or host.get("boot_id") or cell.engine)


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


def cell_speedup(cell: Cell, base: Cell, confidence: float = 0.95) -> Speedup | None:
    """The cell over its baseline: within each repeat round where both ran side by side (the
    round a block: the host's drift between rounds cancels), else Welch on their repeats, or
    (both spread over machines) each machine a block; None while a side has no measurement or
    no machine ran both."""
    if not cell.samples() or not base.samples():
        return None
    if cell.first.spread and base.first.spread:
        try:
            return compare_blocked(cell.blocks(), base.blocks(), confidence=confidence)
        except ValueError:
            return None
    pairs = round_pairs(cell, base)
    if len(pairs) >= MIN_PAIRED_ROUNDS:
        return compare_paired(pairs, confidence=confidence)
    return compare(cell.samples(), base.samples(), confidence=confidence)


SIDE_BY_SIDE_S = 60.0  # runs of one round that started within a minute shared the host's state


def round_pairs(cell: Cell, base: Cell) -> list[tuple[float, float]]:
    """(cell, baseline) images/sec of each repeat round both ran in side by side: on one
    machine, not spread, in the same round, and close in time. A round whose two runs started
    far apart (a resumed session, a round the schedule split) shares no host state: left out.
    Empty when the cells are not paired at all (then they are compared unpaired)."""
    if cell.first.spread or base.first.spread or machine_id(cell) != machine_id(base):
        return []
    mine, theirs = cell.samples_by_repeat(), base.samples_by_repeat()
    common = [r for r in mine if r in theirs]
    try:
        at, base_at = _times(cell), _times(base)
    except ValueError:  # a run without its times: no telling which ran side by side
        return []
    gaps = {r: abs(at[r][0] - base_at[r][0]) for r in common}
    if not gaps:
        return []
    walls = [span for r in gaps for times in (at, base_at) for span in (times[r][1],)]
    near = max(3 * statistics.median(gaps.values()), 2 * max(walls), SIDE_BY_SIDE_S)
    return [(mine[r], theirs[r]) for r in common if gaps[r] <= near]


def _times(cell: Cell) -> dict[int, tuple[float, float]]:
    """Each repeat's start (seconds since the epoch) and how long its runs took."""
    out = {}
    for runs in cell.repeats():
        started = [datetime.fromisoformat(r.started).timestamp() for r in runs]
        ended = [datetime.fromisoformat(r.ended).timestamp() for r in runs]
        out[runs[0].repeat] = (min(started), max(ended) - min(started))
    return out
