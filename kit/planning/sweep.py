"""A sweep's grid: the cross product of knob values on a base profile, filtered by ``--where``,
with cells that cannot differ merged. Pure: the host comes in as a topology.

Two cells cannot differ when their runs, placed on this host, are the same once what cannot act
is left out: variables the build never reads (kit.model.acts: KMP_* and OMP_* where oneDNN runs on
TF's threadpool, ZENDNN_* off zentf, ...), a memory policy on a one-node host, or values that
resolve to the same thing (``intra={cores}`` and ``intra=2`` on two cores, ``smt=one`` on a host
without SMT). The first such cell is run; the others are said.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from kit.errors import UsageError
from kit.host.topology import Topology
from kit.model.acts import Needs, describe_inert, inert
from kit.model.flavors import resolve_image
from kit.model.profiles import Profile
from kit.model.spec import ImageRef, RunSpec
from kit.model.workload import WorkloadSpec
from kit.planning.knobs import KnobKind, KnobValues, apply, describe
from kit.planning.placement import CpuSelection, select_cpus
from kit.planning.plan import build_plan, placement_for

MAX_CELLS = 512


@dataclass(frozen=True)
class Sweep:
    """Knob values to cross on the base profile (``kit sweep``), cells kept by ``where``."""

    knobs: tuple[KnobValues, ...]
    where: str | None = None
    seeds: tuple[str, ...] = ()  # whole profiles run beside the grid (a tune's built-ins)

    def __post_init__(self) -> None:
        if not self.knobs and not self.seeds:
            raise UsageError("a sweep needs a knob", "e.g. --knob intra=1,2,{cores}")


@dataclass(frozen=True)
class SweepCell:
    image: str
    values: tuple[tuple[str, str], ...]  # (knob, value) in the order the knobs were given
    profile: Profile  # the base with every non-image knob applied, named by its values

    @property
    def key(self) -> str:
        return f"{self.image}:{self.profile.name}"

    def value(self, knob: str) -> str | None:
        return dict(self.values).get(knob)


@dataclass(frozen=True)
class Merged:
    cell: SweepCell
    into: SweepCell
    reason: str

    def describe(self) -> str:
        return f"{self.cell.key} runs as {self.into.key}: {self.reason}"


@dataclass(frozen=True)
class Grid:
    knobs: tuple[str, ...]
    cells: tuple[SweepCell, ...]
    merged: tuple[Merged, ...] = ()
    left_out: int = 0  # cells --where removed

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.image for c in self.cells))

    @property
    def profiles(self) -> tuple[Profile, ...]:
        return tuple({c.profile.name: c.profile for c in self.cells}.values())

    @property
    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.image, c.profile.name) for c in self.cells)

    def lines(self) -> list[str]:
        """What the sweep runs, and the cells it does not run twice, as said before it runs."""
        head = (
            f"sweep: {len(self.cells)} cell(s) of {', '.join(self.knobs)}"
            + (f"; --where left out {self.left_out}" if self.left_out else "")
            + (f"; {len(self.merged)} merged into cells that run the same:" if self.merged else "")
        )
        return [head, *(f"  {m.describe()}" for m in self.merged)]

    def knob_values(self) -> dict[str, dict[str, str]]:
        """Cell key -> its knob values (what the store and the table show)."""
        return {c.key: dict(c.values) for c in self.cells}


def expand(
    images: Sequence[str],
    knobs: Sequence[KnobValues],
    base: Profile,
    topology: Topology,
    selection: CpuSelection,
    where: str | None = None,
    seeds: Sequence[Profile] = (),
) -> tuple[list[SweepCell], int]:
    """Every combination of knob values on ``base`` for every image, in a stable order, that
    ``where`` keeps; and how many combinations there were. ``seeds`` (a tune's) are whole
    profiles run beside the grid, first: their knobs are unset (``-``), their factor the
    ``profile`` they are (the grid's cells have the base's)."""
    if len({k.knob.name for k in knobs}) != len(knobs):
        raise UsageError("a knob is given twice", "give each knob once, with all its values")
    values = placement_for(topology, select_cpus(topology, selection)).values()
    axes = [(k.knob, k.resolve(values)) for k in knobs]
    image_axis = next((vals for knob, vals in axes if knob.kind is KnobKind.image), None)
    axes = [(knob, vals) for knob, vals in axes if knob.kind is not KnobKind.image]
    total = len(image_axis or images) * (_product(len(v) for _, v in axes) + len(seeds))
    if total > MAX_CELLS:
        raise UsageError(
            f"the sweep has {total} cells, more than {MAX_CELLS}",
            "give fewer values, narrow it with --where, or use `kit tune`",
        )
    test = _condition(where, values, [k.knob.name for k in knobs]) if where else None
    cells = []
    for image in image_axis or images:
        resolve_image(image)  # a bad reference is refused before anything runs
        lead = (("image", image),) if image_axis else ()
        for seed in seeds:
            unset = ((knob.name, "-") for knob, _ in axes)
            cells.append(SweepCell(image, values := (*lead, ("profile", seed.name), *unset),
                                   replace(seed, knobs=values)))  # fmt: skip
        if seeds:
            lead = (*lead, ("profile", base.name))
        for combo in itertools.product(*(vals for _, vals in axes)):
            named = tuple((knob.name, value) for (knob, _), value in zip(axes, combo, strict=True))
            shown = (*lead, *named)
            if test is not None and not test(dict(shown)):
                continue
            profile = base
            for (knob, _), value in zip(axes, combo, strict=True):
                profile = apply(profile, knob, value)
            cells.append(SweepCell(image, shown, _renamed(profile, shown, base)))
    return cells, total


def _renamed(profile: Profile, values: tuple[tuple[str, str], ...], base: Profile) -> Profile:
    name = describe([(k, v) for k, v in values if k not in ("image", "profile")]) or base.name
    return replace(
        profile, name=name, description=f"{base.name} with {name}", knobs=values, source="sweep"
    )


def _product(sizes) -> int:
    out = 1
    for size in sizes:
        out *= size
    return out


def grid(
    images: Sequence[str],
    knobs: Sequence[KnobValues],
    base: Profile,
    topology: Topology,
    workload: WorkloadSpec,
    selection: CpuSelection | None = None,
    where: str | None = None,
    seeds: Sequence[Profile] = (),
) -> Grid:
    """The cells to run on this host, equivalent ones merged."""
    selection = selection or CpuSelection()
    every, total = expand(images, knobs, base, topology, selection, where, seeds)
    if not every:
        raise UsageError(
            f"--where {where!r} leaves no cell to run", "loosen the condition or give more values"
        )
    names = tuple(dict.fromkeys(name for c in every for name, _ in c.values))
    # User knobs that say what they need of the build (acts = "openmp", ...).
    declared = {k.knob.target: Needs(k.knob.acts.value) for k in knobs
                if k.knob.kind is KnobKind.env and k.knob.acts.value in set(Needs)}  # fmt: skip
    kept, merged = merge_cells(every, workload, topology, selection, declared)
    return Grid(names, tuple(kept), tuple(merged), total - len(every))


def merge_cells(
    every: Sequence[SweepCell],
    workload: WorkloadSpec,
    topology: Topology,
    selection: CpuSelection,
    declared: Mapping[str, Needs] | None = None,
) -> tuple[list[SweepCell], list[Merged]]:
    """The cells that can differ on this host, and each one merged into the first that runs
    the same (placed here, compared as runs): a sweep's, and a compare's images x profiles."""
    kept: dict[tuple, SweepCell] = {}
    merged = []
    for cell in every:
        runs = _runs_of(cell, workload, topology, selection)
        key, plain = _effect(runs, topology, declared), _settings(runs)
        if key in kept:
            into = kept[key]
            theirs = _runs_of(into, workload, topology, selection)
            mine_env, their_env = runs[0].profile.env, theirs[0].profile.env
            dropped = {k: why for k, why in {**_inert(theirs, declared), **_inert(runs, declared)}
                       .items() if mine_env.get(k) != their_env.get(k)}  # fmt: skip
            reason = _why(plain, _settings(theirs), dropped, runs[0].image.label)
            merged.append(Merged(cell, into, reason))
        else:
            kept[key] = cell
    return list(kept.values()), merged


def _runs_of(cell: SweepCell, workload, topology, selection) -> list[RunSpec]:
    try:
        return build_plan([cell.image], [cell.profile], workload, topology, selection)
    except UsageError as exc:
        raise UsageError(f"cell {cell.key}: {exc.message}", exc.hint) from None


class _RunSettings(NamedTuple):
    """What one planned run sets, for telling cells apart."""

    image: ImageRef
    cpus: tuple[int, ...]
    effective_cpus: tuple[int, ...] | None
    mems: tuple[int, ...] | None
    env: tuple[tuple[str, str], ...]
    inter_op: int | None
    intra_op: int | None
    numactl: tuple[str, ...]
    workload: WorkloadSpec
    instances: int
    cpu_quota: float | None


def _settings(runs: Sequence[RunSpec], drop_env=frozenset(), drop_numa=False) -> tuple:
    out = []
    for s in runs:
        env = tuple(sorted((k, v) for k, v in s.profile.env.items() if k not in drop_env))
        numa = s.profile.numa
        argv = numa.argv() if not drop_numa else ((numa.physcpubind,) if numa.physcpubind else ())
        out.append(
            _RunSettings(s.image, s.cpus, s.effective_cpus, s.mems, env, s.profile.inter_op,
                         s.profile.intra_op, argv, s.workload, s.instances, s.limits.cpu_quota)
        )  # fmt: skip
    return tuple(out)


def _inert(runs: Sequence[RunSpec], declared: Mapping[str, Needs] | None) -> dict[str, str]:
    return inert(runs[0].image, runs[0].profile.env, declared)


def _effect(runs: Sequence[RunSpec], topology: Topology, declared) -> tuple:
    """What the runs can change: their settings less what cannot act on this build and host."""
    drop = frozenset(_inert(runs, declared))
    return _settings(runs, drop, drop_numa=len(topology.node_ids) == 1)


def _why(mine: tuple, theirs: tuple, dropped: Mapping[str, str], image: str) -> str:
    if mine == theirs:
        return "the same runs once placeholders resolve on this host"
    if [s._replace(numactl=()) for s in mine] == [s._replace(numactl=()) for s in theirs]:
        return "this host has one NUMA node, so memory policies cannot differ"
    return describe_inert(dropped, image)


# --- --where -----------------------------------------------------------------------------------

_OPERATORS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Add: operator.add, ast.Sub: operator.sub,
    ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}  # fmt: skip


def _condition(text: str, placeholders: Mapping[str, int], knobs: Sequence[str]):
    """``--where`` as a test of one cell's knob values (numbers compare as numbers), which may
    also name the host's placeholders (``cores``, ``threads``, ``nodes``)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise UsageError(
            f"--where {text!r} is not an expression", "e.g. --where 'inter * intra <= threads'"
        ) from None
    known = {*placeholders, *knobs}
    unknown = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - known)
    if unknown:
        raise UsageError(
            f"--where {text!r} names {', '.join(unknown)}, neither a swept knob nor a placeholder",
            f"use {', '.join(sorted(known))}",
        )

    def test(values: Mapping[str, str]) -> bool:
        names = {**placeholders, **{k: _number(v) for k, v in values.items()}}
        return bool(_evaluate(tree.body, names, text))

    return test


