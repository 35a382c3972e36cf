"""What the host is, for every run's provenance: CPU model, microcode, the ISA flags that
matter to TensorFlow, kernel, memory, frequency governor. Parsing is pure; ``host_record``
reads the machine."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass

from kit.cpus import format_cpu_list
from kit.host.probe_script import PROBE_VERSION, collect
from kit.host.topology import Topology, parse_sysfs, read_allowed

PROBE_PREFIX = "kit-probe: "

# The ISA extensions oneDNN dispatches on.
FLAGS_OF_INTEREST = re.compile(r"^(avx2|fma|avx512.*|amx.*|avx_vnni|.*vnni.*|.*bf16.*|f16c)$")


def parse_cpuinfo(text: str) -> dict[str, object]:
    """Model, microcode and the flags of interest, from the first processor of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = sorted(f for f in fields.get("flags", "").split() if FLAGS_OF_INTEREST.match(f))
    return {
        "cpu_model": fields.get("model name"),
        "microcode": fields.get("microcode"),
        "isa_flags": flags,
    }


BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16(isa_flags: object) -> bool:
    """Whether the CPU computes bf16 itself (AVX512_BF16 or AMX-BF16) rather than emulating it
    in fp32 instructions, which is slower than fp32 alone."""
    return isinstance(isa_flags, (list, tuple)) and any(f in isa_flags for f in BF16_FLAGS)


def parse_meminfo_total_mb(text: str) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


@dataclass(frozen=True)
class HostFacts:
    """A host as read where its runs happen: the topology plans are placed on, and the record
    every run's provenance carries."""

    topology: Topology
    record: dict[str, object]

    @property
    def machine(self) -> str:
        """Identifies the machine: the kernel's boot id (the same in every container on that
        kernel), and the CPUs the engine may use when they are only part of it (a node confined
        to some CPUs is a machine of its own; ``kit.campaign.placing.machines_of`` still makes
        engines whose CPUs overlap take turns)."""
        return str(self.record.get("machine") or self.record.get("boot_id") or self.hostname)

    @property
    def kernel_id(self) -> str:
        return str(self.record.get("boot_id") or self.hostname)

    @property
    def placed_on(self) -> Topology:
        """The topology its plans are placed on: the CPUs its runs may use (a node confined to
        some CPUs has those)."""
        return self.topology.confined()

    @property
    def usable_cpus(self) -> frozenset[int]:
        """The CPUs its runs may use (``usable_cpus`` of its topology)."""
        return usable_cpus(self.topology)

    @property
    def hostname(self) -> str:
        return str(self.record.get("hostname") or "?")


def facts_from_probe(raw: dict, hostname: str, allowed: tuple[int, ...] | None = None) -> HostFacts:
    """HostFacts from what ``kit.probe_script`` printed. ``allowed`` overrides the probe's own
    affinity (this host's process knows its cgroup better)."""
    if raw.get("probe") != PROBE_VERSION or not raw.get("sysfs"):
        raise ValueError("not a kit host probe (or one from another kit version)")
    topo = parse_sysfs(raw["sysfs"])
    topology = Topology(
        topo.cpus,
        topo.nodes,
        allowed if allowed is not None else tuple(raw.get("affinity", ())),
        name="this host" if hostname == platform.node() else f"host {hostname}",
    )
    record = {
        "hostname": hostname,
        **parse_cpuinfo(raw.get("cpuinfo", "")),
        "sockets": len(topology.sockets),
        "numa_nodes": len(topology.nodes),
        "physical_cores": len(topology.cores()),
        "logical_cpus": len(topology.cpus),
        "kernel": raw.get("kernel"),
        "memory_mb": parse_meminfo_total_mb(raw.get("meminfo", "")),
        "governor": raw.get("governor") or "not readable",
        "boot_id": raw.get("boot_id") or None,
        **system_state(raw),
    }
    record["machine"] = machine_name(record["boot_id"] or hostname, topology)
    if topology.confined() is not topology:
        record["usable_cpus"] = format_cpu_list(sorted(usable_cpus(topology)))
    return HostFacts(topology, record)


def usable_cpus(topology: Topology) -> frozenset[int]:
    """The CPUs runs may use: the allowed ones, else every CPU of the topology."""
    every = frozenset(c.id for c in topology.cpus)
    return every if topology.allowed is None else frozenset(topology.allowed)


def machine_name(kernel: str, topology: Topology) -> str:
    """The kernel's id, and the CPUs allowed when they are not all of the machine's."""
    usable = usable_cpus(topology)
    if usable >= {c.id for c in topology.cpus}:
        return kernel
    return f"{kernel} cpus {format_cpu_list(sorted(usable))}"


def system_state(raw: dict) -> dict[str, object]:
    """Turbo (boost), SMT, transparent huge pages and the load average, as the probe read them:
    what moves numbers between sessions besides the settings. Pure."""
    boost = {"1": "on", "0": "off"}.get(str(raw.get("boost", "")))
    if boost is None:  # intel_pstate says it the other way round
        boost = {"0": "on", "1": "off"}.get(str(raw.get("no_turbo", "")), "not readable")
    thp = re.search(r"\[(\w+)\]", str(raw.get("thp", "")))
    load = str(raw.get("loadavg", "")).split()[:3]
    return {
        "boost": boost,
        "smt": raw.get("smt") or "not readable",
        "thp": thp.group(1) if thp else "not readable",
        "load": " ".join(load) if len(load) == 3 else "not readable",
    }


def describe_system(record: dict) -> str:
    """One line of the system state a host record holds."""
    return (
        f"governor {record.get('governor', '?')}, boost {record.get('boost', '?')}, SMT "
        f"{record.get('smt', '?')}, THP {record.get('thp', '?')}, kernel "
        f"{record.get('kernel', '?')}, load {record.get('load', '?')}"
    )


def parse_probe_output(text: str) -> dict:
    """The probe's JSON line out of a container's output; ValueError quoting the tail."""
    for line in text.splitlines():
        if line.startswith(PROBE_PREFIX):
            return json.loads(line[len(PROBE_PREFIX) :])
    tail = " | ".join(text.strip().splitlines()[-3:]) or "no output"
    raise ValueError(f"the host probe printed no facts: {tail}")


def local_facts() -> HostFacts:
    """This host, read in-process (the allowed CPUs include this process's cgroup)."""
    return facts_from_probe(collect(), platform.node(), read_allowed())


def host_record() -> dict[str, object]:
    """This host's provenance record."""
    return local_facts().record
