"""Host CPU topology: sockets, NUMA nodes, physical cores and their SMT siblings, and the CPUs
this process may use.

Parsing is pure (text in, Topology out), so it is tested against captured samples of hosts we do
not have (sysfs files, ``lscpu -p``, ``numactl -H``, cgroup files); ``read_host`` is the one
place that reads the machine. A topology file (``--topology``, ``kit topology --format json``)
is read and written by kit.host.topology_file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError
from kit.host.probe_script import sysfs_files


@dataclass(frozen=True, order=True)
class Cpu:
    id: int
    core: int
    socket: int
    node: int

    @property
    def physical_core(self) -> tuple[int, int]:
        return (self.socket, self.core)


@dataclass(frozen=True)
class Node:
    id: int
    cpus: tuple[int, ...]
    mem_total_mb: int | None = None
    mem_free_mb: int | None = None
    distances: tuple[int, ...] = ()


@dataclass(frozen=True)
class Topology:
    cpus: tuple[Cpu, ...]
    nodes: tuple[Node, ...] = ()
    # CPUs this process may use (affinity and cgroup cpuset); None when unknown.
    allowed: tuple[int, ...] | None = field(default=None)
    # What messages call it: this host, a host's name, or the file it was read from.
    name: str = field(default="this host", compare=False)

    def __post_init__(self) -> None:
        if not self.cpus:
            raise ValueError("a topology needs at least one CPU")
        object.__setattr__(self, "cpus", tuple(sorted(self.cpus)))
        if not self.nodes:
            by_node: dict[int, list[int]] = {}
            for cpu in self.cpus:
                by_node.setdefault(cpu.node, []).append(cpu.id)
            object.__setattr__(
                self, "nodes", tuple(Node(n, tuple(c)) for n, c in sorted(by_node.items()))
            )

    @property
    def cpu_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cpus)

    @property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes)

    @property
    def sockets(self) -> tuple[int, ...]:
        return tuple(sorted({c.socket for c in self.cpus}))

    def select(self, ids: Iterable[int]) -> tuple[Cpu, ...]:
        """The CPUs with these ids; UsageError naming any the host lacks."""
        wanted = set(ids)
        by_id = {c.id: c for c in self.cpus}
        missing = sorted(wanted - by_id.keys())
        if missing:
            raise UsageError(
                f"CPU {format_cpu_list(missing)} not on {self.name}",
                f"{self.name} has CPUs {format_cpu_list(by_id)}{self._see}",
            )
        return tuple(by_id[i] for i in sorted(wanted))

    def check_nodes(self, ids: Iterable[int], what: str = "node") -> tuple[int, ...]:
        wanted = tuple(sorted(set(ids)))
        missing = sorted(set(wanted) - set(self.node_ids))
        if missing:
            raise UsageError(
                f"{what} {format_cpu_list(missing)} not on {self.name}",
                f"{self.name} has NUMA nodes {format_cpu_list(self.node_ids)}{self._see}",
            )
        return wanted

    def confined(self) -> Topology:
        """The part its runs may use: only the allowed CPUs (a cpuset kit, or a cluster node,
        is confined to), NUMA nodes keeping their memory. Itself when nothing is left out."""
        keep = set(self.allowed or ()) & set(self.cpu_ids)
        if self.allowed is None or not keep or keep == set(self.cpu_ids):
            return self
        cpus = tuple(c for c in self.cpus if c.id in keep)
        nodes = tuple(replace(n, cpus=tuple(i for i in n.cpus if i in keep)) for n in self.nodes)
        return Topology(cpus, nodes, tuple(sorted(keep)), name=self.name)

    _see = property(lambda self: "; see `kit topology`" if self.name == "this host" else "")

    def physical_cores(self, ids: Iterable[int]) -> int:
        return len({c.physical_core for c in self.select(ids)})

    def nodes_of(self, ids: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({c.node for c in self.select(ids)}))

    def cpus_of_nodes(self, nodes: Iterable[int]) -> tuple[int, ...]:
        wanted = set(self.check_nodes(nodes))
        return tuple(c.id for c in self.cpus if c.node in wanted)

    def cores(self, ids: Iterable[int] | None = None) -> list[tuple[int, ...]]:
        """Physical cores as tuples of their logical CPUs (SMT siblings), ordered by node,
        socket and core."""
        chosen = self.select(ids) if ids is not None else self.cpus
        groups: dict[tuple[int, int, int], list[int]] = {}
        for cpu in chosen:
            groups.setdefault((cpu.node, cpu.socket, cpu.core), []).append(cpu.id)
        return [tuple(sorted(v)) for _, v in sorted(groups.items())]


# --- parsers ------------------------------------------------------------------------------------


LSCPU_COLUMNS = ("cpu", "core", "socket", "node")


def _header(text: str) -> list[str] | None:
    """The column names of ``lscpu -p``'s last comment line, lower case; None without one."""
    names = None
    for line in text.splitlines():
        if line.startswith("#"):
            fields = [f.strip().lower() for f in line[1:].split(",")]
            if len(fields) > 1 and all(re.fullmatch(r"[a-z0-9]*", f) for f in fields):
                names = fields  # column names, not the header's prose
    return names


