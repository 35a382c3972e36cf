"""A fake engine for fast tests of the pure core and the CLI (never the only test of an engine
feature: tests/test_docker.py runs the same paths against the real engine)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import ImageNotFound
from kit.host.facts import HostFacts
from kit.host.topology import Topology, topology_from_text
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec
from tests.conftest import DATA

# The 2-CPU development host, captured: a fake engine's host unless a test gives another.
EPYC = topology_from_text((DATA / "topology" / "epyc-2cpu.lscpu").read_text())
C4 = topology_from_text(
    (DATA / "topology" / "c4.8xlarge.lscpu").read_text(),
    (DATA / "topology" / "c4.8xlarge.numactl-H").read_text(),
)


# The development host's flags of interest (AMD EPYC Zen 4): bf16 computed natively.
ZEN4_FLAGS = ("avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma")
AVX2_FLAGS = ("avx2", "fma")


def facts_for(topology: Topology, machine: str, isa_flags=ZEN4_FLAGS) -> HostFacts:
    """A host record for a captured topology, as a probe would report it."""
    record = {
        "hostname": machine,
        "cpu_model": "Test CPU",
        "sockets": len(topology.sockets),
        "numa_nodes": len(topology.nodes),
        "physical_cores": len(topology.cores()),
        "logical_cpus": len(topology.cpus),
        "kernel": "6.1.0-test",
        "memory_mb": 24_000,
        "boot_id": machine,
        "isa_flags": list(isa_flags),
    }
    return HostFacts(topology, record)


class GivenEngines:
    """An EngineMaker handing out the given engines (fake or real) by name, the first for any
    other name, on the given host topology: what the CLI is invoked with in tests."""

    def __init__(self, *engines, topology: Topology = EPYC) -> None:
        self.engines = {e.name: e for e in engines}
        self.topology = topology

    def engine(self, kind, endpoint=None):
        name = endpoint.label if endpoint is not None else kind.value
        return self.engines.get(name) or next(iter(self.engines.values()))

    def this_host(self) -> Topology:
        return self.topology


def numactl_show(spec: RunSpec) -> str:
    """What numactl --show prints for the spec's policy (policy and node lines only)."""
    numa = spec.profile.numa
    nodes = " ".join(str(n) for n in parse_cpu_list(spec.memory_nodes or "0"))
    if numa.interleave:
        return f"policy: interleave\npreferred node: 0 (interleave next)\ninterleavemask: {nodes}\n"
    if numa.membind:
        return f"policy: bind\npreferred node: 0\nmembind: {nodes}\n"
    if numa.preferred:
        return f"policy: preferred\npreferred node: {nodes}\n"
    if numa.localalloc:
        return "policy: local\npreferred node: physcpubind: 0 1 \n"
    return "policy: default\npreferred node: current\n"


def provenance_for(spec: RunSpec) -> dict:
    """The provenance a well-behaved container reports: exactly what the spec asked for."""
    return {
        "tf_version": "2.14.1",
        "threads": {
            "inter_op": spec.profile.inter_op or len(spec.effective_cpus),
            "intra_op": spec.profile.intra_op or len(spec.effective_cpus),
        },
        "numactl_show": numactl_show(spec),
        "cpus_allowed_list": format_cpu_list(spec.effective_cpus),  # numactl narrows it
        "affinity": list(spec.effective_cpus),
        "cpu_count": len(EPYC.cpus),
        "cpu_limit": {"cgroup": "v1", "quota_cpus": spec.limits.cpu_quota},
        "mems_allowed_list": spec.mems_list or "0",
        "env": dict(spec.environment()),
        "mode": spec.workload.mode.value,
        "precision": {
            "requested": spec.workload.precision.value,
            "keras_policy": {"fp32": "float32", "bf16": "mixed_bfloat16"}[
                spec.workload.precision.value
            ],
        },
        "allocator": {
            "requested": spec.workload.allocator.value,
            "loaded": []
            if spec.workload.allocator.value == "system"
            else [spec.workload.allocator.value],
        },
    }


