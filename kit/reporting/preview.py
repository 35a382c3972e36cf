"""What a plan would run, for `kit plan`: a header (the cells, runs, topology and an estimate),
one row a cell (its repeats differ only in their label), and the line that reruns each cell by
hand in its engine's own form; or every run as versioned JSON. Pure."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from kit.cpus import format_cpu_list
from kit.engines.container import container_kwargs, docker_run_line
from kit.host.topology import Topology
from kit.model.spec import RunSpec
from kit.reporting.fit import fit
from kit.reporting.formats import Format, PlanFormat
from kit.reporting.table import NARROW_WIDTH, fit_with_notes, listing, render_tables

PLAN_SCHEMA = 3  # 2: summary.repeats a number, summary.adaptive; runs[].cell_number; 3: no
# runs[].docker_run (`rerun` is the line in the engine's own form)
PLAN_SESSION = "plan"  # the session label a planned run's container would carry


@dataclass(frozen=True)
class PlannedRun:
    index: int  # its place in the order the runs go
    cell_number: int  # its cell's place in the table (image-major)
    engine: str
    image: str
    profile: str
    repeat: int
    instance: str
    cpuset: str
    cpuset_mems: str | None
    cpus: str  # what the workload gets: the cpuset narrowed by numactl's CPU binding
    numactl: tuple[str, ...]
    env: dict[str, str]
    inter_op: int | None
    intra_op: int | None
    capabilities: tuple[str, ...]
    memory_limit: str | None
    pids_limit: int | None
    cpu_quota: float | None  # a CFS quota, in CPUs
    command: tuple[str, ...]
    rerun: str  # the line that reruns it by hand, in its engine's form (docker, podman, ...)

    @property
    def cell(self) -> tuple[str, str, str, str]:
        return (self.engine, self.image, self.profile, self.instance)


@dataclass(frozen=True)
class PlanSummary:
    """What `kit plan`'s header says: how much would run, on what, and for how long."""

    cells: int
    merged: int  # requested cells that run as another here (said above the plan)
    runs: int
    repeats: int  # a cell's runs; with adaptive repeats, the most it may take
    adaptive: bool  # --repeats auto: between its least and ``repeats``, as the verdicts allow
    engines: tuple[str, ...]
    topology: str  # where the topology came from and what it is
    estimate: str  # the estimate's line (kit.judging.estimate)
    estimate_seconds: float | None  # None: unknown for some cell


def describe_topology(topology: Topology, source: str) -> str:
    cores = topology.cores()
    smt = max(len(c) for c in cores)
    threads = f"SMT {smt}" if smt > 1 else "no SMT"
    far = [n.id for n in topology.nodes if not n.cpus]
    nodes = f"{len(topology.nodes)} NUMA node(s)"
    if far:
        nodes += f" (node {format_cpu_list(far)}: memory only)"
    return (
        f"{source}: {len(topology.sockets)} socket(s), {nodes}, "
        f"{len(cores)} cores, {len(topology.cpus)} CPUs ({threads})"
    )


def planned_run(spec: RunSpec, rerun: str | None = None) -> PlannedRun:
    kwargs = container_kwargs(spec, PLAN_SESSION)
    return PlannedRun(
        index=spec.index,
        cell_number=spec.cell,
        engine=spec.engine,
        image=spec.image.label,
        profile=spec.profile.name,
        repeat=spec.repeat + 1,
        instance=f"{spec.instance}/{spec.instances}",
        cpuset=spec.cpu_list,
        cpuset_mems=spec.mems_list,
        cpus=format_cpu_list(spec.effective_cpus or spec.cpus),
        numactl=spec.profile.numa.argv(),
        env=dict(spec.environment()),
        inter_op=spec.profile.inter_op,
        intra_op=spec.profile.intra_op,
        capabilities=tuple(kwargs.get("cap_add", ())),
        memory_limit=spec.limits.memory,
        pids_limit=spec.limits.pids,
        cpu_quota=spec.limits.cpu_quota,
        command=spec.command(),
        rerun=rerun or docker_run_line(spec, PLAN_SESSION),
    )


