"""A campaign: what ``kit compare``, ``run``, ``verify`` and ``plan`` ask for, as one typed request,
taken through two steps.

``prepare(request, maker, feedback)`` checks the whole request, opens the engines, brings every
image to every engine, reads each machine's facts and places the plan once per machine.
``execute(prepared, feedback)`` holds the session lock, opens the session and runs it, persisting
each result the moment it exists. Everything the command line does between its options and its
table happens here, in this order, and nowhere else.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kit import __version__
from kit.campaign.lock import check_lock, session_lock
from kit.campaign.placing import (
    FirstPlan,
    cells_of,
    check_quota,
    describe_host,
    grid_of,
    idle_notes,
    machines_of,
    memory_only_notes,
    merged_lines,
    place,
    place_fleet,
    profiles_of,
    setting_notes,
    spread_over,
)
from kit.campaign.quiet import check_quiet
from kit.campaign.recipe import recipe_json
from kit.campaign.request import CampaignRequest, What
from kit.campaign.schedules.adaptive import AdaptiveSchedule
from kit.campaign.schedules.budget import AllAtOnce, Schedule, check_budget
from kit.campaign.session import check_resumable, open_session, run_session, run_verify
from kit.engines.base import Engine, EngineSet, Runner
from kit.engines.factory import EngineMaker, open_engines
from kit.engines.podman import describe
from kit.errors import Interrupted, KitError, UsageError
from kit.host.facts import BF16_FLAGS, HostFacts, native_bf16
from kit.host.topology import Topology
from kit.images.delivery import deliver
from kit.inputs import stat_of
from kit.judging.cells import cell_keys, check_baseline
from kit.judging.gate import Gate, GateResult
from kit.judging.history import History, judge
from kit.judging.series import series_of
from kit.judging.stats import sequential_confidence
from kit.judging.verify import diagnostic_spec
from kit.model.feedback import Feedback
from kit.model.profiles import Profile
from kit.model.results import RunResult, Status
from kit.model.spec import Limits, RunSpec
from kit.model.workload import Precision
from kit.settings import check_environment
from kit.store.database import ResultsDB
from kit.store.folder import SessionDir, check_writable, load_session
from kit.store.past import load_past


@dataclass(frozen=True)
class Prepared:
    """A campaign ready to run: its engines hold every image, its plan is placed."""

    request: CampaignRequest
    engines: Mapping[str, Engine]
    facts: Mapping[str, HostFacts]  # by engine
    machines: Mapping[str, tuple[str, ...]]  # machine -> its engines, which take turns
    plan: tuple[RunSpec, ...]
    gate_runs: tuple[RunResult, ...] | History = ()

    @property
    def baseline(self) -> str:
        """The cell speedups are measured against: --baseline, else the table's first cell (not
        the first run: each round runs its cells in its own order)."""
        return self.request.how.baseline or min(self.plan, key=lambda s: (s.cell, s.index)).key

    @property
    def engine(self) -> Runner:
        """The one seam the session runs through (a set when there are several engines)."""
        if len(self.engines) == 1:
            return next(iter(self.engines.values()))
        return EngineSet(dict(self.engines))

    @property
    def host_records(self) -> dict[str, dict]:
        """Each engine's host record (what every run's provenance carries), naming the machine
        its runs took turns on (what the table's baselines are per)."""
        machine_of = {name: m for m, names in self.machines.items() for name in names}
        return {name: {**f.record, "machine": machine_of.get(name, f.machine)}
                for name, f in self.facts.items()}  # fmt: skip


@dataclass(frozen=True)
class Finished:
    session_id: str
    folder: Path
    planned: int
    runs: tuple[RunResult, ...]
    verified: tuple[dict, ...]
    gate: GateResult | None  # None: no gate asked for

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if not r.ok]

    @property
    def lost(self) -> list[RunResult]:
        """The runs their engine lost before they ended: --resume runs them again."""
        return [r for r in self.runs if r.status is Status.lost]


def winner_profile(prepared: Prepared, key: str) -> Profile:
    """The profile a sweep's or tune's cell ran (IMAGE:PROFILE), on the first machine."""
    topology = next(iter(prepared.facts.values())).placed_on
    cells = {c.key: c.profile for c in grid_of(prepared.request.what, topology).cells}
    return cells[key]


