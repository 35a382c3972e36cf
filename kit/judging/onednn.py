"""Where a run's time went inside oneDNN: a streaming reader of its verbose log.

Reads the output of ONEDNN_VERBOSE=1 (oneDNN 2.x/3.x), DNNL_VERBOSE=1 (DNNL 1.x) and
MKLDNN_VERBOSE=1 (MKL-DNN 0.x) among the workload's other output, line by line and keeping no
line, since a verbose log of a real training run reaches hundreds of MB. Memory is bounded by
the number of distinct (primitive kind, implementation) pairs. Pure: any iterable of str in.

Layouts, after the ``<lib>_verbose`` marker:

- MKL-DNN 0.x: ``exec,kind,impl,...,ms`` (no engine column);
- DNNL 1.x, oneDNN 2.x-3.2: ``[timestamp,]exec,engine,kind,impl,...,ms``;
- oneDNN 3.3+: ``[v1,][timestamp,]primitive,exec,engine,kind,impl,...,ms``.

A ``template:`` info line, when present, names the columns and wins over the guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import NamedTuple

from kit.errors import UsageError

# The marker, optional format-version tag and timestamp, optional component, the operation.
HEAD = re.compile(
    r"(?:onednn|dnnl|mkldnn)_verbose,"
    r"(?:(?:v\d+|\d+(?:\.\d+)?),){0,2}"
    r"(?:(?P<component>primitive|graph|common|ukernel|gemm_api),)?"
    r"(?P<op>[a-z_]+(?::[a-z_]+)*)(?:,|$)"
)
MARKER = re.compile(r"(?:onednn|dnnl|mkldnn)_verbose,")
VERSION = re.compile(
    r"(?:oneDNN|DNNL|MKL-DNN) v(?P<version>\d+(?:\.\d+)+(?:-\w+)?)(?: \([^)]*\))?(?:,(?P<isa>.+))?"
)
RUNTIME = re.compile(r"cpu,runtime:(?P<runtime>\w+)(?:,nthr:(?P<threads>\d+))?")
ISA = re.compile(r"(?:cpu,isa:|Detected ISA is )(?P<isa>.+)")
TEMPLATE = re.compile(r"(?:prim_)?template:(?P<columns>.+)")
ENGINE = re.compile(r"(?:cpu|gpu)(?:2(?:cpu|gpu))?(?::\d+)?")
# A kind never reads as an engine: if it does, the layout does not fit the line.
KIND = re.compile(r"(?!(?:cpu|gpu)(?:2(?:cpu|gpu))?(?::\d+)?$)[a-z][a-z0-9_]*")
IMPLEMENTATION = re.compile(r"\S+")

# Components whose lines are not primitive executions: graph partitions would count twice.
FOREIGN_COMPONENTS = frozenset({"graph", "common", "ukernel", "gemm_api"})
REF_PREFIX = "ref"
# A memory descriptor of bf16 data: ``src_bf16::blocked`` (oneDNN to 3.4) or
# ``src:bf16::blocked`` (3.5+). Implementation names such as avx512_core_bf16 end in a comma.
BF16_DESCRIPTORS = ("_bf16:", ":bf16:")
FPMATH = re.compile(r"attr-fpmath:(\w+)")
# What may come before ``,exec,`` on a line the cache answers: the marker, a format tag or a
# timestamp, and the primitive component (others are not executions).
EXEC_PREFIX = re.compile(
    r"(?:onednn|dnnl|mkldnn)_verbose(?:,(?:v\d+|\d+(?:\.\d+)?)){0,2}(?:,primitive)?"
)
SEEN_LIMIT = 16384  # distinct executions remembered: a few MB at most
PREFIX_LIMIT = 64  # heads remembered; a timestamped log's never repeat, so few are kept


class Head(NamedTuple):
    op: str
    component: str | None
    rest: str


class Exec(NamedTuple):
    engine: str
    kind: str
    implementation: str
    ms: float


class Tally(NamedTuple):
    count: int
    total_ms: float


@dataclass(frozen=True)
class Layout:
    """Where an exec line's fields sit, counted in the fields after the operation; the time is
    counted from the end, since descriptors and attributes vary in width across versions."""

    engine: int | None
    kind: int
    implementation: int
    time_from_end: int = 0

    @cached_property  # computed once, read on every exec line
    def min_fields(self) -> int:
        return max(self.engine or 0, self.kind, self.implementation) + 2 + self.time_from_end


WITH_ENGINE = Layout(engine=0, kind=1, implementation=2)
WITHOUT_ENGINE = Layout(engine=None, kind=0, implementation=1)  # MKL-DNN 0.x: CPU only


@dataclass(frozen=True)
class OneDnnSummary:
    """What a verbose log says: the library's header, and per (primitive kind, implementation)
    how many CPU executions and how many milliseconds. ``malformed`` counts verbose records that
    could not be read (cut short, spliced into other output); they are left out of the time."""

    version: str | None = None
    runtime: str | None = None
    threads: int | None = None
    isa: str | None = None
    primitives: Mapping[tuple[str, str], Tally] = field(
        default_factory=lambda: MappingProxyType({})
    )
    malformed: int = 0
    verbose_lines: int = 0
    # Executions with a bf16 tensor among their memory descriptors (``src_bf16::...``).
    bf16_exec: int = 0
    bf16_ms: float = 0.0
    fpmath: str | None = None  # an execution's ``attr-fpmath:`` (ONEDNN_DEFAULT_FPMATH_MODE)

    @property
    def bf16_share(self) -> float:
        """The share of oneDNN's time in primitives that read or wrote bf16."""
        total = self.total_ms
        return self.bf16_ms / total if total > 0 else 0.0

    def __post_init__(self) -> None:
        if self.malformed < 0 or self.verbose_lines < self.malformed:
            raise UsageError(f"{self.malformed} malformed of {self.verbose_lines} verbose lines")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"thread count must be positive, not {self.threads}")

    @property
    def enabled(self) -> bool:
        """Whether the run printed any verbose line (the library honoured the variable)."""
        return self.verbose_lines > 0

    @property
    def total_exec(self) -> int:
        return sum(tally.count for tally in self.primitives.values())

    @property
    def total_ms(self) -> float:
        return math.fsum(tally.total_ms for tally in self.primitives.values())

    @property
    def ref_ms(self) -> float:
        """Time in reference implementations: oneDNN's unoptimized fallback paths."""
        return math.fsum(
            tally.total_ms
            for (_, implementation), tally in self.primitives.items()
            if implementation.startswith(REF_PREFIX)
        )

    @property
    def ref_share(self) -> float:
        total = self.total_ms
        return self.ref_ms / total if total > 0 else 0.0


