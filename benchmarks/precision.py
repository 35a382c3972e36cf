"""bf16 against fp32 on this host, training and inference, and inference latency at batch 1.

Runs one `kit sweep IMAGES -p PROFILE -k precision=fp32,bf16 --repeats N` per workload (the
cells interleaved, so drifting load is shared), then prints per image the two precisions'
images/sec, bf16/fp32 with its 95% interval (kit.judging.stats.compare), and for inference
the median p50/p99 per-batch latency. bf16 needs avx512_bf16 or amx_bf16 (else pass
--allow-emulated).

    .venv/bin/python benchmarks/precision.py [--images stock,latest] [--model resnet50]
        [--repeats 3] [--allow-emulated]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from kit.host.facts import parse_cpuinfo
from kit.judging.cells import cells
from kit.judging.stats import compare
from kit.store.folder import load_session

# workload -> the sizes its sweep runs with
WORKLOADS = {
    "train": ["--mode", "train", "--batch-size", "16", "--num-batches", "5",
              "--num-warmup-batches", "1"],
    "infer": ["--mode", "infer", "--batch-size", "16", "--num-batches", "10",
              "--num-warmup-batches", "2"],
    "latency (batch 1)": ["--preset", "latency", "--num-batches", "30"],
}  # fmt: skip


def sweep(images: list[str], workload: list[str], args, results: Path):
    argv = [
        sys.executable, "-m", "kit", "sweep", *images, "-p", args.profile,
        "-k", "precision=fp32,bf16", "--model", args.model, *workload,
        "--repeats", str(args.repeats), "--results", str(results),
    ]  # fmt: skip
    if args.allow_emulated:
        argv.append("--allow-emulated")
    print("$ kit", " ".join(argv[3:]), flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"the sweep failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    newest = max((p for p in results.iterdir() if p.is_dir()), key=lambda p: p.name)
    return load_session(newest)


def report(name: str, runs) -> None:
    by = {(c.first.image, c.first.knobs.get("precision")): c for c in cells(runs)}
    for image in dict.fromkeys(image for image, _ in by):
        fp32, bf16 = by[(image, "fp32")], by[(image, "bf16")]
        a, b = fp32.samples(), bf16.samples()
        s = compare(b, a)
        line = (f"{name:<18} {image:<8} fp32 {statistics.median(a):8.2f}  bf16 "
                f"{statistics.median(b):8.2f} img/s  bf16/fp32 {s.ratio:.2f}x "
                f"[{s.low:.2f}, {s.high:.2f}]")  # fmt: skip
        if fp32.first.latency_ms:
            lat = {p: {c: statistics.median(cell.latencies(p)) for c, cell in
                       (("fp32", fp32), ("bf16", bf16))} for p in ("p50", "p99")}  # fmt: skip
            line += (f"  p50 {lat['p50']['fp32']:.1f} -> {lat['p50']['bf16']:.1f} ms, "
                     f"p99 {lat['p99']['fp32']:.1f} -> {lat['p99']['bf16']:.1f} ms")  # fmt: skip
        print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="stock,latest")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=tuple(WORKLOADS), default=None)
    parser.add_argument("--allow-emulated", action="store_true")
    args = parser.parse_args()
    info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    print(f"host: {info['cpu_model']}; ISA: {' '.join(info['isa_flags'])}")  # type: ignore[arg-type]
    images = [i.strip() for i in args.images.split(",") if i.strip()]
    with tempfile.TemporaryDirectory(prefix="kit-precision-") as tmp:
        for name, workload in WORKLOADS.items():
            if args.only in (None, name):
                report(name, sweep(images, workload, args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
