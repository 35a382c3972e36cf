"""The gate's choices, as the CLI offers them (a small module, so that `kit --help` lists them
without loading the statistics)."""

from enum import StrEnum


class GateOn(StrEnum):
    """What the gate compares: throughput (higher is better) or a latency percentile."""

    throughput = "throughput"
    p50 = "p50"
    p90 = "p90"
    p99 = "p99"


class Undecided(StrEnum):
    """What an undecided cell does to the gate (``--gate-undecided``)."""

    fail = "fail"
    passed = "pass"