def parse_head(line: str) -> Head | None:
    match = HEAD.match(line)
    if not match:
        return None
    return Head(match["op"], match["component"], line[match.end() :])


def parse_version(payload: str) -> tuple[str, str | None] | None:
    """``oneDNN v3.2.1 (commit N/A)`` -> ``("3.2.1", None)``. MKL-DNN 0.x appends its ISA."""
    match = VERSION.search(payload)
    return (match["version"], match["isa"]) if match else None


def parse_runtime(payload: str) -> tuple[str, int | None] | None:
    match = RUNTIME.fullmatch(payload)
    if not match:
        return None
    threads = int(match["threads"]) if match["threads"] else 0
    return match["runtime"], threads or None  # nthr:0 counts nothing


def parse_isa(payload: str) -> str | None:
    match = ISA.fullmatch(payload)
    return match["isa"].strip() if match else None


def parse_template(payload: str) -> Layout | None:
    """A ``template:`` header's columns -> where exec fields sit; None if it names too little."""
    match = TEMPLATE.fullmatch(payload)
    if not match:
        return None
    columns = match["columns"].split(",")
    try:
        after = columns.index("operation") + 1
        kind = columns.index("primitive") - after
        implementation = columns.index("implementation") - after
        time_from_end = len(columns) - 1 - columns.index("exec_time")
    except ValueError:
        return None
    engine = columns.index("engine") - after if "engine" in columns else None
    if min(kind, implementation, 0 if engine is None else engine) < 0:
        return None
    return Layout(engine, kind, implementation, time_from_end)


