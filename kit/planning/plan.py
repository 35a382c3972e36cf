"""Planning: images x profiles (x instances) -> RunSpecs, each profile resolved for the CPUs its
run gets.

Pure: the host's topology comes in as a value, so every check runs before any container does.
The order matters and is the same for every run:
  1. the container's cpuset: the command line's CPU selection, narrowed by the profile's;
  2. numactl, with placeholders resolved against that cpuset;
  3. the CPUs the workload really gets (cpuset narrowed by numactl's CPU binding);
  4. env and thread counts, with placeholders resolved against those CPUs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.host.topology import Topology
from kit.model.flavors import resolve_image
from kit.model.numa import NumaPolicy
from kit.model.profiles import Placement, Profile, ResolvedProfile
from kit.model.spec import ImageRef, Limits, RunSpec
from kit.model.workload import WorkloadSpec
from kit.planning.placement import (
    CpuSelection,
    effective_cpus,
    parse_node_list,
    select_cpus,
    split_instances,
)


def interleaved_order(cells: int, repeats: int, seed: str = "") -> list[list[int]]:
    """Cell indices per repeat round: every cell once a round, each round in its own order, a
    permutation drawn from a generator seeded by ``seed`` (the plan's cells, so `kit plan`,
    the session and --resume agree). A drift of the host within a round (heat, turbo budget, a
    neighbour on a shared VM) then lands on each cell's position at random: a cell compared with
    its baseline within rounds is not biased by where it stands, and the spread of its ratios
    over rounds says how much the drift moved them. (Alternating A B C, C B A kept the first and
    last cells apart in every round: with an odd number of rounds a steady drift biased them,
    and equal cells were called different in 12% of simulated sessions, tests/test_rounds.py.)"""
    if cells < 1 or repeats < 1:
        raise UsageError(
            f"nothing to order: {cells} cells x {repeats} repeats", "give at least one of each"
        )
    draw = random.Random(f"{seed}/{cells}x{repeats}")
    return [draw.sample(range(cells), cells) for _ in range(repeats)]


def placement_for(topology: Topology, cpus: Sequence[int]) -> Placement:
    nodes = topology.nodes_of(cpus)
    return Placement(
        cores=topology.physical_cores(cpus),
        threads=len(cpus),
        nodes=len(nodes),
        last_node=nodes[-1],
    )


def _profile_selection(profile: Profile, placement: Placement) -> CpuSelection:
    raw = profile.resolve_select(placement)
    try:
        cores = int(raw["cores"]) if "cores" in raw else None
    except ValueError:
        raise UsageError(
            f"{profile.where}: select cores {raw['cores']!r} is not a number"
        ) from None
    return CpuSelection(
        cpus=parse_cpu_list(str(raw["cpus"]), what="select cpus") if "cpus" in raw else None,
        nodes=parse_cpu_list(str(raw["nodes"]), what="select nodes") if "nodes" in raw else None,
        cores=cores,
        one_thread_per_core=bool(raw.get("one_thread_per_core", False)),
    )


def _check_numa_nodes(numa: NumaPolicy, topology: Topology, profile: Profile) -> None:
    """Each node a policy names is in the topology; an error names the profile the setting came
    from, or only the option when the command line gave it."""

    def where(name: str) -> str:
        return "" if name in profile.given else f"{profile.where}: "

    for name in ("interleave", "membind", "preferred", "cpunodebind"):
        value = getattr(numa, name)
        if value is not None and value != "all":
            try:
                parse_node_list(value, topology, f"--{name}")
            except UsageError as exc:
                raise UsageError(f"{where(name)}{exc.message}", exc.hint) from None
    if numa.preferred is not None and len(parse_cpu_list(numa.preferred)) != 1:
        raise UsageError(f"{where('preferred')}--preferred takes one node, got {numa.preferred}")


def resolve_placement(
    profile: Profile, topology: Topology, selection: CpuSelection
) -> tuple[tuple[int, ...], tuple[int, ...], Placement, NumaPolicy]:
    """(cpuset, effective CPUs, their placement, numactl policy) for one profile."""
    host = placement_for(topology, select_cpus(topology, selection))
    cpuset = select_cpus(topology, selection.narrowed_by(_profile_selection(profile, host)))
    numa = profile.resolve_numa(placement_for(topology, cpuset))
    _check_numa_nodes(numa, topology, profile)
    try:
        cpus = effective_cpus(topology, cpuset, numa.cpunodebind, numa.physcpubind)
    except UsageError as exc:  # a binding the profile made, against the CPUs the options chose
        came = "cpunodebind" if exc.message.startswith("--cpunodebind") else "physcpubind"
        if came in profile.given:
            raise
        given = _given_options(selection)
        raise UsageError(
            f"{profile.where} binds its CPUs with numactl --{came}={getattr(numa, came)}, but "
            f"the CPUs {given} chose ({format_cpu_list(cpuset)}) have none of those",
            f"drop {given} ({profile.name} chooses its CPUs itself), or use a profile without a "
            "CPU binding, e.g. -p tuned",
        ) from None
    return cpuset, cpus, placement_for(topology, cpus), numa


def _given_options(selection: CpuSelection) -> str:
    """The command line's CPU options, as the user gave them."""
    cpus, nodes, cores = selection.cpus, selection.nodes, selection.cores
    given = [f"--cpus {format_cpu_list(cpus)}" if cpus is not None else "",
             f"--nodes {','.join(map(str, nodes))}" if nodes is not None else "",
             f"--cores {cores}" if cores is not None else ""]  # fmt: skip
    return " and ".join(g for g in given if g) or "the command line"