def recipe_of(prepared: Prepared) -> dict:
    """What the session asked for, as ``kit replay`` places it again on another machine."""

    what = prepared.request.what
    topology = next(iter(prepared.facts.values())).placed_on
    return recipe_json(what, *cells_of(what, topology))


def check_request(request: CampaignRequest, maker: EngineMaker) -> FirstPlan | None:
    """Everything about the request that needs no engine, checked before any is asked: the
    profiles, the images' references, the results folder, resume and gate sessions, and (with
    no --host) the placement on this machine, returned to be reused for its engines."""

    what, how = request.what, request.how
    check_environment()
    _ = what.image_refs
    first = None
    if not request.where.remote:
        kinds = tuple(k.value for k in dict.fromkeys(request.where.kinds))
        topology = maker.this_host()
        first = FirstPlan(topology, kinds, tuple(place(what, topology, kinds)))
        _check_memory(what.limits, topology)
        if how.baseline is not None and "@" not in how.baseline:  # @ENGINE: once they answer
            _check_baseline(first.specs, how.baseline)
    else:
        profiles_of(what)
    if "local" in [k.value for k in request.where.kinds] and (
        what.limits.memory or what.limits.pids
    ):
        raise UsageError(
            "--memory and --pids-limit are container limits", "use them with --engine docker"
        )
    check_quota(what, request.where.kinds)
    if how.tuning is not None and first is not None:
        check_budget(how.tuning.budget, len({s.key for s in first.specs}))
    check_writable(how.results)
    check_lock(how.allow_concurrent)
    ResultsDB.check(how.db_path)
    if how.resume is not None:
        folder = SessionDir.open(how.results, how.resume)
        if first is not None:  # the same plan, or refused now (engines answer later)
            check_resumable(folder, first.specs, by_kind=True)
        else:
            folder.read_meta()  # a damaged record is refused before any engine is asked
    return first


def prepare(request: CampaignRequest, maker: EngineMaker, feedback: Feedback) -> Prepared:
    """Check, open engines, deliver images, read facts, place the plan once per machine."""
    first = check_request(request, maker)
    if request.what.sweep is not None:
        topology = first.topology if first is not None else maker.this_host()
        for line in grid_of(request.what, topology).lines():
            feedback.say(line)
    how = request.how
    gate_runs = gate_baseline(how.gate, how.results, how.db_path) if how.gate else []
    where = request.where
    engines = open_engines(maker, where.kinds, where.hosts, where.cluster(how.results))
    _check_reach(request.what, engines)
    for one in engines.values():
        one.check()
    refs = request.what.image_refs
    deliver(refs, engines, feedback, pull=where.pull, registry=where.registry,
            build_missing=where.build_missing)  # fmt: skip
    facts = {name: one.host_facts(refs[0].reference) for name, one in engines.items()}
    for one in engines.values():
        if limits := getattr(one, "podman", None):
            feedback.say(f"{one.name} runs podman: its containers get {describe(limits)}, within "
                         "the engine's own limits (podman's defaults exceed them)")  # fmt: skip
    if where.remote:
        for name, f in facts.items():
            feedback.say(f"{name}: {describe_host(f.record)}")
    for f in facts.values():
        memory_mb = f.record.get("memory_mb")
        _check_memory(
            request.what.limits, f.topology, memory_mb if isinstance(memory_mb, int) else None
        )
    machines = machines_of(facts, feedback)
    topologies = [(facts[names[0]].placed_on, names) for names in machines.values()]
    if where.spread:
        plan = spread_over(request.what, topologies, facts)
        names = [n for _, names in topologies for n in names]
        feedback.say(f"spread over {len(names)} alike machines ({', '.join(names)}): each runs a "
                     "share of every cell's repeats, compared within each machine")  # fmt: skip
    else:
        plan = place_fleet(request.what, topologies, first)
    for topology, names in topologies:
        for note in [*merged_lines(request.what, topology), *setting_notes(request.what, topology),
                     *idle_notes(request.what, topology),
                     *memory_only_notes(request.what, topology)]:  # fmt: skip
            feedback.say(note if len(topologies) == 1 else f"{', '.join(names)}: {note}")
    _check_precision(request.what, facts, plan)
    _check_baseline(plan, request.how.baseline)
    baseline = gate_runs if isinstance(gate_runs, History) else tuple(gate_runs)
    return Prepared(request, engines, facts, machines, tuple(plan), baseline)


