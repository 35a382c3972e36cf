"""Where a campaign's cells go: its profiles, a sweep's grid, and the plan placed on each
machine's own topology (once per machine; the engines on one machine share its plan). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from kit.campaign.request import What
from kit.cpus import format_cpu_list
from kit.errors import UsageError
from kit.host.facts import HostFacts
from kit.host.topology import Topology
from kit.model.acts import FPMATH, caveats, describe_inert, inert
from kit.model.feedback import Feedback
from kit.model.flavors import resolve_image
from kit.model.profiles import Profile, load_profiles, pick
from kit.model.spec import RunSpec
from kit.planning.plan import build_plan, idle_cpus
from kit.planning.sweep import Grid, Merged, SweepCell, grid, merge_cells


def profiles_of(what: What) -> list[Profile]:
    if what.profile_set:
        return list(what.profile_set)
    return pick(load_profiles(what.profiles_file), list(what.profiles))


def check_quota(what: What, kinds: Sequence[object]) -> None:
    """A CPU quota is a container's cgroup setting: the local and Slurm engines have none."""
    named = {getattr(k, "value", k) for k in kinds} & {"local", "slurm"}
    quota = [p.name for p in profiles_of(what) if p.select.get("quota")]
    if named and quota:
        raise UsageError(
            f"profile {quota[0]} gives its CPUs as a CFS quota, which needs a container engine; "
            f"the {'/'.join(sorted(named))} engine places runs on cpusets only",
            "run quota profiles with --engine docker (or podman)",
        )


def grid_of(what: What, topology: Topology) -> Grid:
    """A sweep's cells on one machine's topology (what can differ there)."""
    assert what.sweep is not None
    (base,) = profiles_of(what)
    s = what.sweep
    seeds = pick(load_profiles(what.profiles_file), list(s.seeds))
    return grid(what.images, s.knobs, base, topology, what.workload, what.selection, s.where, seeds)


def cells_of(
    what: What, topology: Topology
) -> tuple[Sequence[str], list[Profile], frozenset[tuple[str, str]] | None]:
    """The campaign's cells on one machine: images x profiles, only ``pairs`` of them when
    given (a sweep's cells, with their knobs applied, or a replay's)."""
    if what.sweep is not None:
        g = grid_of(what, topology)
        return g.images, list(g.profiles), g.pairs
    merged = equivalents(what, topology)
    if not merged:
        return what.images, profiles_of(what), what.pairs
    gone = {(m.cell.image, m.cell.profile.name) for m in merged}
    pairs = frozenset((i, p.name) for i in what.images for p in profiles_of(what)) - gone
    return what.images, profiles_of(what), pairs


def equivalents(what: What, topology: Topology) -> list[Merged]:
    """A compare's cells that run the same on this host as an earlier one (the sweep's rule:
    placed here, compared as runs), each merged into it; none with --keep-equivalent, for a
    sweep (its grid merges its own) or a replay (its recipe's cells are the session's)."""
    if what.keep_equivalent or what.sweep is not None or what.pairs is not None:
        return []
    overrides = what.numactl_overrides()
    cells = [
        SweepCell(image, (), replace(p.with_numactl(overrides), instances=_instances(what, p)))
        for image in what.images
        for p in profiles_of(what)
    ]
    if len(cells) < 2:
        return []
    _, merged = merge_cells(cells, what.workload, topology, what.selection)
    return merged


def _instances(what: What, profile: Profile) -> int | str:
    return what.instances if profile.instances is None else profile.instances


def merged_lines(what: What, topology: Topology) -> list[str]:
    """What the merge did, said before anything runs."""
    return [f"merged: {m.describe()}" for m in equivalents(what, topology)]


def setting_notes(what: What, topology: Topology) -> list[str]:
    """The settings of each cell to run that its build never reads, and what a setting does
    besides speed (kit.model.acts), said before anything runs; a cell merged into another is
    said by its merge line."""
    images, profiles, only = cells_of(what, topology)
    notes = []
    for label in images:
        for profile in profiles:
            if only is not None and (label, profile.name) not in only:
                continue
            found = inert(resolve_image(label), profile.env)
            if found:
                notes.append(f"note: {label}:{profile.name}: {describe_inert(found, label)}")
            notes += [f"note: {label}:{profile.name}: {c}" for c in caveats(profile.env)
                      if FPMATH not in found]  # fmt: skip
    return notes


def _stands_for(what: What, topology: Topology) -> dict[tuple[str, str], tuple[str, ...]]:
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for m in equivalents(what, topology):
        into = (m.into.image, m.into.profile.name)
        out[into] = (*out.get(into, ()), m.cell.profile.name)
    return out


