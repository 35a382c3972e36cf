"""What a plan would run, for `kit plan`: one typed row per run, as a table or JSON. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from tabulate import tabulate

from kit.cpus import format_cpu_list
from kit.engines.container import container_kwargs, docker_run_line
from kit.model.spec import RunSpec

PLAN_SCHEMA = 1
PLAN_SESSION = "plan"  # the session label a planned run's container would carry


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass(frozen=True)
class PlannedRun:
    index: int
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
    command: tuple[str, ...]
    docker_run: str


def planned_run(spec: RunSpec) -> PlannedRun:
    kwargs = container_kwargs(spec, PLAN_SESSION)
    return PlannedRun(
        index=spec.index,
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
        command=spec.command(),
        docker_run=docker_run_line(spec, PLAN_SESSION),
    )


PLAN_HEADERS = ("run", "engine", "image:profile", "rep", "inst", "cpuset", "mems", "cpus",
                "numactl", "threads", "env", "caps", "limits")  # fmt: skip


def _table_row(run: PlannedRun) -> list[str]:
    threads = f"{run.inter_op or '-'}/{run.intra_op or '-'}"
    limits = ", ".join(
        x for x in (run.memory_limit, run.pids_limit and f"pids {run.pids_limit}") if x
    )
    return [
        str(run.index), run.engine, f"{run.image}:{run.profile}", str(run.repeat), run.instance,
        run.cpuset, run.cpuset_mems or "-", run.cpus, " ".join(run.numactl[1:]) or "-", threads,
        " ".join(f"{k}={v}" for k, v in run.env.items()) or "-",
        ",".join(run.capabilities) or "-", limits or "-",
    ]  # fmt: skip


def format_plan(runs: Sequence[PlannedRun], fmt: PlanFormat = PlanFormat.table) -> str:
    """The plan as text: a table, then each run's ``docker run`` line; or versioned JSON."""
    if fmt is PlanFormat.json:
        return json.dumps({"schema": PLAN_SCHEMA, "runs": [asdict(r) for r in runs]}, indent=2)
    table = tabulate([_table_row(r) for r in runs], headers=PLAN_HEADERS, disable_numparse=True)
    lines = [f"  {r.index}: {r.docker_run}" for r in runs]
    return f"{table}\n\nBy hand, each run as a plain `docker run`:\n" + "\n".join(lines)