def gate_baseline(
    gate: Gate, results: Path, db_path: Path, exclude: str | None = None
) -> list[RunResult] | History:
    """The gate's baseline, read (and checked) before anything runs: one session's runs, or
    with --baseline-history every cell's series in the results database (``exclude``: the
    session being gated, when it is stored already)."""
    if gate.history is not None:
        if stat_of(db_path, "--db") is None:
            raise UsageError(
                f"--baseline-history gates against the results database, and {db_path} is none",
                "run sessions first, or pass --db",
            )
        with ResultsDB(db_path) as db:
            return History(tuple(series_of(db.history())), exclude)
    assert gate.session is not None  # one of the two baselines
    past = load_past(gate.session, results, db_path)
    if exclude is not None and past.session_id == exclude:
        named = "" if gate.session == exclude else f" ({exclude})"
        raise UsageError(
            f"--baseline-session {gate.session}{named} is the session being judged: a session "
            "gated against itself passes whatever it measured",
            "name an earlier session (kit history lists them), or --baseline-history N",
        )
    runs = list(past.runs)
    gate.check_baseline(runs)
    return runs


def _check_precision(what: What, facts: Mapping[str, HostFacts], plan: Sequence[RunSpec]) -> None:
    """bf16 only where the CPU computes it, unless --allow-emulated."""
    if what.allow_emulated:
        return
    for name in dict.fromkeys(s.engine for s in plan if s.workload.precision is Precision.bf16):
        record = facts[name].record
        if not native_bf16(record.get("isa_flags")):
            raise UsageError(
                f"bf16 on {name} ({record.get('cpu_model') or 'its CPU'}) would be emulated: "
                f"the CPU has neither {' nor '.join(BF16_FLAGS)}",
                "use --precision fp32, or pass --allow-emulated to measure it anyway",
            )


def _check_memory(limits: Limits, topology: Topology, total_mb: int | None = None) -> None:
    """A memory limit beyond the machine's memory limits nothing: refuse it."""
    total_mb = total_mb or sum(n.mem_total_mb or 0 for n in topology.nodes)
    wanted = limits.memory_bytes
    if wanted is not None and total_mb and wanted > total_mb * 2**20:
        raise UsageError(
            f"--memory {limits.memory} is more than this host's {total_mb} MB",
            f"give at most {total_mb // 1024}g, or leave --memory out",
        )


def _check_baseline(plan: Sequence[RunSpec], baseline: str | None) -> None:
    merged = {f"{s.image.label}:{name}": s.key for s in plan for name in s.stands_for}
    if baseline is not None and baseline.split("@", 1)[0] in merged:
        into = merged[baseline.split("@", 1)[0]]
        raise UsageError(
            f"baseline {baseline} runs as {into} on this host (merged: they cannot differ here)",
            f"pass --baseline {into}, or --keep-equivalent to run both",
        )
    check_baseline([k for s in plan for k in cell_keys(s.key, s.engine)], baseline)


def _check_reach(what: What, engines: Mapping[str, Engine]) -> None:
    remote = [e.name for e in engines.values() if e.images is not None and not e.samples_host]
    if remote and what.workload.model_file is not None:
        raise UsageError(f"--model {what.workload.model_file} is a file of this machine; "
                         f"{', '.join(remote)} cannot see it", "leave --host out")  # fmt: skip
    if remote and what.workload.workload_dir is not None:
        raise UsageError(
            f"--workload-dir mounts a folder of this machine; {', '.join(remote)} cannot see it",
            "run tf_cnn_benchmarks on this machine's engine, or leave --host out",
        )