def memory_nodes(numa: NumaPolicy, topology: Topology, mems: Sequence[int] | None) -> str | None:
    """The node list a memory policy should show inside the container (``all`` expanded to
    the nodes the container may use)."""
    text = numa.memory_nodes_text
    if text is None:
        return None
    if text == "all":
        return format_cpu_list(mems if mems is not None else topology.node_ids)
    return format_cpu_list(parse_cpu_list(text))


def build_plan(
    images: Sequence[str],
    profiles: Sequence[Profile],
    workload: WorkloadSpec,
    topology: Topology,
    selection: CpuSelection | None = None,
    timeout_s: float = 3600.0,
    numactl: Mapping[str, str | bool] | None = None,
    instances: int | str = 1,
    limits: Limits | None = None,
    repeats: int = 1,
    engines: Sequence[str] = ("docker",),
    only: frozenset[tuple[str, str]] | None = None,
    looks: int = 1,
    stands_for: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
) -> list[RunSpec]:
    """Every (image, profile) cell, numbered image-major as the table reads, ``repeats`` times,
    each round in its own order (``interleaved_order``) so drift on the host favours no cell.
    A cell with several instances has one spec per instance, each on its own CPU group with
    local memory. ``only`` keeps just those (image, profile) cells of the cross product (a
    sweep's, whose cells that cannot differ are merged per image)."""
    if not 1 <= repeats <= 1000:
        raise UsageError(f"--repeats must be between 1 and 1000, got {repeats}")
    if not images:
        raise UsageError("no image to run", "name at least one flavor or image reference")
    if not profiles:
        raise UsageError("no profile to run", "pass --profile NAME (see `kit profiles list`)")
    selection = selection or CpuSelection()
    refs: list[ImageRef] = [resolve_image(name) for name in images]
    placed = [
        _place_cell(
            profile.with_numactl(numactl or {}), topology, selection,
            instances if profile.instances is None else profile.instances,
        )
        for profile in profiles
    ]  # fmt: skip
    sizes = [_workload_of(profile, workload) for profile in profiles]
    # Engines on one host share its CPUs, so they take turns cell by cell, like repeats do.
    grid = [
        (image, runs, size, engine)
        for image in refs
        for runs, size in zip(placed, sizes, strict=True)
        if only is None or (image.label, runs[0].profile.name) in only
        for engine in engines
    ]
    common = {"timeout_s": timeout_s, "looks": looks, "limits": limits or Limits()}
    return _interleaved(grid, repeats, topology, stands_for or {}, common)


def _interleaved(grid, repeats: int, topology: Topology, stands_for, common) -> list[RunSpec]:
    """Every cell of the grid once per repeat, in interleaved order, an instance a spec."""
    plan: list[RunSpec] = []
    # the cells alone: machines of a --spread, each its own engine, order their rounds alike
    seed = "|".join(f"{image.label}:{runs[0].profile.name}" for image, runs, _, _ in grid)
    for repeat, order in enumerate(interleaved_order(len(grid), repeats, seed)):
        for cell in order:
            image, runs, size, engine = grid[cell]
            merged = stands_for.get((image.label, runs[0].profile.name), ())
            for instance, run in enumerate(runs, 1):
                plan.append(
                    RunSpec(
                        index=len(plan) + 1, image=image, profile=run.profile, cpus=run.cpuset,
                        workload=size, effective_cpus=run.cpus, mems=run.mems,
                        memory_nodes=run.memory_nodes, nodes=topology.nodes_of(run.cpus),
                        cell=cell + 1, instance=instance, instances=len(runs), repeat=repeat,
                        engine=engine, stands_for=merged, **_with_quota(common, run.quota),
                    )
                )  # fmt: skip
    return plan


def _with_quota(common: dict, quota: int | None) -> dict:
    if quota is None:
        return common
    return {**common, "limits": replace(common["limits"], cpu_quota=float(quota))}