def parse_exec(rest: str, layout: Layout | None) -> Exec | None:
    """An exec line's fields after the operation; None when they do not make sense. Without a
    template, an engine in the first field tells the layout."""
    if "_verbose," in rest and MARKER.search(rest):
        return None  # two records spliced into one line by concurrent writers
    fields = rest.split(",")
    if layout is None:
        layout = WITH_ENGINE if ENGINE.fullmatch(fields[0]) else WITHOUT_ENGINE
    if len(fields) < layout.min_fields:
        return None
    engine = "cpu" if layout.engine is None else fields[layout.engine]
    kind, implementation = fields[layout.kind], fields[layout.implementation]
    if kind == "gemm_api" and not implementation:
        # The BLAS-like gemm entry point names no implementation (stock TF's Eigen matmuls
        # call it even with oneDNN's graph rewrites off).
        implementation = "gemm_api"
    if not (
        KIND.fullmatch(kind)
        and ENGINE.fullmatch(engine)
        and IMPLEMENTATION.fullmatch(implementation)
    ):
        return None
    try:
        ms = float(fields[-1 - layout.time_from_end])
    except ValueError:
        return None
    if not (math.isfinite(ms) and ms >= 0):
        return None
    return Exec(engine, kind, implementation, ms)


def is_cpu(engine: str) -> bool:
    return engine == "cpu" or engine.startswith("cpu:")


