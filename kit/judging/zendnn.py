"""Proof that AMD's ZenDNN ran (zentf): its own API log (``ZENDNNL_API_LOG_LEVEL=3``) names each
op it executes, ``[API    ][info   ][0.258324]:Executing _ZenConv2D Compute, ...``. Pure: lines
in, a count per op out.

Measured with zentf 2.21.0.0 on TensorFlow 2.21: ZenDNN's ops run only with
``TF_ENABLE_ZENDNN_OPTS=1``; with oneDNN also on, ZenDNN takes the convolutions and oneDNN the
rest, so AMD's settings turn oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

LOG_ENV = {"ZENDNNL_API_LOG_LEVEL": "3"}  # info: an "Executing" line per op run
EXECUTING = re.compile(r"^\[API\s*\]\[\w+\s*\]\[[\d.]+\]:Executing (_Zen\w+) Compute")
LOG_LINE = re.compile(r"^\[[A-Z]+\s*\]\[\w+\s*\]\[")  # any of ZenDNN's own log lines


@dataclass(frozen=True)
class ZenDnnSummary:
    ops: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    lines: int = 0  # ZenDNN log lines seen: 0 means it never logged (not loaded, or no log)

    @property
    def ran(self) -> bool:
        return sum(self.ops.values()) > 0

    def describe(self) -> str:
        """``_ZenConv2D 9, _ZenMatMul 3``, most executed first."""
        top = sorted(self.ops.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{op} {n}" for op, n in top)


def split_zendnn(lines: Iterable[str]) -> tuple[ZenDnnSummary, list[str]]:
    """ZenDNN's executions counted from its log lines, and the other lines as they came."""
    ops: dict[str, int] = {}
    seen = 0
    rest = []
    for line in lines:
        if not LOG_LINE.match(line):
            rest.append(line)
            continue
        seen += 1
        if found := EXECUTING.match(line):
            ops[found.group(1)] = ops.get(found.group(1), 0) + 1
    return ZenDnnSummary(MappingProxyType(ops), seen), rest
