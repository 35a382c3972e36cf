"""The host's own speed, just before and just after the measured work: a fixed pure-Python loop
on the run's own CPUs (the process's affinity), whose iterations a second move only with the
CPU's speed as this process gets it (frequency, a hypervisor's steal from a shared VM, other
load on the same CPUs), not with TensorFlow, its threads or memory.

Why this loop: it takes ~80 ms (at most that on a slower CPU: it stops there, so an emulated
or throttled host does not pay 100 times as much), allocates nothing, touches no memory beyond
the interpreter's own, and runs in one thread, so it needs no thread settings and is the same in
every image. It is timed whole, not as the best of short timings: a neighbour that
time-slices the CPU (a hypervisor's steal, a process on the same CPUs) is what it must see, and
the best of three 13-ms timings fell in the neighbour's idle slices (benchmarks/host_speed.py:
r = 0.18 with the workload's speed). A GEMM would measure the BLAS build as much as the host,
and a memory kernel the placement.
"""

from __future__ import annotations

import time

ITERATIONS = 1_500_000  # ~80 ms on a 2020s server core
CHUNK = 15_000  # ~1 ms there: how often the clock is read
MAX_SECONDS = 0.08


def _loop(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


def host_speed() -> float:
    """Million loop iterations a second, over the whole loop: ITERATIONS of it, or as many
    chunks as fit MAX_SECONDS where the CPU is slower."""
    started = time.perf_counter()
    done = elapsed = 0.0
    while done < ITERATIONS and elapsed < MAX_SECONDS:
        _loop(CHUNK)
        done += CHUNK
        elapsed = time.perf_counter() - started
    return done / elapsed / 1e6
