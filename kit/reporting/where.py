"""The wide table's columns of where a run's memory, threads and CPU time went, and its rate per
CPU."""

from __future__ import annotations

from kit.model.footprint import short_memory
from kit.reporting.rows import Row


def memory_text(row: Row) -> str:
    """Its own memory per NUMA node: ``210 MB n0`` on one node, ``n0 52% n1 48%`` on several."""
    if row.memory_mb is None:
        return "-"
    return short_memory(row.memory_mb, row.memory_share)


def threads_used_text(row: Row) -> str:
    """``3 of 9 busy``, with the CPUs of its own that sat idle."""
    if row.process_threads is None:
        return "-"
    text = f"{row.busy_threads} of {row.process_threads} busy"
    return f"{text}, idle {row.idle_cpus}" if row.idle_cpus else text


def throttled_text(row: Row) -> str:
    """Under a CPU quota: ``62% 1.9 s`` (periods throttled, time); ``-`` without one."""
    if row.throttled_share is None or row.throttled_s is None:
        return "-"
    return f"{row.throttled_share:.0%} {row.throttled_s:.1f} s"


def per_cpu_text(row: Row) -> str:
    """Its rate per CPU it had (its quota's CPUs under a quota): ``0.93``."""
    return f"{row.per_cpu:.2f}" if row.per_cpu is not None else "-"