def place(what: What, topology: Topology, engines: Sequence[str]) -> list[RunSpec]:
    """The plan on one machine's topology (pure: nothing runs)."""
    images, profiles, only = cells_of(what, topology)
    return build_plan(
        images, profiles, what.workload, topology, what.selection, what.timeout_s,
        numactl=what.numactl_overrides(), instances=what.instances, limits=what.limits,
        repeats=what.repeats, engines=engines, only=only,
        looks=what.adaptive.looks if what.adaptive else 1,
        stands_for=_stands_for(what, topology),
    )  # fmt: skip


def memory_only_notes(what: What, topology: Topology) -> list[str]:
    """What ``interleave all`` means where a node has memory and no CPUs, said before anything
    runs: numactl's all, every node with memory, the far one too."""
    far = [n.id for n in topology.nodes if not n.cpus]
    overrides = what.numactl_overrides()
    interleave_all = [p.name for p in profiles_of(what)
                      if p.with_numactl(overrides).numactl.get("interleave") == "all"]  # fmt: skip
    if not far or not interleave_all:
        return []
    near = format_cpu_list(n.id for n in topology.nodes if n.cpus)
    return [
        f"note: node {format_cpu_list(far)} has memory and no CPUs (CXL memory, or HBM in flat "
        f"mode): interleave=all ({', '.join(interleave_all)}) spreads over it too, as numactl's "
        f"all does; --interleave {near} keeps memory on the nodes with CPUs"
    ]


def idle_notes(what: What, topology: Topology) -> list[str]:
    """The CPUs an instance split leaves idle, said before anything runs: the instances' sum is
    then the throughput of fewer CPUs than the cell has."""
    _, profiles, _ = cells_of(what, topology)
    overrides = what.numactl_overrides()
    idle = idle_cpus(
        [p.with_numactl(overrides) for p in profiles], topology, what.selection, what.instances
    )
    return [
        f"note: {name}'s instances leave CPUs {format_cpu_list(cpus)} idle (the split keeps "
        "whole cores within a node, in equal groups): their sum is not the whole cell's"
        for name, cpus in idle.items()
    ]


def describe_host(record: Mapping[str, object]) -> str:
    r = record
    return (
        f"{r.get('hostname')}, {r.get('cpu_model') or '?'}, {r.get('sockets')} socket(s), "
        f"{r.get('numa_nodes')} NUMA node(s), {r.get('physical_cores')} cores / "
        f"{r.get('logical_cpus')} CPUs"
        + (f", its runs on CPU {r['usable_cpus']} only" if r.get("usable_cpus") else "")
    )


def machines_of(facts: Mapping[str, HostFacts], feedback: Feedback) -> dict[str, tuple[str, ...]]:
    """Engines grouped into the machines whose runs take turns, in the given order: engines on
    one kernel whose usable CPUs overlap (a run on one would share CPUs with a run on the
    other). Engines on one kernel with CPUs apart (nodes confined to their own) run at once,
    which is said, as they still share its memory bandwidth and caches."""
    groups: list[list[str]] = []
    for name, f in facts.items():
        joined = [g for g in groups if any(_overlap(facts[n], f) for n in g)]
        merged = [n for g in joined for n in g] + [name]
        groups = [g for g in groups if g not in joined] + [merged]
    groups.sort(key=lambda g: list(facts).index(g[0]))
    for names in groups:
        if len(names) > 1:
            feedback.say(
                f"{' and '.join(names)} run on one machine ({facts[names[0]].hostname}): "
                "their runs take turns"
            )
    _say_apart(groups, facts, feedback)
    return {facts[names[0]].machine: tuple(names) for names in groups}


def _overlap(a: HostFacts, b: HostFacts) -> bool:
    return a.kernel_id == b.kernel_id and bool(a.usable_cpus & b.usable_cpus)


def _say_apart(groups: list[list[str]], facts: Mapping[str, HostFacts], feedback) -> None:
    by_kernel: dict[str, list[str]] = {}
    for names in groups:
        by_kernel.setdefault(facts[names[0]].kernel_id, []).append(names[0])
    for firsts in by_kernel.values():
        if len(firsts) > 1:
            feedback.say(
                f"{' and '.join(firsts)} share one kernel on CPUs apart: they run at once, "
                "and share its memory bandwidth and caches"
            )


