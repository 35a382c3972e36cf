"""The host's own speed, just before and just after the measured work: a fixed pure-Python loop
on the run's own CPUs (the process's affinity), whose iterations a second move only with the
CPU's speed as this process gets it (frequency, a hypervisor's steal from a shared VM, other
load on the same CPUs), not with TensorFlow, its threads or memory.

Why this loop: it takes ~40 ms, allocates nothing, touches no memory beyond the interpreter's
own, and runs in one thread, so it needs no thread settings and is the same in every image; the
best of three short timings sheds a single interrupt. A GEMM would measure the BLAS build as
much as the host, and a memory kernel the placement.
"""

from __future__ import annotations

import time

ITERATIONS = 200_000
TIMINGS = 3


def _loop(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


def host_speed() -> float:
    """Million loop iterations a second, the best of a few timings."""
    best = float("inf")
    for _ in range(TIMINGS):
        started = time.perf_counter()
        _loop(ITERATIONS)
        best = min(best, time.perf_counter() - started)
    return ITERATIONS / best / 1e6
