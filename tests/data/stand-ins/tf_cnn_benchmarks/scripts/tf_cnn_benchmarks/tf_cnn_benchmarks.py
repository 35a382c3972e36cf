"""Stand-in for tensorflow/benchmarks' tf_cnn_benchmarks.py (the real checkout cannot be fetched
in the test environment). It accepts only flags the real script defines, refuses any other, and
prints the real script's output format, so kit's flag translation, read-only mount and parsing
are exercised end to end in a real container."""

import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--batch_size", type=int, required=True)
p.add_argument("--num_batches", type=int, required=True)
p.add_argument("--num_warmup_batches", type=int, default=None)  # the real one's: then 10
p.add_argument("--data_format", choices=["NHWC", "NCHW"], required=True)
p.add_argument("--device", choices=["cpu", "gpu"], required=True)
p.add_argument("--local_parameter_device", choices=["cpu", "gpu"])
p.add_argument("--display_every", type=int, default=10)
p.add_argument("--num_inter_threads", type=int, default=0)
p.add_argument("--num_intra_threads", type=int, default=0)
p.add_argument("--forward_only", default="False")
args = p.parse_args()

writable = os.access(os.path.dirname(os.path.abspath(__file__)), os.W_OK)
print(f"Model:       {args.model}")
print(f"Batch size:  {args.batch_size} global")
print(
    f"stand-in: intra={args.num_intra_threads} inter={args.num_inter_threads} writable={writable}"
)
print("Step\tImg/sec\ttotal_loss")
for step in range(1, args.num_batches + 1):
    if step % args.display_every == 0 or step == 1:
        print(f"{step}\timages/sec: 12.5 +/- 0.1 (jitter = 0.2)\t7.90")
print("-" * 64)
print("total images/sec: 12.34")
print("-" * 64)
sys.exit(0)
