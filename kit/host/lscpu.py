"""Plain ``lscpu``, the summary people paste (``NUMA node0 CPU(s): 0-17,36-53``), as a topology
(``lscpu -p`` is read by kit.host.topology.parse_lscpu). Pure; ValueError says what a text lacks
and what to give."""

from __future__ import annotations

import re

from kit.cpus import parse_cpu_list
from kit.host.topology import Cpu, Node, Topology

_SUMMARY = re.compile(r"^\s*([^:]+?):\s*(.*?)\s*$")
_NODE_LINE = re.compile(r"^numa node(\d+) cpu\(s\)$")


def node_cpus(node: int, ids: tuple[int, ...], per_core: int, socket: int, said: str) -> list[Cpu]:
    """A node's CPUs where nothing names sibling pairs: the first 1/``per_core`` of its CPUs are
    each core's first thread and the rest their siblings, in the same order (Linux's numbering of
    x86 servers: on a node of CPUs 0-8,18-26, 0 and 18 share a core). ``said`` names where
    ``per_core`` came from, for the error."""
    ids = tuple(sorted(ids))
    if len(ids) % per_core:
        raise ValueError(f"node {node} has {len(ids)} CPUs, not a multiple of {said}")
    cores = len(ids) // per_core
    return [Cpu(c, ids[i % cores], socket, node) for i, c in enumerate(ids)]


def is_summary(text: str) -> bool:
    """Plain ``lscpu``: ``Key: value`` lines, ``CPU(s):`` among them."""
    return bool(re.search(r"^\s*CPU\(s\):\s*\d+", text, re.MULTILINE))


def _summary_fields(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if m := _SUMMARY.match(line):
            found.setdefault(m.group(1).strip().lower(), m.group(2))
    return found


def parse_summary(text: str, threads_per_core: int | None = None) -> Topology:
    """Plain ``lscpu``: each node's CPUs from its ``NUMA nodeN CPU(s):`` line, the threads per
    core from its own count (or ``threads_per_core``), sockets from ``Socket(s):``. It names no
    sibling pairs: ``node_cpus`` pairs them as Linux numbers x86 servers (round-robin across
    sockets included: on a node of CPUs 0,2,...,70, 0 and 36 share a core)."""
    fields = _summary_fields(text)
    nodes = {
        int(m.group(1)): parse_cpu_list(value) if value.strip() else ()
        for key, value in fields.items()
        if (m := _NODE_LINE.match(key))
    }
    if not nodes:
        raise ValueError(
            "plain lscpu without `NUMA nodeN CPU(s):` lines says nothing of nodes: give "
            "`lscpu -p=CPU,Core,Socket,Node` output"
        )
    said = fields.get("thread(s) per core", "")
    per_core = threads_per_core or (int(said) if said.isdigit() else None)
    if per_core is None:
        raise ValueError("plain lscpu without `Thread(s) per core:`: pass --threads-per-core N")
    sockets = int(fields["socket(s)"]) if fields.get("socket(s)", "").isdigit() else 1
    with_cpus = sorted(n for n, cpus in nodes.items() if cpus)
    per_socket = max(len(with_cpus) // sockets, 1)
    cpus = []
    for rank, node in enumerate(with_cpus):
        socket = min(rank // per_socket, sockets - 1)
        cpus += node_cpus(node, nodes[node], per_core, socket, f"{per_core} threads per core")
    listed = tuple(Node(n, tuple(sorted(c))) for n, c in sorted(nodes.items()))
    return Topology(tuple(cpus), listed)