def _number(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _evaluate(node: ast.AST, names: Mapping[str, object], text: str) -> object:
    match node:
        case ast.Constant(value=value) if isinstance(value, int | str):
            return value
        case ast.Name(id=name):
            return names[name]
        case ast.BoolOp(op=ast.And(), values=parts):
            return all(_evaluate(p, names, text) for p in parts)
        case ast.BoolOp(op=ast.Or(), values=parts):
            return any(_evaluate(p, names, text) for p in parts)
        case ast.UnaryOp(op=ast.Not(), operand=inner):
            return not _evaluate(inner, names, text)
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _OPERATORS:
            return _apply(_OPERATORS[type(op)], left, right, names, text)
        case ast.Compare(left=left, ops=ops, comparators=rights) if all(
            type(op) in _OPERATORS for op in ops
        ):
            terms = [left, *rights]
            return all(
                _apply(_OPERATORS[type(op)], a, b, names, text)
                for op, a, b in zip(ops, terms, terms[1:], strict=False)
            )
    raise UsageError(
        f"--where {text!r}: only knob names, numbers, 'words', comparisons, + - * // %, "
        "and/or/not are allowed"
    )


def _apply(fn, left, right, names, text) -> object:
    a, b = _evaluate(left, names, text), _evaluate(right, names, text)
    try:
        return fn(a, b)
    except (TypeError, ZeroDivisionError) as exc:
        raise UsageError(f"--where {text!r}: {exc}", "compare numbers with numbers") from None