def _column(name: str) -> str:
    return name.upper() if name == "cpu" else name.title()


def parse_lscpu(text: str) -> list[Cpu]:
    """``lscpu -p`` output: columns by its header's names (CPU, Core, Socket and Node); without
    a header, CPU,Core,Socket[,Node] as ``lscpu -p`` writes them by default."""
    names = _header(text) or list(LSCPU_COLUMNS)
    missing = [c for c in LSCPU_COLUMNS[:3] if c not in names]
    if missing:
        given = ",".join(_column(n) for n in names if n)
        raise ValueError(
            f"its lscpu -p columns are {given}, without {', '.join(_column(c) for c in missing)}"
            ": capture it with `lscpu -p=CPU,Core,Socket,Node`"
        )
    at = {name: names.index(name) for name in LSCPU_COLUMNS if name in names}
    cpus = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        value = {name: fields[i] if i < len(fields) else "" for name, i in at.items()}
        if not value["cpu"]:
            raise ValueError(f"{line[:60]!r} names no CPU")
        node = int(value["node"]) if value.get("node") else 0
        socket = int(value["socket"]) if value["socket"] else 0
        cpus.append(Cpu(int(value["cpu"]), int(value["core"]), socket, node))
    if "node" not in at and len({c.socket for c in cpus}) > 1:
        raise ValueError(
            f"its lscpu -p columns name no Node, and {len({c.socket for c in cpus})} sockets "
            "may have one node or several: capture it with `lscpu -p=CPU,Core,Socket,Node`"
        )
    return cpus


_NUMA_CPUS = re.compile(r"^node (\d+) cpus:(.*)$")
_NUMA_SIZE = re.compile(r"^node (\d+) (size|free): (\d+) MB$")
_NUMA_DIST = re.compile(r"^\s*(\d+):((?:\s+\d+)+)\s*$")


def parse_numactl_hardware(text: str) -> tuple[Node, ...]:
    """``numactl -H``: each node's CPUs, memory size and free, and the distance matrix."""
    cpus: dict[int, tuple[int, ...]] = {}
    mem: dict[tuple[int, str], int] = {}
    dist: dict[int, tuple[int, ...]] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        if m := _NUMA_CPUS.match(line):
            cpus[int(m.group(1))] = tuple(int(c) for c in m.group(2).split())
        elif m := _NUMA_SIZE.match(line):
            mem[(int(m.group(1)), m.group(2))] = int(m.group(3))
        elif m := _NUMA_DIST.match(line):
            dist[int(m.group(1))] = tuple(int(d) for d in m.group(2).split())
    return tuple(
        Node(n, cpus[n], mem.get((n, "size")), mem.get((n, "free")), dist.get(n, ()))
        for n in sorted(cpus)
    )


def topology_from_text(
    lscpu: str, numactl_h: str | None = None, allowed: Iterable[int] | None = None
) -> Topology:
    nodes = parse_numactl_hardware(numactl_h) if numactl_h else ()
    return Topology(
        tuple(parse_lscpu(lscpu)), nodes, tuple(sorted(allowed)) if allowed is not None else None
    )