@dataclass(frozen=True)
class FirstPlan:
    """The plan checked up front on this machine, its runs named by engine kind."""

    topology: Topology
    kinds: tuple[str, ...]
    specs: tuple[RunSpec, ...]

    def for_machine(self, topology: Topology, engines: Sequence[str]) -> list[RunSpec] | None:
        """The same runs for a machine with this topology whose engines answered for the
        kinds, in order (auto became whichever one answered); None when it is another."""
        if topology != self.topology or len(engines) != len(self.kinds):
            return None
        names = dict(zip(self.kinds, engines, strict=True))
        return [replace(s, engine=names[s.engine]) for s in self.specs]


def place_fleet(
    what: What,
    machines: Sequence[tuple[Topology, Sequence[str]]],
    first: FirstPlan | None = None,
) -> list[RunSpec]:
    """The same plan on every machine (its topology, and its engines, which take turns there),
    each placed on its own topology once: the plan checked up front serves this machine. Runs
    are numbered one machine after another; a placement a machine cannot give is refused
    naming its engines."""
    plan: list[RunSpec] = []
    for topology, engines in machines:
        part = first.for_machine(topology, engines) if first is not None else None
        if part is None:
            try:
                part = place(what, topology, engines)
            except UsageError as exc:
                if len(machines) == 1:
                    raise
                raise UsageError(f"on {', '.join(engines)}: {exc.message}", exc.hint) from None
        plan += [replace(s, index=len(plan) + s.index) for s in part]
    return plan


# What makes machines alike for --spread: their runs are one population only if these agree.
ALIKE = ("cpu_model", "isa_flags", "sockets", "numa_nodes", "physical_cores", "logical_cpus")


def spread_over(what: What, machines: Sequence[tuple[Topology, Sequence[str]]],
                facts: Mapping[str, HostFacts]) -> list[RunSpec]:  # fmt: skip
    """--spread: the plan once, its cells' repeats dealt over machines that are alike, each on
    its own CPUs: repeat r of cell c to machine (r + c - 1) mod N, so each machine runs a
    balanced, interleaved share of every cell (a repeat's instances stay together)."""
    names = _spread_machines(machines)
    _check_alike(names, facts)
    plans = [
        place(what, topology, [name]) for (topology, _), name in zip(machines, names, strict=True)
    ]
    shape = [(s.cell, s.repeat, s.instance) for s in plans[0]]
    if any([(s.cell, s.repeat, s.instance) for s in p] != shape for p in plans):
        raise UsageError("--spread: the machines' plans differ", "leave --spread out")
    dealt = []
    for position, spec in enumerate(plans[0]):
        machine = (spec.repeat + spec.cell - 1) % len(names)
        dealt.append(replace(plans[machine][position], index=spec.index, spread=tuple(names)))
    return dealt


def _spread_machines(machines: Sequence[tuple[Topology, Sequence[str]]]) -> list[str]:
    if len(machines) < 2:
        raise UsageError(
            "--spread deals a campaign over two or more machines, and this one has one",
            "add machines (--slurm-nodes N, --nodelist, --host), or leave --spread out",
        )
    shared = next((names for _, names in machines if len(names) > 1), None)
    if shared is not None:
        raise UsageError(
            f"--spread deals runs over machines, one engine each: {' and '.join(shared)} "
            "run on one machine",
            "give one engine per machine, or leave --spread out",
        )
    return [names[0] for _, names in machines]


def _check_alike(names: Sequence[str], facts: Mapping[str, HostFacts]) -> None:
    """UsageError naming the first difference between the machines, before anything runs."""
    first = facts[names[0]]
    for name in names[1:]:
        other = facts[name]
        for key in ALIKE:
            mine, theirs = other.record.get(key), first.record.get(key)
            if mine != theirs:
                raise UsageError(
                    f"--spread needs machines that are alike, and {name}'s {key} "
                    f"{_difference(mine, theirs, names[0])}",
                    "compare them instead (leave --spread out), or pick alike ones "
                    "(--nodelist, --constraint)",
                )
        if len(first.usable_cpus) != len(other.usable_cpus):
            raise UsageError(
                f"--spread needs machines that are alike, and {name}'s runs may use "
                f"{len(other.usable_cpus)} CPUs, {names[0]}'s {len(first.usable_cpus)}",
                "compare them instead (leave --spread out), or pick alike ones (--nodelist)",
            )


def _difference(mine: object, theirs: object, other: str) -> str:
    if isinstance(mine, list) and isinstance(theirs, list):
        more, less = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
        said = [f"has {' '.join(more)}" if more else "", f"lacks {' '.join(less)}" if less else ""]
        return f"{' and '.join(s for s in said if s)} against {other}'s"
    return f"is {mine!r}, {other}'s {theirs!r}"
