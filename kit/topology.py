"""Host CPU topology: which logical CPUs share a physical core, a socket, a NUMA node.

Parsing is pure (text in, Topology out) so it is tested against captured samples of hosts we
do not have; ``read_host`` is the one place that touches sysfs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import UsageError


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
class Topology:
    cpus: tuple[Cpu, ...]

    def __post_init__(self) -> None:
        if not self.cpus:
            raise ValueError("a topology needs at least one CPU")
        object.__setattr__(self, "cpus", tuple(sorted(self.cpus)))

    @property
    def cpu_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cpus)

    @property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(sorted({c.node for c in self.cpus}))

    def select(self, ids: Iterable[int]) -> tuple[Cpu, ...]:
        """The CPUs with these ids; UsageError naming any the host lacks."""
        wanted = set(ids)
        by_id = {c.id: c for c in self.cpus}
        missing = sorted(wanted - by_id.keys())
        if missing:
            raise UsageError(
                f"CPU {format_cpu_list(missing)} not on this host",
                f"this host has CPUs {format_cpu_list(by_id)}; see `kit topology`",
            )
        return tuple(by_id[i] for i in sorted(wanted))

    def physical_cores(self, ids: Iterable[int]) -> int:
        return len({c.physical_core for c in self.select(ids)})

    def nodes_of(self, ids: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted({c.node for c in self.select(ids)}))


def parse_lscpu(text: str) -> Topology:
    """Parse ``lscpu -p=CPU,CORE,SOCKET,NODE`` (comment lines start with ``#``)."""
    cpus = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        cpu, core, socket = (int(f) for f in fields[:3])
        node = int(fields[3]) if len(fields) > 3 and fields[3] else 0
        cpus.append(Cpu(cpu, core, socket, node))
    return Topology(tuple(cpus))


_CPU_DIR = re.compile(r"cpu(\d+)$")
_NODE_DIR = re.compile(r"node(\d+)$")


def parse_sysfs(files: dict[str, str]) -> Topology:
    """Build a Topology from sysfs file texts keyed by their path below ``/sys/devices/system``.

    Keys used: ``cpu/online``, ``cpu/cpuN/topology/{core_id,physical_package_id}``,
    ``node/nodeN/cpulist``.
    """
    online = parse_cpu_list(files["cpu/online"])
    node_of: dict[int, int] = {}
    for key, text in files.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "node" and parts[2] == "cpulist":
            match = _NODE_DIR.match(parts[1])
            if match and text.strip():
                for cpu in parse_cpu_list(text):
                    node_of[cpu] = int(match.group(1))
    cpus = []
    for cpu in online:
        core = files.get(f"cpu/cpu{cpu}/topology/core_id", str(cpu))
        socket = files.get(f"cpu/cpu{cpu}/topology/physical_package_id", "0")
        cpus.append(Cpu(cpu, int(core), int(socket), node_of.get(cpu, 0)))
    return Topology(tuple(cpus))


def read_sysfs_files(root: Path = Path("/sys/devices/system")) -> dict[str, str]:
    files: dict[str, str] = {}
    wanted = ["cpu/online"]
    wanted += [
        f"cpu/{d.name}/topology/{leaf}"
        for d in (root / "cpu").glob("cpu*")
        if _CPU_DIR.match(d.name)
        for leaf in ("core_id", "physical_package_id")
    ]
    wanted += [
        f"node/{d.name}/cpulist" for d in (root / "node").glob("node*") if _NODE_DIR.match(d.name)
    ]
    for key in wanted:
        try:
            files[key] = (root / key).read_text()
        except OSError:
            continue
    return files


def read_host(root: Path = Path("/sys/devices/system")) -> Topology:
    return parse_sysfs(read_sysfs_files(root))
