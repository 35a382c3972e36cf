"""``python -m kit_workload.peak``: the host's measured float32 GEMM rate inside this image,
the ceiling a training throughput's GFLOP/s is compared with."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kit_workload.peak")
    p.add_argument("--size", type=int, default=2048, help="square matrix size")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to measure")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    import tensorflow as tf  # noqa: PLC0415 -- heavy: after the arguments are checked

    n = args.size
    a = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    b = tf.random.uniform((n, n), dtype=tf.float32, seed=2)

    @tf.function
    def step(x):
        return tf.linalg.matmul(x, b)

    step(a).numpy()  # warm up: trace, allocate, spin up the thread pools
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step(a).numpy()
        calls += 1
    elapsed = time.perf_counter() - start
    rate = 2.0 * n**3 * calls / elapsed / 1e9
    record = {
        "gflops": round(rate, 2),
        "size": n,
        "calls": calls,
        "seconds": round(elapsed, 3),
        "cpus": len(os.sched_getaffinity(0)),
        "tf_version": tf.__version__,
    }
    print(f"peak GFLOP/s: {rate:.2f}")
    print("kit-peak: " + json.dumps(record, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