def footprint_for(spec: RunSpec, own_mb: int = 200) -> dict:
    """What a real container's process reads of itself (kit_workload.footprint): its own memory
    where its policy puts it (interleave: spread evenly), its pools' threads and, where the
    environment sets OMP_NUM_THREADS, an OpenMP team of that size."""
    nodes = parse_cpu_list(spec.memory_nodes) if spec.memory_nodes else spec.nodes or (0,)
    if spec.mems is not None and not spec.memory_nodes:
        nodes = spec.mems
    if not spec.profile.numa.interleave:
        nodes = nodes[:1]
    kb = own_mb * 1024 // len(nodes)
    cpus = len(spec.effective_cpus)
    intra = spec.profile.intra_op or cpus
    inter = spec.profile.inter_op or cpus
    omp = spec.environment().get("OMP_NUM_THREADS")
    return {
        "memory": {
            "anon_node_kb": {str(n): kb for n in nodes},
            "node_kb": {str(n): 2 * kb for n in nodes},
        },
        "threads": {
            "seconds": 3.0,
            "threads": 4 + intra + inter + (int(omp) - 1 if omp else 0),
            "busy_threads": min(intra, cpus),
            "allowed_cpus": cpus,
            "idle_cpus": [],
            "involuntary_switches_per_s": 120.0,
            "openmp": {"runtime": "libiomp5.so", "team": int(omp)} if omp else None,
        },
    }


def workload_output(
    rate: float,
    prov: dict,
    steps: int = 3,
    batch_size: int | None = None,
    footprint: dict | None = None,
) -> str:
    """What kit's workload prints; with ``batch_size``, the latency line its rate implies."""
    lines = ["kit-provenance: " + json.dumps(prov), "Running warm up", "Done warm up"]
    lines += [
        f"{i}\timages/sec: {rate:.1f} +/- 0.1 (jitter = 0.1)\t6.9" for i in range(1, steps + 1)
    ]
    lines += ["-" * 64, f"total images/sec: {rate:.2f}"]
    if batch_size is not None:
        ms = 1000.0 * batch_size / rate
        lines.append(
            f"latency ms: p50 {ms:.3f} p90 {ms * 1.1:.3f} p99 {ms * 1.3:.3f} ({steps} batches)"
        )
    lines.append("-" * 64)
    if footprint is not None:
        lines.append("kit-footprint: " + json.dumps(footprint))
    return "\n".join(lines) + "\n"


class FakeEngine:
    """Answers each run from ``rates`` keyed by ``image:profile`` (or a function of the run's
    spec); a missing key (or None) fails the run."""

    name = "fake"
    samples_host = False
    images = None  # no images of its own to move

    def __init__(
        self,
        rates: dict[str, float],
        images: set[str] | None = None,
        tamper=None,
        name="fake",
        tamper_footprint=None,
        machine: str | None = None,
        delay: float = 0.0,
        topology: Topology = EPYC,
        isa_flags: tuple[str, ...] = ZEN4_FLAGS,
    ) -> None:
        self.name = name
        self.isa_flags = isa_flags
        self.topology = topology
        self.machine = machine  # another machine's boot id: its runs may overlap this host's
        self.delay = delay
        self.rates = rates
        self.held = images
        self.tamper = tamper  # provenance -> provenance, to play a container that misbehaves
        self.tamper_footprint = tamper_footprint  # footprint -> footprint, likewise
        self.ran: list[RunSpec] = []

    def check(self) -> None:
        pass

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        return f"fake-engine run {spec.image.reference} cpus={spec.cpu_list}"

    def host_facts(self, image: str) -> HostFacts:
        """The given topology's facts; ``machine`` names the machine (its boot id and name)."""
        return facts_for(self.topology, self.machine or "fake-host", self.isa_flags)

    def image_id(self, reference: str) -> str:
        if self.held is not None and reference not in self.held:
            raise ImageNotFound(
                f"image {reference!r} is not on this Docker engine",
                "build it with `kit images build FLAVOR`",
            )
        return "sha256:" + reference.encode().hex()[:12]

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line) -> RunOutcome:
        self.ran.append(spec)
        started = datetime.now(UTC)
        time.sleep(self.delay)
        rate = self.rates(spec) if callable(self.rates) else self.rates.get(spec.key)
        prov = provenance_for(spec)
        if self.tamper is not None:
            prov = self.tamper(prov)
        where = footprint_for(spec)
        if self.tamper_footprint is not None:
            where = self.tamper_footprint(where)
        text = (
            workload_output(rate, prov, batch_size=spec.workload.batch_size, footprint=where)
            if rate is not None
            else "Traceback\nRuntimeError: boom\n"
        )
        log_path.write_text(text)
        for line in text.splitlines():
            on_line(line)
        return RunOutcome(
            started=started,
            ended=datetime.now(UTC),
            exit_code=0 if rate is not None else 1,
            log_path=log_path,
            image_id=self.image_id(spec.image.reference),
        )

    def begin(self, specs, session_id: str, folder: Path) -> None:
        pass  # each run starts when it is run

    def cancel(self) -> None:
        pass

    def remove_strays(self) -> int:
        return 0

    def remove_orphans(self) -> list[str]:
        return []
