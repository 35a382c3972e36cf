"""Throughput from a workload's output: small named parsers, one regex each, one pass.

Formats: tf_cnn_benchmarks (which kit's own workload prints too) and IntelAI model scripts.
Reading is streaming and keeps only the output's tail, since logs with verbose runtimes grow
large.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from kit.errors import ParseError
from kit.model.footprint import Footprint
from kit.model.latency import Latency
from kit.workload import (
    CPU_PREFIX,
    FOOTPRINT_PREFIX,
    HOST_SPEED_PREFIX,
    PROVENANCE_PREFIX,
    REFUSED_PREFIX,
    STEP_FAULTS_PREFIX,
    STEP_SECONDS_PREFIX,
    WARMUP_PREFIX,
)

_NUM = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
STEP_LINE = re.compile(
    rf"^\s*(\d+)\s+images/sec:\s*{_NUM}\s*\+/-\s*{_NUM}\s*\(jitter\s*=\s*{_NUM}\)\s*(\S*)"
)
TOTAL_LINE = re.compile(rf"^\s*total images/sec:\s*{_NUM}\s*$")
INTELAI_LINE = re.compile(rf"Throughput:\s*{_NUM}\s*images/sec")
BANDWIDTH_LINE = re.compile(rf"^total GB/s:\s*{_NUM}\s*$")  # kit_workload.bandwidth
# kit's workload, after the total: the per-batch times' percentiles.
LATENCY_LINE = re.compile(
    rf"^\s*latency ms:\s*p50\s+{_NUM}\s+p90\s+{_NUM}\s+p99\s+{_NUM}\s*\((\d+) batches\)"
)
# kit's workload, last: its own CPU seconds.
CPU_LINE = re.compile(rf"^{re.escape(CPU_PREFIX)}{_NUM}\s*$")
HOST_SPEED_LINE = re.compile(rf"^{re.escape(HOST_SPEED_PREFIX)}{_NUM} {_NUM}\s*$")
TAIL_LINES = 15


@dataclass(frozen=True)
class Step:
    """One tf_cnn_benchmarks progress line: cumulative mean, its standard error, jitter, loss."""

    step: int
    images_per_sec: float
    stderr: float
    jitter: float
    loss: float | None


@dataclass(frozen=True)
class ParsedOutput:
    images_per_sec: float | None
    source: str | None
    steps: tuple[Step, ...] = ()
    provenance: dict | None = None
    tail: tuple[str, ...] = field(default=())
    latency: Latency | None = None
    cpu_s: float | None = None  # the workload process's own CPU seconds, when it says
    host_speed: tuple[float, float] | None = None  # kit's workload: the host's, before/after
    warmup: dict | None = None  # kit's workload: the warmup it ran (kit_workload.train.warm_up)
    step_seconds: tuple[float, ...] = ()  # kit's workload: every timed batch's seconds
    step_faults: tuple[int, ...] = ()  # and the pages each faulted in
    footprint: Footprint | None = None  # kit's workload: where its memory and threads went
    refused: str | None = None  # kit's workload: what it could not run (a user's model), said

    def tail_text(self, lines: int = 8) -> str:
        return (
            " | ".join(line.strip() for line in self.tail[-lines:] if line.strip()) or "(no output)"
        )


def parse_step_line(line: str) -> Step | None:
    match = STEP_LINE.match(line)
    if not match:
        return None
    step, mean, err, jitter, loss = match.groups()
    try:
        loss_value: float | None = float(loss)
    except ValueError:
        loss_value = None
    if loss_value is not None and not math.isfinite(loss_value):
        loss_value = None  # a diverged loss says nothing about speed, and JSON cannot hold it
    return Step(int(step), float(mean), float(err), float(jitter), loss_value)


def parse_total_line(line: str) -> float | None:
    match = TOTAL_LINE.match(line)
    return float(match.group(1)) if match else None


def parse_latency_line(line: str) -> Latency | None:
    match = LATENCY_LINE.match(line)
    if not match:
        return None
    p50, p90, p99, batches = match.groups()
    return Latency(float(p50), float(p90), float(p99), int(batches))


def parse_cpu_line(line: str) -> float | None:
    match = CPU_LINE.match(line)
    return float(match.group(1)) if match else None


def parse_host_speed_line(line: str) -> tuple[float, float] | None:
    m = HOST_SPEED_LINE.match(line)
    if m is None:
        return None
    before, after = float(m.group(1)), float(m.group(2))
    return (before, after) if before > 0 and after > 0 else None


def parse_intelai_line(line: str) -> float | None:
    match = INTELAI_LINE.search(line)
    return float(match.group(1)) if match else None


PEAK_PREFIX = "kit-peak: "


def parse_peak_output(lines) -> dict | None:
    """The record `python -m kit_workload.peak` prints, or None."""
    for line in lines:
        if line.startswith(PEAK_PREFIX):
            try:
                record = json.loads(line[len(PEAK_PREFIX) :])
            except json.JSONDecodeError:
                return None
            return record if isinstance(record, dict) and "gflops" in record else None
    return None


def _json_after(prefix: str, line: str) -> object:
    if not line.startswith(prefix):
        return None
    try:
        return json.loads(line[len(prefix) :])
    except json.JSONDecodeError:
        return None


def parse_provenance_line(line: str) -> dict | None:
    record = _json_after(PROVENANCE_PREFIX, line)
    return record if isinstance(record, dict) else None


def parse_warmup_line(line: str) -> dict | None:
    record = _json_after(WARMUP_PREFIX, line)
    return record if isinstance(record, dict) and isinstance(record.get("batches"), int) else None


def parse_step_seconds_line(line: str) -> tuple[float, ...] | None:
    times = _json_after(STEP_SECONDS_PREFIX, line)
    if not isinstance(times, list) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0
        for t in times
    ):
        return None
    return tuple(float(t) for t in times)


def parse_step_faults_line(line: str) -> tuple[int, ...] | None:
    faults = _json_after(STEP_FAULTS_PREFIX, line)
    if not isinstance(faults, list) or not all(
        isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in faults
    ):
        return None
    return tuple(faults)


def parse_footprint_line(line: str) -> Footprint | None:
    return Footprint.from_json(_json_after(FOOTPRINT_PREFIX, line))


# kit's workload's own lines: a prefix, then the value; the first provenance line counts.
def parse_refused_line(line: str) -> str | None:
    return line[len(REFUSED_PREFIX) :].strip() or None if line.startswith(REFUSED_PREFIX) else None


_KIT_LINES = {
    "refused": parse_refused_line,
    "provenance": parse_provenance_line,
    "cpu_s": parse_cpu_line,
    "host_speed": parse_host_speed_line,
    "warmup": parse_warmup_line,
    "step_seconds": parse_step_seconds_line,
    "step_faults": parse_step_faults_line,
    "footprint": parse_footprint_line,
}


def _kit_line(line: str, found: dict) -> bool:
    """Keep the value of one of kit's workload's own lines; False when the line is not one."""
    if not line.startswith("kit-"):
        return False
    for key, parse in _KIT_LINES.items():
        if (value := parse(line)) is not None:
            if key != "provenance" or key not in found:
                found[key] = value
            return True
    return False


def parse_output(lines: Iterable[str]) -> ParsedOutput:
    """Read a whole output once; the last total (or IntelAI throughput) wins."""
    total = intelai = latency = bandwidth = None
    steps: list[Step] = []
    kit: dict = {}
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for raw in lines:
        line = raw.rstrip("\r\n")
        tail.append(line)
        if _kit_line(line, kit):
            continue
        if (step := parse_step_line(line)) is not None:
            steps.append(step)
        elif (value := parse_total_line(line)) is not None:
            total = value
        elif (found := parse_latency_line(line)) is not None:
            latency = found
        elif (value := parse_intelai_line(line)) is not None:
            intelai = value
        elif (match := BANDWIDTH_LINE.match(line)) is not None:
            bandwidth = float(match.group(1))
    if total is not None:
        rate, source = total, "tf_cnn_benchmarks"
    elif intelai is not None:
        rate, source = intelai, "intelai"
    elif bandwidth is not None:  # GB/s: the number a bandwidth run is judged by
        rate, source = bandwidth, "bandwidth"
    else:
        rate, source = None, None
    return ParsedOutput(rate, source, tuple(steps), tail=tuple(tail), latency=latency, **kit)


def require_throughput(parsed: ParsedOutput) -> float:
    if parsed.images_per_sec is None or parsed.images_per_sec <= 0:
        raise ParseError(f"no throughput in the output; it ended: {parsed.tail_text()}")
    return parsed.images_per_sec
