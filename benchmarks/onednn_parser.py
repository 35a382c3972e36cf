"""How fast kit reads a oneDNN verbose log, and in how much memory.

Writes a synthetic log of the given size (one header, then the execution and TensorFlow lines
of the captured samples in tests/data/onednn, repeated, each execution with its own time, as
in a real log; `--timestamps` puts a timestamp column in front of each, as
ONEDNN_VERBOSE_TIMESTAMP=1 does) to a temporary file, then parses it streaming from that file.
Prints MB/s, lines/s and the process's peak RSS.

    .venv/bin/python benchmarks/onednn_parser.py [--mb 500] [--timestamps]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path

from kit.judging.onednn import parse_verbose

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "onednn"
MB = 1024 * 1024
EXEC = "onednn_verbose,exec,"


def header_and_body() -> tuple[list[str], list[str]]:
    """A real log prints its header once, then executions with other output between them."""
    header = [
        line
        for line in (SAMPLES / "onednn-3.2-template.log").read_text().splitlines()
        if not line.startswith(EXEC)
    ]
    # MKL-DNN 0.x has no engine column and never shares a process with the newer libraries.
    body = [
        line
        for path in sorted(SAMPLES.glob("*.log"))
        if not path.name.startswith("mkldnn")
        for line in path.read_text().splitlines()
        if ",exec," in line or "_verbose," not in line
    ]
    return header, body


def write_log(path: Path, megabytes: int, timestamps: bool = True) -> int:
    """Write about ``megabytes`` of log; returns the number of lines."""
    header, body = header_and_body()
    budget, lines, stamp = megabytes * MB, 0, 1_700_000_000_000.0
    with path.open("w") as log:
        for sample in itertools.chain(header, itertools.cycle(body)):
            text = sample + "\n"
            if text.startswith(EXEC):
                stamp += 0.125  # each line distinct, as in a real log
                if timestamps:
                    text = f"onednn_verbose,{stamp:.3f},exec,{text.removeprefix(EXEC)}"
                else:
                    text = f"{text.rpartition(',')[0]},{stamp % 7.0:.5f}\n"
            log.write(text)
            lines += 1
            budget -= len(text)
            if budget <= 0:
                break
    return lines


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="size of the synthetic log (MB)")
    parser.add_argument("--timestamps", action="store_true", help="a timestamp on every line")
    args = parser.parse_args()
    if args.mb < 1:
        parser.error("--mb must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "verbose.log"
        lines = write_log(path, args.mb, args.timestamps)
        size_mb = path.stat().st_size / MB
        rss_before = peak_rss_mb()
        start = time.perf_counter()
        with path.open() as log:
            summary = parse_verbose(log)
        elapsed = time.perf_counter() - start
    print(f"log:       {size_mb:.0f} MB, {lines:,} lines, {summary.total_exec:,} executions")
    print(f"parsed in: {elapsed:.1f} s")
    print(f"speed:     {size_mb / elapsed:.1f} MB/s, {lines / elapsed:,.0f} lines/s")
    print(f"peak RSS:  {peak_rss_mb():.1f} MB (before parsing {rss_before:.1f} MB)")
    print(
        f"summary:   {len(summary.primitives)} primitives, {summary.malformed:,} malformed, "
        f"ref share {summary.ref_share:.1%}"
    )


if __name__ == "__main__":
    main()