_NODE_DIR = re.compile(r"node(\d+)$")
_MEMINFO = re.compile(r"^Node \d+ (MemTotal|MemFree):\s+(\d+) kB", re.M)


def parse_sysfs(files: dict[str, str]) -> Topology:
    """A Topology from sysfs file texts keyed by their path below ``/sys/devices/system``:
    ``cpu/online``, ``cpu/cpuN/topology/{core_id,physical_package_id}``,
    ``node/nodeN/{cpulist,meminfo,distance}``."""
    online = parse_cpu_list(files["cpu/online"])
    node_of: dict[int, int] = {}
    nodes = []
    for key in sorted(files):
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "node" and parts[2] == "cpulist":
            match = _NODE_DIR.match(parts[1])
            if not match:
                continue
            node = int(match.group(1))
            members = parse_cpu_list(files[key]) if files[key].strip() else ()  # memory only
            node_of.update(dict.fromkeys(members, node))
            meminfo = dict(_MEMINFO.findall(files.get(f"node/node{node}/meminfo", "")))
            distance = files.get(f"node/node{node}/distance", "").split()
            nodes.append(
                Node(
                    node,
                    members,
                    int(meminfo["MemTotal"]) // 1024 if "MemTotal" in meminfo else None,
                    int(meminfo["MemFree"]) // 1024 if "MemFree" in meminfo else None,
                    tuple(int(d) for d in distance),
                )
            )
    cpus = []
    for cpu in online:
        core = files.get(f"cpu/cpu{cpu}/topology/core_id", str(cpu))
        socket = files.get(f"cpu/cpu{cpu}/topology/physical_package_id", "0")
        cpus.append(Cpu(cpu, int(core), int(socket), node_of.get(cpu, 0)))
    # Memory-only nodes (no CPUs: CXL memory, HBM in flat mode) are kept: nothing is pinned to
    # them, but memory policies reach them (numactl's "all" among them).
    return Topology(tuple(cpus), tuple(nodes))


def cgroup_cpuset_files(proc_self_cgroup: str) -> list[str]:
    """Where this process's cgroup cpuset lives, most specific first (v2, then v1).

    Inside a container the cgroup filesystem is usually mounted at the container's own
    cgroup, so the mount root is tried after the path /proc/self/cgroup names.
    """
    paths: list[str] = []
    for line in proc_self_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.strip().strip("/")
        if hierarchy == "0" and controllers == "":
            paths += [f"/sys/fs/cgroup/{path}/cpuset.cpus.effective".replace("//", "/")]
            paths += ["/sys/fs/cgroup/cpuset.cpus.effective"]
        elif "cpuset" in controllers.split(","):
            paths += [f"/sys/fs/cgroup/cpuset/{path}/cpuset.effective_cpus".replace("//", "/")]
            paths += ["/sys/fs/cgroup/cpuset/cpuset.effective_cpus"]
    return list(dict.fromkeys(paths))


def parse_allowed(
    affinity: Iterable[int], proc_self_cgroup: str, read: Callable[[str], str | None]
) -> tuple[int, ...]:
    """The CPUs this process may use: its affinity, narrowed by its cgroup's effective cpuset."""
    allowed = set(affinity)
    for path in cgroup_cpuset_files(proc_self_cgroup):
        text = read(path)
        if text and text.strip():
            allowed &= set(parse_cpu_list(text))
            break
    return tuple(sorted(allowed))


# --- the host -----------------------------------------------------------------------------------


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def read_sysfs_files(root: Path = Path("/sys/devices/system")) -> dict[str, str]:
    return sysfs_files(str(root))


def read_allowed() -> tuple[int, ...]:
    """The CPUs this process may use: its affinity narrowed by its cgroup's cpuset."""
    return parse_allowed(os.sched_getaffinity(0), _read("/proc/self/cgroup") or "", _read)


def read_host(root: Path = Path("/sys/devices/system")) -> Topology:
    topo = parse_sysfs(read_sysfs_files(root))
    return Topology(topo.cpus, topo.nodes, read_allowed())
