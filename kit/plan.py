"""Planning: images x profiles -> RunSpecs, each profile resolved for the CPUs its run gets.

Pure: the host's topology comes in as a value, so every check runs before any container does.
"""

from __future__ import annotations

from collections.abc import Sequence

from kit.errors import UsageError
from kit.flavors import resolve_image
from kit.profiles import Placement, Profile
from kit.spec import ImageRef, RunSpec, WorkloadSpec
from kit.topology import Topology


def placement_for(topology: Topology, cpus: Sequence[int]) -> Placement:
    nodes = topology.nodes_of(cpus)
    return Placement(
        cores=topology.physical_cores(cpus),
        threads=len(cpus),
        nodes=len(nodes),
        last_node=nodes[-1],
    )


def build_plan(
    images: Sequence[str],
    profiles: Sequence[Profile],
    workload: WorkloadSpec,
    topology: Topology,
    cpus: Sequence[int] | None = None,
    timeout_s: float = 3600.0,
) -> list[RunSpec]:
    """Every (image, profile) pair in order: image-major, as the table reads."""
    if not images:
        raise UsageError("no image to run", "name at least one flavor or image reference")
    if not profiles:
        raise UsageError("no profile to run", "pass --profile NAME (see `kit profiles list`)")
    selected = tuple(cpus) if cpus is not None else topology.cpu_ids
    if not selected:
        raise UsageError("the CPU selection is empty", "pass --cpus with at least one CPU")
    topology.select(selected)  # names any CPU the host lacks
    placement = placement_for(topology, selected)
    refs: list[ImageRef] = [resolve_image(name) for name in images]
    resolved = [p.resolve(placement) for p in profiles]
    plan = []
    for image in refs:
        for profile in resolved:
            plan.append(
                RunSpec(
                    index=len(plan) + 1,
                    image=image,
                    profile=profile,
                    cpus=selected,
                    workload=workload,
                    timeout_s=timeout_s,
                )
            )
    return plan