class VerboseAccumulator:
    """Folds verbose lines in one at a time; ``summary()`` may be called at any point."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.runtime: str | None = None
        self.threads: int | None = None
        self.isa: str | None = None
        self.layout: Layout | None = None
        self.malformed = 0
        self.verbose_lines = 0
        self.fpmath: str | None = None
        self._tallies: dict[tuple[str, str], list] = {}  # [count, total_ms], updated in place
        self._bf16 = [0, 0.0]  # executions with a bf16 memory descriptor, and their ms
        # An execution's fields but its time (from the operation on) -> its tally and whether
        # it is bf16: what reading them gave, so a repeat costs a lookup (feed_all).
        self._seen: dict[str, tuple[list | None, bool]] = {}
        self._prefixes: set[str] = set()  # heads before ``,exec,`` that EXEC_PREFIX accepted

    def feed(self, line: str) -> bool:
        """Fold one line in; returns whether it was oneDNN's (a verbose record, even a
        malformed one)."""
        if "_verbose," not in line:
            return False  # the fast path: most of a mixed log is other output
        text = line.strip()
        head = parse_head(text)
        if head is None:
            # A marker not heading its line: a record cut short or spliced into other output.
            if MARKER.search(text):
                self.verbose_lines += 1
                self.malformed += 1
                return True
            return False
        self.verbose_lines += 1
        if head.component in FOREIGN_COMPONENTS:
            return True
        if head.op == "exec":
            self._exec(head.rest, text)
        elif head.op == "info":
            self._info(head.rest)
        # Other operations (create:cache_miss, error, ...) are not executions: nothing to time.
        return True

    def feed_all(self, lines: Iterable[str], others: list[str] | None = None) -> None:
        """``feed`` for every line; an execution whose fields but its time were read before
        (under the same layout) is counted here without a call: its fields from the operation
        to the time are looked up, so only the time is new. Most of a log is the same few
        hundred primitives again. A head with leading space fails the prefix and goes the
        long way. Lines not oneDNN's go to ``others``."""
        seen, bf16, prefixes = self._seen, self._bf16, self._prefixes
        hits = bad = 0
        for line in lines:
            if "_verbose," in line:
                cut = line.rfind(",")
                at = line.find(",exec,", 0, cut)
                known = seen.get(line[at:cut]) if at >= 0 else None
                if known is not None and (line[:at] in prefixes or self._head_ok(line, at)):
                    hits += 1
                    try:
                        ms = float(line[cut + 1 :])
                    except ValueError:
                        ms = math.nan
                    if not (ms >= 0 and ms != math.inf):
                        bad += 1
                    elif (tally := known[0]) is not None:
                        tally[0] += 1
                        tally[1] += ms
                        if known[1]:
                            bf16[0] += 1
                            bf16[1] += ms
                    continue
            if not self.feed(line) and others is not None:
                others.append(line)
        self.verbose_lines += hits
        self.malformed += bad

    def _head_ok(self, line: str, at: int) -> bool:
        """Whether what comes before ``,exec,`` is a head: checked by EXEC_PREFIX, and kept
        when it carries no timestamp (then every line of the log has it)."""
        if not EXEC_PREFIX.fullmatch(line, 0, at):
            return False
        if len(self._prefixes) < PREFIX_LIMIT:
            self._prefixes.add(line[:at])
        return True

    def _remember(self, text: str, tally: list | None, bf16: bool) -> None:
        if len(self._seen) >= SEEN_LIMIT or (self.layout and self.layout.time_from_end):
            return
        head = text.rpartition(",")[0]
        at = head.find(",exec,")
        if at >= 0 and EXEC_PREFIX.fullmatch(head, 0, at):
            self._seen[head[at:]] = (tally, bf16)

    def _exec(self, rest: str, text: str) -> None:
        parsed = parse_exec(rest, self.layout)
        if parsed is None:
            self.malformed += 1
            return
        if not is_cpu(parsed.engine):
            self._remember(text, None, False)
            return
        bf16 = any(marker in rest for marker in BF16_DESCRIPTORS)
        if self.fpmath is None and (mode := FPMATH.search(rest)):
            self.fpmath = mode.group(1)
        if bf16:
            self._bf16[0] += 1
            self._bf16[1] += parsed.ms
        tally = self._tallies.get((parsed.kind, parsed.implementation))
        if tally is None:
            tally = self._tallies[(parsed.kind, parsed.implementation)] = [1, parsed.ms]
        else:
            tally[0] += 1
            tally[1] += parsed.ms
        self._remember(text, tally, bf16)

    def _info(self, payload: str) -> None:
        """Header lines. A template applies from where it appears; of the others the first
        wins, so a log holding several processes' output reports the first process."""
        if payload.startswith(("prim_template:", "template:")):
            layout = parse_template(payload)
            if layout is None:
                self.malformed += 1
            else:
                self.layout = layout
                self._seen.clear()  # what was read under the old columns may read otherwise
        elif (runtime := parse_runtime(payload)) is not None:
            if self.runtime is None:
                self.runtime, self.threads = runtime
        elif (isa := parse_isa(payload)) is not None:
            self.isa = self.isa or isa
        elif self.version is None and (version := parse_version(payload)) is not None:
            self.version, isa = version
            self.isa = self.isa or (isa.strip() if isa else None)

    def summary(self) -> OneDnnSummary:
        return OneDnnSummary(
            version=self.version,
            runtime=self.runtime,
            threads=self.threads,
            isa=self.isa,
            primitives=MappingProxyType(
                {key: Tally(int(count), ms) for key, (count, ms) in self._tallies.items()}
            ),
            malformed=self.malformed,
            verbose_lines=self.verbose_lines,
            bf16_exec=int(self._bf16[0]),
            bf16_ms=self._bf16[1],
            fpmath=self.fpmath,
        )


def parse_verbose(lines: Iterable[str]) -> OneDnnSummary:
    """One pass over a log, in memory bounded by the distinct primitives it ran."""
    accumulator = VerboseAccumulator()
    accumulator.feed_all(lines)
    return accumulator.summary()