def _workload_of(profile: Profile, workload: WorkloadSpec) -> WorkloadSpec:
    """The workload a profile's cells run: the command line's, with the profile's batch size,
    precision, allocator and warmup where it sets them."""
    given = {
        key: getattr(profile, key)
        for key in ("batch_size", "precision", "allocator")
        if getattr(profile, key) is not None
    }
    if profile.warmup is not None:
        given["num_warmup_batches"] = profile.warmup
    return replace(workload, **given) if given else workload


class _Placed(NamedTuple):
    cpuset: tuple[int, ...]
    cpus: tuple[int, ...]
    mems: tuple[int, ...] | None
    profile: ResolvedProfile
    memory_nodes: str | None
    quota: int | None = None  # the CPUs given as a CFS quota, the cpuset left whole


def _as_quota(placed: _Placed, topology: Topology) -> _Placed:
    """A profile's CPUs as a CFS quota of as many CPUs (Docker's --cpus, Kubernetes CPU
    limits): the container's cpuset is every CPU kit may use, so the process sees them all (and
    TensorFlow sizes its pools for them), and the kernel throttles it to the quota. Its env and
    threads keep the placeholders' values of the CPUs it would have had (``{threads}``: the
    quota)."""
    whole = topology.allowed if topology.allowed is not None else topology.cpu_ids
    if placed.profile.numa.cpunodebind or placed.profile.numa.physcpubind:
        raise UsageError(
            f"profile {placed.profile.name!r}: a CPU quota leaves the cpuset whole, and "
            "numactl's CPU binding would narrow it again",
            "drop --cpunodebind/--physcpubind from a quota profile",
        )
    return placed._replace(cpuset=whole, cpus=whole, quota=len(placed.cpus))


def _place_cell(
    profile: Profile, topology: Topology, selection: CpuSelection, instances: int | str
) -> list[_Placed]:
    """One profile's runs: a single run, or one per instance group, each with memory local to
    its group (the container's cpuset.mems) unless the profile's memory policy names other
    nodes: then the policy keeps the meaning it has for the whole cell (``{last_node}`` is the
    cell's last node, ``all`` every node) and the group's cpuset.mems is widened to them."""
    # One run keeps its cpuset (numactl narrows inside); instances share the CPUs the
    # profile's runs get (node0's: node 0's), each group then its own cpuset.
    cpuset, cpus, _, cell_numa = resolve_placement(profile, topology, selection)
    groups = split_instances(topology, cpuset if instances == 1 else cpus, instances)
    placed = []
    if profile.select.get("quota") and len(groups) > 1:
        raise UsageError(
            f"{profile.where}: a CPU quota is one container's; instances each take CPUs of "
            "their own", "run a quota profile with one instance",
        )  # fmt: skip
    for group in groups:
        g_cpuset, g_cpus, placement, numa = resolve_placement(
            profile, topology, CpuSelection(cpus=group)
        )
        mems = None
        if len(groups) > 1:
            numa = _cell_memory(numa, cell_numa)
            mems = tuple(sorted({*topology.nodes_of(group), *_policy_nodes(numa, topology)}))
        placed.append(
            _Placed(
                g_cpuset,
                g_cpus,
                mems,
                profile.resolve(placement, numa),
                memory_nodes(numa, topology, mems),
            )
        )
    if profile.select.get("quota"):
        return [_as_quota(placed[0], topology)]
    return placed


def _cell_memory(group: NumaPolicy, cell: NumaPolicy) -> NumaPolicy:
    """The group's numactl with the cell's memory policy (resolved for the cell's CPUs)."""
    return replace(group, **{k: getattr(cell, k) for k in ("interleave", "membind", "preferred")})


def _policy_nodes(numa: NumaPolicy, topology: Topology) -> tuple[int, ...]:
    """The nodes a memory policy puts memory on (none for localalloc or no policy)."""
    text = numa.memory_nodes_text
    if text is None:
        return ()
    return topology.node_ids if text == "all" else parse_cpu_list(text)


def idle_cpus(
    profiles: Sequence[Profile], topology: Topology, selection: CpuSelection, instances: int | str
) -> dict[str, tuple[int, ...]]:
    """Per profile, the CPUs its cell gets that no instance runs on (an uneven split leaves
    them idle, and the instances' sum is then not the whole cell's)."""
    idle = {}
    for profile in profiles:
        count = instances if profile.instances is None else profile.instances
        if count == 1:
            continue
        _, cpus, _, _ = resolve_placement(profile, topology, selection)
        used = {c for group in split_instances(topology, cpus, count) for c in group}
        if left := tuple(c for c in cpus if c not in used):
            idle[profile.name] = left
    return idle
