"""What the host is, for every run's provenance: CPU model, microcode, the ISA flags that
matter to TensorFlow, kernel, memory, frequency governor. Parsing is pure; ``host_record``
reads the machine."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from kit.topology import Topology, read_host

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


def parse_meminfo_total_mb(text: str) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def host_record(topology: Topology | None = None) -> dict[str, object]:
    topo = topology or read_host()
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip()
    return {
        "hostname": platform.node(),
        **parse_cpuinfo(_read("/proc/cpuinfo")),
        "sockets": len(topo.sockets),
        "numa_nodes": len(topo.nodes),
        "physical_cores": len(topo.cores()),
        "logical_cpus": len(topo.cpus),
        "kernel": platform.release(),
        "memory_mb": parse_meminfo_total_mb(_read("/proc/meminfo")),
        "governor": governor or "not readable",
    }
