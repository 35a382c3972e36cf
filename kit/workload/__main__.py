"""``python -m kit_workload``: the benchmark a kit container runs.

Flags mirror tf_cnn_benchmarks'. Thread settings are applied before TensorFlow creates its
thread pools; the provenance line records what the process really got.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import CPU_PREFIX, HOST_SPEED_PREFIX, preload, provenance, user_model
from .models import DEFAULT_IMAGE_SIZE, MODELS, PRECISION_POLICIES, set_precision
from .speed import host_speed
from .steady import AUTO
from .train import run


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def warmup_batches(text: str) -> int | str:
    """A number of warmup batches, or ``auto``: until the step time settles."""
    return AUTO if text == AUTO else non_negative(text)


def pool_size(configured: int, pool: str, cpus: int) -> int:
    """The size TensorFlow gives a pool: its configured size, else its environment variable
    (``TF_NUM_INTRAOP_THREADS``, which the configuration getter does not show: measured, a pool
    of 1 built while the getter said 0), else the CPUs the process may use."""
    if configured:
        return configured
    value = os.environ.get(f"TF_NUM_{pool}OP_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else cpus


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kit_workload", description=__doc__)
    p.add_argument("--model", choices=MODELS, default="resnet50")
    p.add_argument("--batch_size", type=positive, default=32)
    p.add_argument("--num_batches", type=positive, default=10)
    p.add_argument(
        "--num_warmup_batches",
        type=warmup_batches,
        default=AUTO,
        help="a number, or auto: until the step time settles (kit_workload.steady)",
    )
    p.add_argument("--data_format", choices=("NHWC", "NCHW"), default="NHWC")
    p.add_argument("--num_inter_threads", type=non_negative, default=0, help="0 = TF default")
    p.add_argument("--num_intra_threads", type=non_negative, default=0, help="0 = TF default")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--forward_only", action="store_true", help="the same as --mode infer")
    p.add_argument("--precision", choices=tuple(PRECISION_POLICIES), default="fp32")
    p.add_argument("--allocator", choices=preload.ALLOCATORS, default="system")
    p.add_argument(
        "--image_size", type=positive, default=None, help=f"default per model: {DEFAULT_IMAGE_SIZE}"
    )
    p.add_argument("--display_every", type=positive, default=1)
    p.add_argument("--model_file", default=None, help="a saved Keras model (.keras, .h5): "
                   "yours, instead of --model (kit_workload.user_model)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.forward_only:
        args.mode = "infer"
    preload.ensure(args.allocator)
    if args.data_format == "NCHW" and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        print(
            "error: NCHW training needs oneDNN; unset TF_ENABLE_ONEDNN_OPTS=0 or use NHWC",
            file=sys.stderr,
        )
        return 2

    import tensorflow as tf  # noqa: PLC0415 -- heavy: after the arguments are checked

    if args.num_inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.num_inter_threads)
    if args.num_intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.num_intra_threads)
    cpus = len(os.sched_getaffinity(0))
    threads = {
        "inter_op": pool_size(
            tf.config.threading.get_inter_op_parallelism_threads(), "INTER", cpus
        ),
        "intra_op": pool_size(
            tf.config.threading.get_intra_op_parallelism_threads(), "INTRA", cpus
        ),
        "inter_op_requested": args.num_inter_threads,
        "intra_op_requested": args.num_intra_threads,
        "affinity_cpus": cpus,
    }
    policy = set_precision(tf, args.precision)
    prepared = None
    if args.model_file:  # refused (status 2) before provenance if kit cannot run it
        prepared = user_model.prepare(tf, args.model_file, args.batch_size, args.mode)
    record = provenance.collect(tf, threads, "kit", argv)
    if prepared is not None:
        record["model_file"] = prepared[-1]
    record["precision"] = {"requested": args.precision, "keras_policy": policy}
    record["allocator"] = preload.record(args.allocator)
    record["mode"] = args.mode
    provenance.emit(record)

    before = host_speed()
    run(tf, args, prepared)
    after = host_speed()
    own = os.times()
    print(f"{CPU_PREFIX}{own.user + own.system:.3f}", flush=True)
    print(f"{HOST_SPEED_PREFIX}{before:.3f} {after:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
