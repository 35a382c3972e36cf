"""What a session's cells say beyond the table: what each knob earned (attribution) and how
throughput scales with cores. Pure: cells in, typed findings out.

A cell's factors are its knob values (a sweep's or tune's), else its image and profile (a
compare): ``kit compare stock intel -p default -p tuned`` is then the experiment's story, the
build's share and the settings' share of the speedup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kit.judging.cells import Cell, baseline_cell, best_cells, cell_speedup, cells
from kit.judging.stats import Speedup
from kit.model.results import RunResult

Factors = tuple[tuple[str, str], ...]
UNSET = "unset"  # a knob a cell leaves to its profile (a tune's seed profiles: "-")


def factors_of(cell: Cell) -> Factors:
    knobs = cell.first.knobs
    if knobs:
        if "image" not in knobs:
            return (("image", cell.first.image), *knobs.items())
        return tuple(knobs.items())
    return (("image", cell.first.image), ("profile", cell.first.profile))


@dataclass(frozen=True)
class Change:
    factor: str
    before: str
    after: str

    def describe(self) -> str:
        before, after = (UNSET if v == "-" else v for v in (self.before, self.after))
        return f"{self.factor} {before} -> {after}"


@dataclass(frozen=True)
class Step:
    """One rung of the ladder from baseline to best: these changes, against the rung below."""

    changes: tuple[Change, ...]
    cell: str  # the cell this rung measures (IMAGE:PROFILE)
    speedup: Speedup

    def describe(self) -> str:
        return " + ".join(c.describe() for c in self.changes)


@dataclass(frozen=True)
class Attribution:
    baseline: str
    best: str
    total: Speedup
    alone: tuple[tuple[Change, Speedup | None], ...]  # each change from the baseline by itself
    ladder: tuple[Step, ...]


def attribute(
    results: Sequence[RunResult], baseline: str | None = None, best: str | None = None
) -> Attribution | None:
    """How the best cell's speedup over the baseline splits over its changes; None when there
    is no best cell different from the baseline, or they differ in nothing a factor names.
    ``best`` names the cell (a tune's winner), else it is the fastest by median."""
    table = [c for c in cells(results) if c.samples() and c.ok]
    engines = {c.engine for c in table}
    if len(engines) != 1:
        return None  # engines are different machines: their factors are not knobs
    base = baseline_cell(table, baseline)
    top = best_cells(table).get(next(iter(engines)))
    if best is not None:
        top = next((c for c in table if c.key == best), None)
    if base is None or top is None or top is base:
        return None
    by_factors = {factors_of(c): c for c in table}
    start, goal = dict(factors_of(base)), dict(factors_of(top))
    if start.keys() != goal.keys():
        return None
    changes = [Change(f, start[f], goal[f]) for f in start if start[f] != goal[f]]
    alone = []
    for change in changes:
        cell = by_factors.get(_with(start, [change]))
        alone.append((change, cell_speedup(cell, base) if cell else None))
    ordered = sorted(alone, key=lambda pair: -(pair[1].ratio if pair[1] else 0.0))
    ladder = _ladder(start, base, [c for c, _ in ordered], by_factors)
    total = cell_speedup(top, base)
    return Attribution(base.key, top.key, total, tuple(alone), tuple(ladder))


def _with(values: Mapping[str, str], changes: Sequence[Change]) -> Factors:
    out = dict(values)
    for change in changes:
        out[change.factor] = change.after
    return tuple(out.items())


def _ladder(start, base: Cell, changes: Sequence[Change], by_factors) -> list[Step]:
    """Rungs adding one change at a time, biggest first; a change whose cell was not measured
    joins the next rung that was."""
    steps, below, pending = [], base, []
    for i, change in enumerate(changes):
        pending.append(change)
        cell = by_factors.get(_with(start, changes[: i + 1]))
        if cell is None:
            continue
        steps.append(Step(tuple(pending), cell.key, cell_speedup(cell, below)))
        below, pending = cell, []
    return steps


# --- scaling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    cores: int
    images_per_sec: float
    ideal: float  # linear from the smallest core count
    efficiency: float  # images_per_sec / ideal


@dataclass(frozen=True)
class Curve:
    label: str  # the other factors, held fixed along the curve
    points: tuple[Point, ...]


def scaling(results: Sequence[RunResult]) -> list[Curve]:
    """Images/sec per ``cores`` value, one curve per setting of the other factors."""
    groups: dict[Factors, dict[int, float]] = {}
    for cell in cells(results):
        summary = cell.summary()
        values = dict(factors_of(cell))
        cores = values.pop("cores", None)
        if summary is None or not cell.ok or cores is None or not cores.isdigit():
            continue
        groups.setdefault(tuple(values.items()), {})[int(cores)] = summary.median
    curves = []
    for others, rates in groups.items():
        if len(rates) < 2:
            continue
        least = min(rates)
        per_core = rates[least] / least
        points = tuple(
            Point(n, rate, per_core * n, rate / (per_core * n)) for n, rate in sorted(rates.items())
        )
        curves.append(Curve(" ".join(f"{k}={v}" for k, v in others), points))
    return curves


# --- what the figures draw ---------------------------------------------------------------------


def medians(results: Sequence[RunResult]) -> dict[Factors, float]:
    """Each valid cell's median images/sec, by its factors."""
    out = {}
    for cell in cells(results):
        summary = cell.summary()
        if summary is not None and cell.ok:
            out[factors_of(cell)] = summary.median
    return out


def varying(rates: Mapping[Factors, float]) -> list[str]:
    """The factors that take more than one value, in their order."""
    values: dict[str, set[str]] = {}
    for factors in rates:
        for name, value in factors:
            values.setdefault(name, set()).add(value)
    return [name for name, seen in values.items() if len(seen) > 1]


def over_two(rates: Mapping[Factors, float], x: str, y: str) -> dict[tuple[str, str], float]:
    """Images/sec over two factors, each pair at its best over the others."""
    out: dict[tuple[str, str], float] = {}
    for factors, rate in rates.items():
        values = dict(factors)
        pair = (values[x], values[y])
        out[pair] = max(rate, out.get(pair, 0.0))
    return out


def lines_through_best(rates: Mapping[Factors, float]) -> dict[str, list[tuple[str, float]]]:
    """For each varying factor: images/sec over its values, the others held at the best's."""
    if not rates:
        return {}
    best = dict(max(rates, key=rates.__getitem__))
    out = {}
    for name in varying(rates):
        points = [
            (dict(f)[name], r)
            for f, r in rates.items()
            if all(v == best[k] for k, v in f if k != name)
        ]
        if len(points) > 1:
            out[name] = points
    return out
