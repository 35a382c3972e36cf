"""``python -m kit_workload.cnn_benchmarks``: tf_cnn_benchmarks from a mounted checkout of
tensorflow/benchmarks, with kit's flags translated to its own and kit's provenance line first.

The script replaces this process (exec), so the numactl policy, the cpuset and the environment
it runs under are exactly the ones the provenance line reports.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import preload, provenance
from .__main__ import parser as kit_parser
from .steady import AUTO

# A checkout of tensorflow/benchmarks, or its scripts/tf_cnn_benchmarks folder itself.
SCRIPTS = ("scripts/tf_cnn_benchmarks/tf_cnn_benchmarks.py", "tf_cnn_benchmarks.py")
# kit's model names in tf_cnn_benchmarks' words (its other models have no Keras twin).
MODEL_NAMES = {
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "inception_v3": "inception3",
    "vgg16": "vgg16",
}
# Its twins that need TensorFlow 1: built on tf.contrib, which TensorFlow 2 has not.
TF1_ONLY = {"mobilenet_v2": "mobilenet"}


def parser() -> argparse.ArgumentParser:
    p = kit_parser()
    p.prog = "kit_workload.cnn_benchmarks"
    p.add_argument("--workload_dir", required=True, help="checkout of tensorflow/benchmarks")
    return p


def translate(args: argparse.Namespace) -> list[str]:
    """kit's flags in tf_cnn_benchmarks' words. No --mkl: it would overwrite KMP_* and drop
    OMP_NUM_THREADS, and the profile's environment is what is being measured."""
    flags = [
        f"--model={MODEL_NAMES.get(args.model, args.model)}",
        f"--batch_size={args.batch_size}",
        f"--num_batches={args.num_batches}",
        f"--data_format={args.data_format}",
        "--device=cpu",
        "--local_parameter_device=cpu",
        f"--display_every={args.display_every}",
    ]
    if args.num_warmup_batches != AUTO:  # auto: tf_cnn_benchmarks' own default (10)
        flags.append(f"--num_warmup_batches={args.num_warmup_batches}")
    if args.num_inter_threads:
        flags.append(f"--num_inter_threads={args.num_inter_threads}")
    if args.num_intra_threads:
        flags.append(f"--num_intra_threads={args.num_intra_threads}")
    if args.forward_only or args.mode == "infer":
        flags.append("--forward_only=True")
    return flags


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    script = next(
        (path for s in SCRIPTS if os.path.isfile(path := os.path.join(args.workload_dir, s))), None
    )
    if script is None:
        print(f"error: no tf_cnn_benchmarks.py in {args.workload_dir}; mount a checkout of "
              "tensorflow/benchmarks", file=sys.stderr)  # fmt: skip
        return 2
    preload.ensure(args.allocator)  # LD_PRELOAD, which the script's process inherits
    import tensorflow as tf  # noqa: PLC0415 -- heavy: for the provenance line only

    cpus = len(os.sched_getaffinity(0))
    threads = {
        "inter_op": args.num_inter_threads or cpus,
        "intra_op": args.num_intra_threads or cpus,
        "inter_op_requested": args.num_inter_threads,
        "intra_op_requested": args.num_intra_threads,
        "affinity_cpus": cpus,
    }
    record = provenance.collect(tf, threads, "tf_cnn_benchmarks", argv)
    record["mode"] = "infer" if args.forward_only or args.mode == "infer" else "train"
    record["precision"] = {"requested": args.precision, "keras_policy": None}
    record["allocator"] = preload.record(args.allocator)
    provenance.emit(record)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, script, *translate(args)])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