PLAN_HEADERS = ("cell", "engine", "inst", "cpuset", "mems", "cpus", "numactl", "threads", "env",
                "caps", "limits", "runs")  # fmt: skip


def _table_row(run: PlannedRun, indices: Sequence[int]) -> list[str]:
    threads = f"{run.inter_op or '-'}/{run.intra_op or '-'}"
    quota = run.cpu_quota and f"quota {run.cpu_quota:g} CPU{'s' if run.cpu_quota != 1 else ''}"
    limits = ", ".join(
        x for x in (run.memory_limit, run.pids_limit and f"pids {run.pids_limit}", quota) if x
    )
    return [
        f"{run.image}:{run.profile}", run.engine, run.instance, run.cpuset,
        run.cpuset_mems or "-", run.cpus, " ".join(run.numactl[1:]) or "-", threads,
        " ".join(f"{k}={v}" for k, v in run.env.items()) or "-",
        ",".join(run.capabilities) or "-", limits or "-", ",".join(map(str, indices)),
    ]  # fmt: skip


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def wrap_line(line: str, width: int = NARROW_WIDTH, indent: str = "  ") -> str:
    """A shell line folded at word boundaries within ``width``, each fold ending in `` \\``, so
    it still pastes as one command."""
    out, current = [], indent
    for word in (shlex.quote(w) for w in shlex.split(line)):
        if current.strip() and len(current) + 1 + len(word) + 2 > width:
            out.append(current + " \\")
            current = indent + "    " + word
        else:
            current = f"{current} {word}" if current.strip() else indent + word
    return "\n".join([*out, current])


def format_plan(
    runs: Sequence[PlannedRun], fmt: PlanFormat = PlanFormat.table,
    summary: PlanSummary | None = None,
) -> str:  # fmt: skip
    """The plan as text (a header, a row and a rerun line a cell), versioned JSON of every run,
    or the cells' rows as CSV or Markdown (each with its rerun line)."""
    if fmt is PlanFormat.json:
        data = {"schema": PLAN_SCHEMA, "summary": summary and asdict(summary),
                "runs": [asdict(r) for r in runs]}  # fmt: skip
        return json.dumps(data, indent=2)
    cells: dict[tuple, list[PlannedRun]] = {}
    for run in sorted(runs, key=lambda r: (r.cell_number, r.engine, r.instance, r.index)):
        cells.setdefault(run.cell, []).append(run)
    body = [_table_row(found[0], [r.index for r in found]) for found in cells.values()]
    if fmt is not PlanFormat.table:
        rows = [[*row, found[0].rerun] for row, found in zip(body, cells.values(), strict=True)]
        table = listing("cells", [*PLAN_HEADERS, "rerun"], rows)
        return render_tables([table], Format(fmt.value))
    lines = []
    if summary is not None:
        merged = f" ({summary.merged} more merged into them)" if summary.merged else ""
        lines += [
            f"{_count(summary.cells, 'cell')}{merged} x "
            f"{'up to ' if summary.adaptive else ''}{summary.repeats} repeats = "
            f"{_count(summary.runs, 'run')}, "
            f"each round in its own order, on {', '.join(summary.engines)}",
            fit(f"topology: {summary.topology}"),
            fit(summary.estimate),
            "",
        ]
    lines.append(fit_with_notes(PLAN_HEADERS, body, ("numactl", "env")))
    lines += ["", "By hand, one line a cell (its repeats run the same line; in a container, its "
              "kit.run label names the run):"]  # fmt: skip
    for found in cells.values():
        first = found[0]
        indices = ", ".join(str(r.index) for r in found)
        lines.append(f"# {first.image}:{first.profile} on {first.engine}, instance "
                     f"{first.instance} (runs {indices})")  # fmt: skip
        lines.append(wrap_line(first.rerun))
    return "\n".join(lines)
