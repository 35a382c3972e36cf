"""Placement: which host CPUs and memory nodes a run gets, how they split into instances, and
whether what the container really got matches the request.

Pure: topology in, CPU sets and verdicts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.host.topology import Topology
from kit.model.numa import POLICY_WORD, parse_numactl_show

PER_NODE = "per-node"


@dataclass(frozen=True)
class CpuSelection:
    """Which CPUs to use, narrowing from all the host's: ``cpus`` and ``nodes`` must agree,
    then the first ``cores`` physical cores, then one logical CPU per core if asked."""

    cpus: tuple[int, ...] | None = None
    nodes: tuple[int, ...] | None = None
    cores: int | None = None
    one_thread_per_core: bool = False

    def __post_init__(self) -> None:
        if self.cores is not None and self.cores <= 0:
            raise UsageError(f"--cores must be positive, got {self.cores}")

    def narrowed_by(self, other: CpuSelection) -> CpuSelection:
        """This selection with another's settings applied on top (a profile's on the CLI's)."""
        return CpuSelection(
            cpus=other.cpus if other.cpus is not None else self.cpus,
            nodes=other.nodes if other.nodes is not None else self.nodes,
            cores=other.cores if other.cores is not None else self.cores,
            one_thread_per_core=self.one_thread_per_core or other.one_thread_per_core,
        )


def select_cpus(topology: Topology, selection: CpuSelection) -> tuple[int, ...]:
    cpus = topology.cpu_ids
    if selection.cpus is not None:
        cpus = tuple(c.id for c in topology.select(selection.cpus))
    if selection.nodes is not None:
        on_nodes = topology.cpus_of_nodes(selection.nodes)
        if selection.cpus is not None:
            outside = sorted(set(cpus) - set(on_nodes))
            if outside:
                raise UsageError(
                    f"--cpus and --nodes disagree: CPU {format_cpu_list(outside)} is not on "
                    f"node {format_cpu_list(selection.nodes)}",
                    "pass only one of them, or CPUs of the named nodes",
                )
        else:
            cpus = on_nodes
    cores = topology.cores(cpus)
    if selection.cores is not None:
        if selection.cores > len(cores):
            raise UsageError(
                f"--cores {selection.cores} asks for more than the {len(cores)} physical cores "
                f"selected (CPUs {format_cpu_list(cpus)})",
                "ask for fewer cores or select more CPUs",
            )
        cores = cores[: selection.cores]
    if selection.one_thread_per_core:
        cores = [core[:1] for core in cores]
    chosen = tuple(sorted(cpu for core in cores for cpu in core))
    if not chosen:
        raise UsageError("the CPU selection is empty", "select at least one CPU")
    return chosen


def parse_node_list(text: str, topology: Topology, what: str) -> tuple[int, ...]:
    return topology.check_nodes(parse_cpu_list(text, what=f"{what} node list"), f"{what} node")


def effective_cpus(
    topology: Topology, cpuset: Sequence[int], cpunodebind: str | None, physcpubind: str | None
) -> tuple[int, ...]:
    """The CPUs the workload may run on inside the container: its cpuset narrowed by numactl's
    CPU binding. UsageError when the binding leaves nothing or leaves the cpuset (numactl would
    refuse it inside the container)."""
    cpus = set(cpuset)
    if cpunodebind is not None:
        nodes = parse_node_list(cpunodebind, topology, "--cpunodebind")
        cpus &= set(topology.cpus_of_nodes(nodes))
        if not cpus:
            raise UsageError(
                f"--cpunodebind {cpunodebind} has no CPU in the run's cpuset "
                f"{format_cpu_list(cpuset)}",
                "bind to a node whose CPUs the run has",
            )
    if physcpubind is not None:
        wanted = set(parse_cpu_list(physcpubind, what="--physcpubind"))
        outside = sorted(wanted - set(cpuset))
        if outside:
            raise UsageError(
                f"--physcpubind CPU {format_cpu_list(outside)} is outside the run's cpuset "
                f"{format_cpu_list(cpuset)}",
                "bind to CPUs the run has (see --cpus)",
            )
        cpus &= wanted
    return tuple(sorted(cpus))


def split_instances(
    topology: Topology, cpus: Sequence[int], instances: int | str
) -> list[tuple[int, ...]]:
    """Split CPUs into disjoint groups of whole physical cores (SMT siblings stay together),
    each within one NUMA node. ``per-node`` gives one group per node. N groups must divide
    evenly among the nodes; each node's cores split into equal groups, leftovers unused."""
    by_node: dict[int, list[tuple[int, ...]]] = {}
    for core in topology.cores(cpus):
        by_node.setdefault(topology.select(core[:1])[0].node, []).append(core)
    nodes = sorted(by_node)
    if instances == PER_NODE:
        return [tuple(sorted(c for core in by_node[n] for c in core)) for n in nodes]
    if not isinstance(instances, int) or instances <= 0:
        raise UsageError(f"--instances must be a positive number or {PER_NODE}, got {instances}")
    total = sum(len(v) for v in by_node.values())
    if instances > total:
        raise UsageError(
            f"--instances {instances} is more than the {total} physical cores selected",
            f"use at most {total} instances",
        )
    if instances == 1:
        return [tuple(sorted(cpus))]
    if instances % len(nodes):
        raise UsageError(
            f"--instances {instances} cannot split evenly over {len(nodes)} NUMA nodes "
            "without crossing a node",
            f"use a multiple of {len(nodes)}, or {PER_NODE}",
        )
    per_node = instances // len(nodes)
    size = min(len(by_node[n]) for n in nodes) // per_node
    if size == 0:
        raise UsageError(
            f"--instances {instances} leaves less than one core per instance on a node",
            "use fewer instances",
        )
    groups = []
    for node in nodes:
        cores = by_node[node]
        for i in range(per_node):
            chunk = cores[i * size : (i + 1) * size]
            groups.append(tuple(sorted(c for core in chunk for c in core)))
    return groups


