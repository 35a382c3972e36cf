"""A run's memory per node and threads against what it asked for: the differences that make it
INVALID, said with the figures. Pure.

Tolerances (a share of the process's own, anonymous memory): a policy places the pages its
process allocates, but not all of them: the interpreter's first pages may come before numactl's
policy applies to a later mapping, and a node that runs short spills to another (membind never
does: it fails the allocation). So membind (and a cpuset.mems) must hold 95% on its nodes,
interleave must give each node of its set at least half of an even share and 95% on the set,
preferred a majority on its node, and the default policy 80% on the nodes of the run's own CPUs.
"""

from __future__ import annotations

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.model.footprint import Footprint, MemoryUse, ThreadUse
from kit.model.spec import RunSpec

BOUND_SHARE = 0.95
INTERLEAVE_EVEN = 0.5
PREFERRED_SHARE = 0.5
LOCAL_SHARE = 0.80
MIN_JUDGED_KB = 16 * 1024  # less own memory than this says nothing about a policy


def footprint_problems(spec: RunSpec, found: Footprint | None, provenance: dict) -> list[str]:
    """What the run's memory and threads show that it did not ask for."""
    problems = pool_problems(spec, provenance)
    if found is None:
        return problems
    if found.memory is not None:
        problems += memory_problems(spec, found.memory)
    if found.threads is not None:
        problems += thread_problems(spec, found.threads, provenance)
    return problems


def _nodes(text: str | None) -> set[int]:
    return set(parse_cpu_list(text)) if text else set()


def memory_problems(spec: RunSpec, memory: MemoryUse) -> list[str]:
    if memory.total_kb < MIN_JUDGED_KB:
        return []
    policy = spec.profile.numa.memory_policy
    wanted = _nodes(spec.memory_nodes)
    said = f"{memory.describe()} (own memory)"
    if spec.mems is not None and memory.share(set(spec.mems)) < BOUND_SHARE:
        return [f"cpuset.mems {spec.mems_list} asked, but its memory is {said}"]
    if policy == "membind" and wanted and memory.share(wanted) < BOUND_SHARE:
        return [f"membind {format_cpu_list(wanted)} asked, but its memory is {said}"]
    if policy == "interleave" and wanted:
        even = 1 / len(wanted)
        short = [n for n in sorted(wanted) if memory.shares().get(n, 0.0) < INTERLEAVE_EVEN * even]
        if short or memory.share(wanted) < BOUND_SHARE:
            return [f"interleave over {format_cpu_list(wanted)} asked, but its memory is {said}"]
    if policy == "preferred" and wanted and memory.share(wanted) < PREFERRED_SHARE:
        return [f"preferred node {format_cpu_list(wanted)} asked, but its memory is {said}"]
    local = set(spec.nodes)
    if policy in (None, "localalloc") and local and memory.share(local) < LOCAL_SHARE:
        where = format_cpu_list(local)
        return [f"memory local to its CPUs' node(s) {where} expected, but it is {said}"]
    return []


def pool_problems(spec: RunSpec, provenance: dict) -> list[str]:
    """TensorFlow's pools as the process built them against the sizes the run asked for."""
    threads = provenance.get("threads")
    if not isinstance(threads, dict):
        return []
    problems = []
    for pool, asked in (("intra_op", spec.profile.intra_op), ("inter_op", spec.profile.inter_op)):
        got = threads.get(pool)
        if asked and isinstance(got, int) and got != asked:
            problems.append(f"{pool.replace('_', '-')} pool of {got} threads, asked for {asked}")
    return problems


def thread_problems(spec: RunSpec, threads: ThreadUse, provenance: dict) -> list[str]:
    """The OpenMP team against OMP_NUM_THREADS (or, unset, the CPUs it may use), and a process
    with fewer threads than its intra-op pool."""
    problems = []
    intra = (provenance.get("threads") or {}).get("intra_op")
    if isinstance(intra, int) and intra > 1 and threads.threads < intra:
        problems.append(
            f"the process had {threads.threads} threads, fewer than its intra-op pool of {intra}"
        )
    team = threads.openmp_team
    if team is None:
        return problems
    asked = spec.environment().get("OMP_NUM_THREADS", "")
    runtime = threads.openmp_runtime or "OpenMP"
    if asked.isdigit() and team != int(asked):
        problems.append(f"{runtime} team of {team} threads, asked for OMP_NUM_THREADS={asked}")
    elif not asked.isdigit() and threads.allowed_cpus and team > threads.allowed_cpus:
        problems.append(
            f"{runtime} team of {team} threads on {threads.allowed_cpus} CPUs: the runtime sized "
            "it for CPUs the run may not use; set OMP_NUM_THREADS (the tuned profile does)"
        )
    return problems