def execute(prepared: Prepared, feedback: Feedback) -> Finished:
    """Run the prepared campaign in one session (new, or the one resumed), each result on disk
    the moment it exists; an interrupt keeps every finished run and says how to finish."""

    how, plan = prepared.request.how, list(prepared.plan)
    meta = {
        "hosts": prepared.host_records,
        "argv": list(how.argv or sys.argv[1:]),
        "recipe": recipe_of(prepared),
        **how.meta,
    }
    with session_lock(allow_concurrent=how.allow_concurrent), ResultsDB(how.db_path) as db:
        for line in prepared.engine.remove_orphans():  # a killed kit's runs, still on the CPUs
            feedback.say(line)
        folder, previous = open_session(
            plan, prepared.engine, how.results, how.resume, meta, db, feedback.say
        )
        ahead = _ahead(prepared, len(previous))
        feedback.say(f"kit {__version__}: {ahead}; results in {folder.path}")
        resume = f"finish it with the same command plus --resume {folder.session_id}"
        here = [e for e in prepared.engines.values() if e.samples_host]
        if here:
            holders = [e.images for e in here if e.images is not None]
            check_quiet(feedback, prepared.request.what.wait_quiet,
                        others=lambda: sum(h.others_running() for h in holders))  # fmt: skip
        try:
            runs, verified = _run(prepared, folder, previous, feedback)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after {len(load_session(folder.path))} of "
                f"{_planned(prepared, len(plan))}; every finished "
                f"run is in {folder.path}",
                resume,
            ) from None
        except OSError as exc:  # the disk filled, the folder went away, ...
            raise KitError(
                f"the session stopped: {exc.strerror or exc} ({exc.filename or folder.path}); "
                f"every run recorded before is in {folder.path} and the results database",
                f"make room, then {resume}",
            ) from None
    gate = how.gate
    adaptive = prepared.request.what.adaptive
    confidence = sequential_confidence(adaptive.looks) if adaptive else 0.95
    failures = judge(runs, prepared.gate_runs, gate, confidence=confidence) if gate else None
    return Finished(
        folder.session_id, folder.path, len(plan), tuple(runs), tuple(verified), failures
    )


def _ahead(prepared: Prepared, done: int) -> str:
    """What the session will run: its measured runs, or (verify alone) one diagnostic run a
    cell, with the small workload those run."""
    plan = prepared.plan
    if prepared.request.how.measure:
        workload = prepared.request.what.workload.describe()
        return f"{_planned(prepared, len(plan) - done, True)} of {workload}"
    cells = len({(s.engine, s.key) for s in plan})
    small = diagnostic_spec(plan[0], index=0).workload.describe()
    return f"{cells} verify run(s), one a cell with oneDNN's verbose log on, of {small}"


def _planned(prepared: Prepared, runs: int, why: bool = False) -> str:
    """How many runs a session has ahead: a tune's or adaptive repeats' plan is a maximum."""
    choose = prepared.request.how.tuning or prepared.request.what.adaptive
    if choose is None:
        return f"{runs} run(s)"
    return f"up to {runs} run(s)" + (f" ({choose.describe()})" if why else "")


def _run(prepared: Prepared, folder, previous, feedback: Feedback) -> tuple[list, list]:
    """The measured runs (those ``previous`` lacks), then the diagnostic runs of --verify."""
    how, plan, engine = prepared.request.how, list(prepared.plan), prepared.engine
    machine_of = {name: machine for machine, names in prepared.machines.items() for name in names}
    several = len(prepared.engines) > 1
    schedule = schedule_of(prepared)
    bounded = bool(prepared.request.how.tuning or prepared.request.what.adaptive)
    with feedback.running(prepared.request.what.workload, several, how.baseline,
                          bounded) as listener:  # fmt: skip
        runs = list(previous)
        while how.measure and (batch := schedule.next(plan, runs)):
            runs = run_session(batch, engine, folder, listener, how.baseline, runs,
                               prepared.host_records, machine_of,
                               keep_disturbed=prepared.request.what.keep_disturbed)  # fmt: skip
        if isinstance(schedule, AdaptiveSchedule) and how.measure:
            for line in schedule.budget_spent(plan, runs):
                feedback.say(line)
        verified = run_verify(plan, engine, folder, listener) if how.verify else []
    return runs if how.measure else [], verified


def schedule_of(prepared: Prepared) -> Schedule:
    """Which runs of the plan go next: all of them, or a tune's choice round by round."""
    tuning, adaptive = prepared.request.how.tuning, prepared.request.what.adaptive
    baseline = prepared.baseline
    if tuning is not None:
        return tuning.schedule(prepared.plan, baseline)
    if adaptive is not None:
        gate = prepared.request.how.gate
        return AdaptiveSchedule(adaptive, baseline.split("@", 1)[0], gate, prepared.gate_runs)
    return AllAtOnce()