def parse_instances(text: str | None) -> int | str:
    if text is None:
        return 1
    if text == PER_NODE:
        return PER_NODE
    if not text.isdigit() or int(text) <= 0:
        raise UsageError(f"--instances takes a positive number or {PER_NODE}, got {text!r}")
    return int(text)


# --- verification -------------------------------------------------------------------------------


def _nodes_text(text: str) -> set[int]:
    return {int(t) for t in text.replace(",", " ").split() if t.isdigit()}


def placement_problems(
    requested: Mapping[str, object], provenance: Mapping[str, object] | None
) -> list[str]:
    """Differences between what a run asked for and what the process inside reported.

    ``requested`` holds ``cpuset`` (list text), ``cpus`` (the effective CPUs, list text),
    ``mems`` (list text or None), ``cpu_quota`` (CPUs or None), ``memory_policy``
    (interleave/membind/preferred/localalloc or None) and ``memory_nodes`` (set of node ids,
    or None for "all")."""
    if not provenance:
        return ["the workload reported no provenance, so its placement is unverified"]
    problems = _cpu_problems(requested, provenance)
    problems += quota_problems(requested.get("cpu_quota"), provenance.get("cpu_limit"))
    show_text = provenance.get("numactl_show")
    mems = requested.get("mems")
    if mems is not None and requested.get("memory_policy") is None and _bound_to(show_text, mems):
        return problems  # an engine without cpusets (local, Slurm) binds the memory instead
    got_mems = provenance.get("mems_allowed_list")
    if (
        mems is not None
        and got_mems is not None
        and parse_cpu_list(str(got_mems)) != parse_cpu_list(str(mems))
    ):
        problems.append(f"memory nodes are {got_mems}, asked for {mems}")
    if not isinstance(show_text, str) or not show_text.strip():
        problems.append("numactl --show reported nothing, so the memory policy is unverified")
        return problems
    return problems + _policy_problems(requested, parse_numactl_show(show_text))


def _cpu_problems(requested: Mapping[str, object], provenance: Mapping[str, object]) -> list[str]:
    """The CPUs the process may run on (its cpuset, or the local engine's taskset, narrowed by
    numactl's CPU binding): Cpus_allowed_list, then the affinity it read itself."""
    allowed = provenance.get("cpus_allowed_list")
    wanted = parse_cpu_list(str(requested["cpus"]))
    affinity = provenance.get("affinity")
    if allowed is not None and parse_cpu_list(str(allowed)) != wanted:
        return [f"CPUs allowed are {allowed}, asked for {requested['cpus']}"]
    if isinstance(affinity, list) and tuple(affinity) != wanted:
        return [f"ran on CPUs {format_cpu_list(affinity)}, asked for {requested['cpus']}"]
    return []


def _policy_problems(requested: Mapping[str, object], shown: Mapping[str, str]) -> list[str]:
    """The memory policy numactl --show reported against the one asked for, and its nodes."""
    policy = requested.get("memory_policy")
    got = shown.get("policy", "?")
    if policy is None:
        return [f"memory policy is {got}, asked for the default"] if got != "default" else []
    if policy == "localalloc":
        ok = got in ("local", "default")
        return [] if ok else [f"memory policy is {got}, asked for localalloc"]
    if got != POLICY_WORD[str(policy)]:
        return [f"memory policy is {got}, asked for {policy}"]
    wanted = requested.get("memory_nodes")
    field = {"interleave": "interleavemask", "membind": "membind"}.get(str(policy))
    got_nodes = _nodes_text(shown.get(field or "preferred node", ""))
    if wanted is not None and got_nodes != set(wanted):  # type: ignore[call-overload]
        return [
            f"{policy} nodes are {format_cpu_list(got_nodes) or 'none'}, asked for "
            f"{format_cpu_list(wanted)}"  # type: ignore[arg-type]
        ]
    return []


def _bound_to(show_text: object, mems: object) -> bool:
    """numactl --show says the memory is bound to exactly the nodes ``mems`` lists."""
    if not isinstance(show_text, str):
        return False
    shown = parse_numactl_show(show_text)
    nodes = _nodes_text(shown.get("membind", ""))
    return shown.get("policy") == "bind" and nodes == set(parse_cpu_list(str(mems)))


def quota_problems(asked: object, found: object) -> list[str]:
    """A CFS quota asked for against the cgroup's, as the process read it (cpu.max, or v1's
    cfs_quota_us over cfs_period_us)."""
    if not isinstance(asked, (int, float)):
        return []
    got = found.get("quota_cpus") if isinstance(found, dict) else None
    if not isinstance(got, (int, float)):
        said = f" (cpu.max {found['cpu_max']})" if isinstance(found, dict) else ""
        return [f"no CPU quota in the container's cgroup{said}, asked for {asked:g} CPUs"]
    if abs(got - asked) > 0.01 * asked:
        return [f"CPU quota of {got:g} CPUs, asked for {asked:g}"]
    return []
