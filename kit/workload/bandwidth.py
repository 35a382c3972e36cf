"""``python -m kit_workload.bandwidth``: STREAM's triad (``a = b + s * c``) on the run's threads and
placement, in GB/s: why memory placement matters, measured without TensorFlow (light enough for
an emulated NUMA guest).

Each thread is pinned to one of the process's CPUs (round robin, as OMP_PROC_BIND does) and
first touches its own slice of the three arrays, so its pages land where the run's memory
policy puts a page its CPU touches: on its own node by default, on the bound node with membind,
spread with interleave. Bandwidth is counted as STREAM counts the triad, 24 bytes an element
(read b and c, write a), over the best of the timed repeats. numpy releases the GIL in its
loops, so the threads run at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from . import CPU_PREFIX, FOOTPRINT_PREFIX, footprint, provenance

BYTES_PER_ELEMENT = 24  # STREAM's triad: two arrays read, one written, 8 bytes each
BANDWIDTH_PREFIX = "total GB/s: "


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kit_workload.bandwidth", description=__doc__)
    p.add_argument("--threads", type=int, default=0, help="0: one per CPU the process may use")
    p.add_argument("--size_mb", type=int, default=192, help="the three arrays together, MB")
    p.add_argument("--repeats", type=int, default=5, help="timed triads; the best counts")
    return p


def _slices(elements: int, parts: int) -> list[slice]:
    step = -(-elements // parts)
    return [slice(i * step, min((i + 1) * step, elements)) for i in range(parts)]


def triad(np, threads: int, size_mb: int, repeats: int, census: footprint.Census) -> float:
    """The best triad's GB/s over ``repeats``, with the threads kept (and counted by
    ``census``) from the first touch to the last repeat."""
    cpus = sorted(os.sched_getaffinity(0))
    elements = size_mb * 2**20 // BYTES_PER_ELEMENT
    a, b, c = (np.empty(elements) for _ in range(3))
    parts = _slices(elements, threads or len(cpus))
    start, done = threading.Barrier(len(parts) + 1), threading.Barrier(len(parts) + 1)

    def worker(i: int) -> None:
        os.sched_setaffinity(0, {cpus[i % len(cpus)]})  # this thread only
        part = parts[i]
        a[part], b[part], c[part] = 0.0, 1.0, 2.0  # first touch: its pages placed by its CPU
        done.wait()
        for _ in range(repeats):
            start.wait()
            np.multiply(c[part], 3.0, out=a[part])
            np.add(a[part], b[part], out=a[part])
            done.wait()
        start.wait()  # alive until the census is read

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(parts))]
    for t in pool:
        t.start()
    done.wait()  # every slice touched
    census.start()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        start.wait()
        done.wait()
        best = min(best, time.perf_counter() - started)
    record = BYTES_PER_ELEMENT * elements / best / 1e9
    census.stop()  # while the threads and the arrays live
    start.wait()
    for t in pool:
        t.join()
    return record


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    import numpy as np  # noqa: PLC0415 -- after the arguments are checked

    cpus = len(os.sched_getaffinity(0))
    threads = {"intra_op": args.threads or cpus, "intra_op_requested": args.threads,
               "affinity_cpus": cpus}  # fmt: skip
    provenance.emit(provenance.collect(None, threads, "bandwidth", argv))
    census = footprint.Census()
    rate = triad(np, args.threads, args.size_mb, args.repeats, census)
    where = census.recorded
    print(f"{BANDWIDTH_PREFIX}{rate:.3f}", flush=True)
    print(FOOTPRINT_PREFIX + json.dumps(where), flush=True)
    own = os.times()
    print(f"{CPU_PREFIX}{own.user + own.system:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
