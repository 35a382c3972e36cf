"""What `kit plan` shows, gathered: the plan placed on the topology in use (this host's, a
file's, or each --host's as kit's probe there reads it), each run's rerun line in its engine's
own form, and the header: cells, runs, topology and an estimate from this host's recorded runs.
Nothing is started but, with --host, the probe that reads a host's topology."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.campaign.placing import (
    check_quota,
    idle_notes,
    memory_only_notes,
    merged_lines,
    place,
    setting_notes,
)
from kit.campaign.request import CampaignRequest
from kit.engines.container import docker_run_line
from kit.engines.factory import EngineMaker
from kit.engines.kinds import EngineKind
from kit.engines.slurm.commands import srun_line
from kit.errors import KitError
from kit.host.topology import Topology
from kit.host.topology_file import load_topology
from kit.judging.estimate import estimate
from kit.model.spec import RunSpec
from kit.reporting.preview import (
    PLAN_SESSION,
    PlannedRun,
    PlanSummary,
    describe_topology,
    planned_run,
)
from kit.store.database import ResultsDB
from kit.store.folder import DB_NAME


@dataclass(frozen=True)
class PlanView:
    runs: tuple[PlannedRun, ...]
    summary: PlanSummary
    notes: tuple[str, ...]  # merged cells and idle CPUs, said before the plan


Rerun = Callable[[RunSpec], str]


def _targets(
    request: CampaignRequest, maker: EngineMaker, topology: Path | None, threads: int | None
) -> list[tuple[Topology, str, list[str], Rerun]]:
    """Each machine the plan is placed on: its topology, where that came from, the engine names
    its runs carry, and how a run of it is rerun by hand."""
    where = request.where
    if where.hosts:
        found = []
        for endpoint in where.hosts:
            engine = maker.engine(EngineKind.docker, endpoint)
            facts = engine.host_facts(request.what.image_refs[0].reference)
            source = f"{endpoint.label}, read by kit's probe there"
            found.append((facts.topology, source, [engine.name],
                          lambda s, e=engine: e.rerun_line(s, PLAN_SESSION)))  # fmt: skip
        return found
    host = load_topology(topology, threads) if topology else maker.this_host()
    source = str(topology) if topology else "this host"
    if topology is None and EngineKind.slurm in where.kinds:
        source = (
            "this host's, for the cluster's nodes (each node's own is read as a session starts)"
        )
    names, lines = [], {}
    for kind in dict.fromkeys(where.kinds):
        if kind is EngineKind.slurm:
            names.append(kind.value)
            options = where.slurm
            lines[kind.value] = lambda s, o=options: srun_line(o, s, PLAN_SESSION)
            continue
        if topology is not None and kind in (EngineKind.auto, EngineKind.docker):
            names.append(EngineKind.docker.value)  # another machine's: Docker's own form
            continue
        try:
            engine = maker.engine(kind)
        except KitError:  # no engine of that kind here: its runs read as Docker's
            names.append(kind.value)
            continue
        names.append(engine.name)
        lines[engine.name] = lambda s, e=engine: e.rerun_line(s, PLAN_SESSION)

    def rerun(spec: RunSpec) -> str:
        made = lines.get(spec.engine)
        return made(spec) if made else docker_run_line(spec, PLAN_SESSION)

    return [(host, source, names, rerun)]


def plan_view(
    request: CampaignRequest, maker: EngineMaker, topology: Path | None = None,
    threads_per_core: int | None = None,
) -> PlanView:  # fmt: skip
    what = request.what
    assert what.image_refs  # a malformed reference is refused here, before any engine is asked
    check_quota(what, request.where.kinds)
    runs, notes, sources, specs = [], [], [], []
    for host, source, names, rerun in _targets(request, maker, topology, threads_per_core):
        placed = place(what, host, names)
        specs += placed
        runs += [planned_run(s, rerun(s)) for s in placed]
        notes += [*merged_lines(what, host), *setting_notes(what, host), *idle_notes(what, host)]
        notes += memory_only_notes(what, host)
        sources.append(describe_topology(host, source))
    cells = {(r.engine, r.image, r.profile) for r in runs}
    guess = _estimate(request, specs, topology is None and not request.where.remote)
    merged = sum(n.startswith("merged:") for n in notes)
    engines = tuple(dict.fromkeys(r.engine for r in runs))
    summary = PlanSummary(len(cells), merged, len(runs), what.repeats, what.adaptive is not None,
                          engines, "; ".join(sources), guess[0], guess[1])  # fmt: skip
    return PlanView(tuple(runs), summary, tuple(dict.fromkeys(notes)))


def _estimate(
    request: CampaignRequest, specs: list[RunSpec], here: bool
) -> tuple[str, float | None]:
    if not here:
        return "estimate: unknown (the plan is for another machine)", None
    db = request.how.db_path or request.how.results / DB_NAME
    if not db.is_file():
        return f"estimate: unknown (no results database at {db} yet)", None
    adaptive = request.what.adaptive
    rounds = (adaptive.min_repeats, adaptive.max_repeats) if adaptive else None
    with ResultsDB(db) as store:
        found = estimate(specs, store.history(), socket.gethostname(), rounds)
    return found.line(), (None if found.unknown or not found.recorded else found.seconds)
