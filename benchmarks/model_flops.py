"""The forward work per image of every model kit's workload runs, counted by TensorFlow's
profiler inside a kit image: the model's inference graph at batch 1, frozen, with
``ProfileOptionBuilder.float_operation()`` (2 FLOPs per multiply-add of convolutions and dense
layers, plus the elementwise ops TensorFlow registers a count for). kit/model/flops.py keeps these
figures; this prints them again on any image.

    .venv/bin/python benchmarks/model_flops.py [--image kit/tensorflow:stock]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

INSIDE = r"""
import json, sys
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from kit_workload.models import DEFAULT_IMAGE_SIZE, MODELS, build_model, input_shape
out = {}
for name in MODELS:
    size = DEFAULT_IMAGE_SIZE[name]
    model = build_model(tf, name, size, "NHWC")
    spec = tf.TensorSpec((1, *input_shape(size, "NHWC")), tf.float32)
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(forward).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=graph, options=options)
    out[name] = {"image_size": size, "forward_flop": info.total_float_ops,
                 "parameters": int(model.count_params())}
    tf.keras.backend.clear_session()
print("kit-flops: " + json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="kit/tensorflow:stock")
    args = parser.parse_args()
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v",
         f"{REPO / 'kit' / 'workload'}:/opt/kit/kit_workload:ro", args.image,
         "python", "-c", INSIDE],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("kit-flops: ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stderr[-2000:], file=sys.stderr)
        return 1
    from kit.model.flops import FORWARD_FLOP

    print(
        f"{'model':<16} {'size':>4} {'GFLOP/image':>12} {'model/flops.py':>15} {'params (M)':>10}"
    )
    for name, row in json.loads(line.removeprefix("kit-flops: ")).items():
        kept = FORWARD_FLOP.get(name)
        print(f"{name:<16} {row['image_size']:>4} {row['forward_flop'] / 1e9:>12.3f} "
              f"{'-' if kept is None else f'{kept / 1e9:.3f}':>12} "
              f"{row['parameters'] / 1e6:>10.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
