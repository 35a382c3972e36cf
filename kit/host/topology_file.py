"""A topology file: what ``--topology`` reads (``lscpu -p``, ``numactl -H`` or ``kit topology
--json`` output) and what ``kit topology`` writes and shows."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.host.lscpu import is_summary, node_cpus, parse_summary
from kit.host.topology import Cpu, Node, Topology, parse_lscpu, parse_numactl_hardware
from kit.inputs import read_text_file

TOPOLOGY_SCHEMA = 1  # kit/schemas/topology.schema.json


def to_json(topo: Topology) -> dict:
    return {
        "schema": TOPOLOGY_SCHEMA,
        "cpus": [
            {"cpu": c.id, "core": c.core, "socket": c.socket, "node": c.node} for c in topo.cpus
        ],
        "sockets": list(topo.sockets),
        "nodes": [
            {
                "id": n.id,
                "cpus": format_cpu_list(n.cpus),
                "mem_total_mb": n.mem_total_mb,
                "mem_free_mb": n.mem_free_mb,
                "distances": list(n.distances),
            }
            for n in topo.nodes
        ],
        "physical_cores": len(topo.cores()),
        "logical_cpus": len(topo.cpus),
        "cores": [format_cpu_list(core) for core in topo.cores()],
        "allowed_cpus": format_cpu_list(topo.allowed) if topo.allowed is not None else None,
    }


def from_json(data: dict) -> Topology:
    """A Topology from ``kit topology --format json`` (ValueError when it is not one)."""
    try:
        cpus = [Cpu(int(c["cpu"]), int(c["core"]), int(c["socket"]), int(c["node"]))
                for c in data["cpus"]]  # fmt: skip
        nodes = tuple(
            Node(int(n["id"]), parse_cpu_list(n["cpus"]) if n["cpus"] else (),  # memory only
                 n.get("mem_total_mb"), n.get("mem_free_mb"), tuple(n.get("distances") or ()))
            for n in data.get("nodes") or ()
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not `kit topology --format json` output ({exc!r})") from None
    allowed = data.get("allowed_cpus")
    return Topology(tuple(cpus), nodes, parse_cpu_list(allowed) if allowed else None)


def _from_numactl_only(text: str, threads_per_core: int | None) -> Topology:
    """numactl -H says which CPUs each node has, not which of them share a core: that takes
    ``threads_per_core``, and the numbering Linux gives most x86 servers (``node_cpus``)."""
    if threads_per_core is None:
        raise ValueError(
            "numactl -H says nothing of cores; pass --threads-per-core N with it (1 without "
            "SMT), or give `lscpu -p` output"
        )
    nodes = parse_numactl_hardware(text)
    said = f"--threads-per-core {threads_per_core}"
    cpus = [c for n in nodes for c in node_cpus(n.id, n.cpus, threads_per_core, n.id, said)]
    return Topology(tuple(cpus), nodes)


def parse_topology_text(text: str, threads_per_core: int | None = None) -> Topology:
    """A host's topology from a file's text: ``lscpu -p`` output (its header's columns), plain
    ``lscpu``, ``numactl -H`` output (with ``threads_per_core``), or ``kit topology --format
    json``; ValueError saying which forms are understood, or what the form lacks."""
    if re.search(r"^node \d+ cpus:", text, re.MULTILINE):
        return _from_numactl_only(text, threads_per_core)  # its errors say what it lacks
    if is_summary(text):
        return parse_summary(text, threads_per_core)  # likewise
    try:
        if text.lstrip().startswith("{"):
            topology = from_json(json.loads(text))
        else:
            topology = Topology(tuple(parse_lscpu(text)))
    except (ValueError, IndexError) as exc:
        if str(exc).startswith("its lscpu -p"):  # it says what to give
            raise ValueError(f"not a topology: {exc}") from None
        raise ValueError(
            f"not a topology ({_what_is_wrong(text, exc)}): give `lscpu -p` or `lscpu` output, "
            "`numactl -H` output or `kit topology --format json`"
        ) from None
    _check_threads_per_core(topology, threads_per_core)
    return topology


def _what_is_wrong(text: str, exc: Exception) -> str:
    """Why a file is no topology, in its own words: the line that is not one, not Python's."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return "it is empty"
    if text.lstrip().startswith("{"):
        return f"JSON, but not kit's topology: {exc}"
    if "names no CPU" in str(exc):
        return str(exc)
    return f"{lines[0][:60]!r} is not a line of CPU,Core,Socket,Node numbers"


def _check_threads_per_core(topology: Topology, threads_per_core: int | None) -> None:
    found = {len(core) for core in topology.cores()}
    if threads_per_core is not None and found != {threads_per_core}:
        shown = "/".join(str(n) for n in sorted(found))
        raise ValueError(
            f"--threads-per-core {threads_per_core}, but the capture shows {shown} per core "
            "(leave --threads-per-core out: the capture says it)"
        )


def format_topology(topo: Topology) -> list[str]:
    cores = topo.cores()
    smt = max(len(c) for c in cores)
    lines = [
        f"sockets:   {len(topo.sockets)}",
        f"nodes:     {len(topo.nodes)}",
        f"cores:     {len(cores)} physical, {len(topo.cpus)} logical "
        f"({smt} thread{'s' if smt > 1 else ''} per core)",
        "allowed:   "
        + (format_cpu_list(topo.allowed) if topo.allowed is not None else "unknown")
        + "  (this process: affinity and cgroup cpuset)",
    ]
    for node in topo.nodes:
        mem = (
            f", memory {node.mem_total_mb} MB ({node.mem_free_mb} MB free)"
            if node.mem_total_mb is not None
            else ""
        )
        dist = f", distances {' '.join(map(str, node.distances))}" if node.distances else ""
        cpus = f"CPUs {format_cpu_list(node.cpus)}" if node.cpus else "no CPUs (memory only)"
        lines.append(f"node {node.id}:    {cpus}{mem}{dist}")
    siblings = ", ".join(format_cpu_list(c) for c in cores if len(c) > 1)
    if siblings:
        lines.append(f"siblings:  {siblings}")
    return lines


def load_topology(path: Path, threads_per_core: int | None = None) -> Topology:
    """A topology file (``--topology``) in one of the forms ``parse_topology_text`` reads."""
    hint = (
        "save one with `lscpu -p > FILE`, `lscpu > FILE`, `numactl -H > FILE` or "
        "`kit topology --format json > FILE`"
    )
    text = read_text_file(path, "--topology", hint)
    try:
        found = parse_topology_text(text, threads_per_core)
    except ValueError as exc:
        raise UsageError(f"--topology {path}: {exc}", hint) from None
    return replace(found, name=f"the host of {path.name}")
