"""Where a run's memory and threads went, as its process read them (kit_workload.footprint):
typed, frozen, and read back from a run's record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.cpus import format_cpu_list


def _per_node(raw: object) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, dict):
        return ()
    pairs = []
    for node, kb in raw.items():
        if str(node).isdigit() and isinstance(kb, int) and kb > 0:
            pairs.append((int(node), kb))
    return tuple(sorted(pairs))


def short_memory(mb: float, shares: Mapping[int, float]) -> str:
    """Memory per node as tables show it: ``210 MB n0`` on one node, ``n0 52% n1 48%``."""
    if len(shares) == 1:
        return f"{mb:.0f} MB n{next(iter(shares))}"
    return " ".join(f"n{n} {share:.0%}" for n, share in shares.items())


@dataclass(frozen=True)
class MemoryUse:
    """KiB per NUMA node of the process's own (anonymous) memory and of all its mappings."""

    own_kb: tuple[tuple[int, int], ...]
    all_kb: tuple[tuple[int, int], ...] = ()

    @property
    def total_kb(self) -> int:
        return sum(kb for _, kb in self.own_kb)

    def share(self, nodes: set[int]) -> float:
        """The share of its own memory on ``nodes`` (1.0 when it has none)."""
        total = self.total_kb
        return sum(kb for n, kb in self.own_kb if n in nodes) / total if total else 1.0

    def shares(self) -> dict[int, float]:
        total = self.total_kb or 1
        return {n: kb / total for n, kb in self.own_kb}

    def short(self) -> str:
        """``210 MB n0`` on one node, ``n0 52% n1 48%`` on several (tables)."""
        return short_memory(self.total_kb / 1024, self.shares())

    def nodes(self, least: float = 0.1) -> tuple[int, ...]:
        """The nodes holding at least ``least`` of its own memory: where it went, coarsely."""
        return tuple(n for n, share in sorted(self.shares().items()) if share >= least)

    def describe(self) -> str:
        """``node0 62% node1 38% of 412 MB``, or ``412 MB on node 0`` on one node."""
        mb = self.total_kb / 1024
        if len(self.own_kb) == 1:
            return f"{mb:.0f} MB on node {self.own_kb[0][0]}"
        parts = " ".join(f"node{n} {s:.0%}" for n, s in self.shares().items())
        return f"{parts} of {mb:.0f} MB"

    @classmethod
    def from_json(cls, data: object) -> MemoryUse | None:
        if not isinstance(data, dict):
            return None
        own = _per_node(data.get("anon_node_kb"))
        return cls(own, _per_node(data.get("node_kb"))) if own else None

    def to_json(self) -> dict:
        """The workload's own shape (kit_workload.footprint), so a record reads as its line."""
        return {
            "anon_node_kb": {str(n): kb for n, kb in self.own_kb},
            "node_kb": {str(n): kb for n, kb in self.all_kb},
        }


@dataclass(frozen=True)
class ThreadUse:
    """The process's threads over its timed batches, and the CPUs it was allowed."""

    threads: int
    busy_threads: int
    allowed_cpus: int
    idle_cpus: tuple[int, ...] = ()
    switches_per_s: float | None = None  # involuntary context switches a second
    openmp_runtime: str | None = None
    openmp_team: int | None = None  # the OpenMP runtime's team size, where one is loaded
    # CFS throttling in the timed batches (cgroup cpu.stat): periods, those throttled, seconds.
    periods: int | None = None
    throttled_periods: int | None = None
    throttled_s: float | None = None

    @property
    def throttled_share(self) -> float | None:
        """The share of CFS periods the kernel throttled it in (None: not read, no periods)."""
        if not self.periods or self.throttled_periods is None:
            return None
        return self.throttled_periods / self.periods

    @property
    def oversubscription(self) -> float:
        """Busy threads per allowed CPU (above 1: threads waited for a CPU)."""
        return self.busy_threads / self.allowed_cpus if self.allowed_cpus else 0.0

    def describe(self) -> str:
        """``9 threads, 3 busy on 2 CPUs, omp 2, 2986 csw/s, idle CPUs 1``."""
        text = f"{self.threads} threads, {self.busy_threads} busy on {self.allowed_cpus} CPUs"
        if self.openmp_team is not None:
            text += f", omp {self.openmp_team}"
        if self.switches_per_s is not None:
            text += f", {self.switches_per_s:.0f} csw/s"
        if self.idle_cpus:
            text += f", idle CPUs {format_cpu_list(self.idle_cpus)}"
        if (share := self.throttled_share) is not None and self.throttled_periods:
            text += f", throttled in {share:.0%} of periods ({self.throttled_s:.2f} s)"
        return text

    @classmethod
    def from_json(cls, data: object) -> ThreadUse | None:
        if not isinstance(data, dict) or not isinstance(data.get("threads"), int):
            return None
        openmp = data.get("openmp") if isinstance(data.get("openmp"), dict) else {}
        switches = data.get("involuntary_switches_per_s")
        cfs = data["throttling"] if isinstance(data.get("throttling"), dict) else {}
        return cls(
            threads=data["threads"],
            busy_threads=int(data.get("busy_threads") or 0),
            allowed_cpus=int(data.get("allowed_cpus") or 0),
            idle_cpus=tuple(int(c) for c in data.get("idle_cpus") or ()),
            switches_per_s=float(switches) if isinstance(switches, (int, float)) else None,
            openmp_runtime=openmp.get("runtime"),
            openmp_team=openmp.get("team"),
            periods=cfs.get("periods"),
            throttled_periods=cfs.get("throttled"),
            throttled_s=cfs.get("throttled_s"),
        )

    def to_json(self) -> dict:
        """The workload's own shape (kit_workload.footprint), so a record reads as its line."""
        openmp = self.openmp_runtime and {"runtime": self.openmp_runtime, "team": self.openmp_team}
        cfs = {"periods": self.periods, "throttled": self.throttled_periods,
               "throttled_s": self.throttled_s}  # fmt: skip
        return {
            "threads": self.threads,
            "busy_threads": self.busy_threads,
            "allowed_cpus": self.allowed_cpus,
            "idle_cpus": list(self.idle_cpus),
            "involuntary_switches_per_s": self.switches_per_s,
            "openmp": openmp or None,
            "throttling": cfs if self.periods is not None else None,
        }


@dataclass(frozen=True)
class Footprint:
    """Memory per node and threads of one run; either may be unknown (None)."""

    memory: MemoryUse | None = None
    threads: ThreadUse | None = None

    @classmethod
    def from_json(cls, data: object) -> Footprint | None:
        if not isinstance(data, dict):
            return None
        found = cls(
            MemoryUse.from_json(data.get("memory")), ThreadUse.from_json(data.get("threads"))
        )
        return found if found.memory is not None or found.threads is not None else None

    def to_json(self) -> dict:
        return {
            "memory": self.memory.to_json() if self.memory is not None else None,
            "threads": self.threads.to_json() if self.threads is not None else None,
        }

    def describe(self) -> str:
        parts = [
            self.memory.describe() if self.memory is not None else "memory not read",
            self.threads.describe() if self.threads is not None else "threads not read",
        ]
        return "; ".join(parts)
