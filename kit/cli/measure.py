"""Measuring: compare, run and verify -- options -> plan -> session -> table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kit import __version__
from kit.cli import fleet
from kit.cli.common import (
    CONTROL,
    DEFAULT_PROFILES,
    BaselineOpt,
    BaselineSessionOpt,
    BatchesOpt,
    BatchOpt,
    BuildMissingOpt,
    ConcurrentOpt,
    CoresOpt,
    CpunodebindOpt,
    CpusOpt,
    DataFormatOpt,
    DbOpt,
    EngineKind,
    EngineOpt,
    FailIfSlowerOpt,
    FormatOpt,
    ForwardOpt,
    HostOpt,
    InstancesOpt,
    InterleaveOpt,
    LocalallocOpt,
    MembindOpt,
    MemoryOpt,
    ModelOpt,
    NodesOpt,
    OnePerCoreOpt,
    PhyscpubindOpt,
    PidsOpt,
    PreferredOpt,
    PresetOpt,
    ProfileOpt,
    ProfilesFile,
    RepeatsOpt,
    ResultsOpt,
    ResumeOpt,
    TimeoutOpt,
    VerifyOpt,
    WarmupOpt,
    WorkloadDirOpt,
    WorkloadOpt,
    app,
    apply_gate,
    err,
    gate_baseline,
    out,
)
from kit.cpus import parse_cpu_list
from kit.engines.base import EngineSet
from kit.errors import Interrupted, RunFailed, UsageError
from kit.flavors import resolve_image
from kit.placement import CpuSelection, parse_instances
from kit.plan import build_fleet_plan, build_plan
from kit.profiles import NumaPolicy, load_profiles, pick
from kit.reporting.table import Format, cell_keys, check_baseline, render, tabulate_rows
from kit.spec import DataFormat, Limits, Preset, Workload, WorkloadSpec
from kit.topology import read_host


@app.command()
def compare(
    images: Annotated[
        list[str], typer.Argument(help="Flavors (stock, intel, latest) or image references.")
    ],
    profile: ProfileOpt = None,
    profiles_file: ProfilesFile = None,
    preset: PresetOpt = Preset.quick,
    model: ModelOpt = None,
    batch_size: BatchOpt = None,
    num_batches: BatchesOpt = None,
    num_warmup_batches: WarmupOpt = None,
    data_format: DataFormatOpt = DataFormat.NHWC,
    forward_only: ForwardOpt = False,
    workload: WorkloadOpt = Workload.kit,
    workload_dir: WorkloadDirOpt = None,
    timeout: TimeoutOpt = 3600.0,
    baseline: BaselineOpt = None,
    fmt: FormatOpt = Format.table,
    results: ResultsOpt = Path("results"),
    engine: EngineOpt = None,
    host: HostOpt = None,
    cpus: CpusOpt = None,
    nodes: NodesOpt = None,
    cores: CoresOpt = None,
    one_thread_per_core: OnePerCoreOpt = False,
    interleave: InterleaveOpt = None,
    membind: MembindOpt = None,
    preferred: PreferredOpt = None,
    cpunodebind: CpunodebindOpt = None,
    physcpubind: PhyscpubindOpt = None,
    localalloc: LocalallocOpt = False,
    instances: InstancesOpt = None,
    memory: MemoryOpt = None,
    pids_limit: PidsOpt = None,
    build_missing: BuildMissingOpt = False,
    allow_concurrent: ConcurrentOpt = False,
    resume: ResumeOpt = None,
    db: DbOpt = None,
    verify: VerifyOpt = False,
    pull: Annotated[
        bool,
        typer.Option(
            help="Pull missing flavors from --registry instead of failing.",
            rich_help_panel=CONTROL,
        ),
    ] = False,
    registry: Annotated[
        str | None,
        typer.Option(
            help="Registry for --pull (default: $KIT_REGISTRY, else localhost:5000).",
            rich_help_panel=CONTROL,
        ),
    ] = None,
    repeats: RepeatsOpt = 3,
    baseline_session: BaselineSessionOpt = None,
    fail_if_slower: FailIfSlowerOpt = None,
) -> None:
    """Run every IMAGE under every profile and tabulate images/sec and speedup."""
    options = dict(locals())
    _execute(images, profile or DEFAULT_PROFILES, options)


@app.command()
def run(
    image: Annotated[
        str, typer.Argument(help="A flavor (stock, intel, latest) or image reference.")
    ],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile to run.")] = "default",
    profiles_file: ProfilesFile = None,
    preset: PresetOpt = Preset.quick,
    model: ModelOpt = None,
    batch_size: BatchOpt = None,
    num_batches: BatchesOpt = None,
    num_warmup_batches: WarmupOpt = None,
    data_format: DataFormatOpt = DataFormat.NHWC,
    forward_only: ForwardOpt = False,
    workload: WorkloadOpt = Workload.kit,
    workload_dir: WorkloadDirOpt = None,
    timeout: TimeoutOpt = 3600.0,
    fmt: FormatOpt = Format.table,
    results: ResultsOpt = Path("results"),
    engine: EngineOpt = None,
    host: HostOpt = None,
    cpus: CpusOpt = None,
    nodes: NodesOpt = None,
    cores: CoresOpt = None,
    one_thread_per_core: OnePerCoreOpt = False,
    interleave: InterleaveOpt = None,
    membind: MembindOpt = None,
    preferred: PreferredOpt = None,
    cpunodebind: CpunodebindOpt = None,
    physcpubind: PhyscpubindOpt = None,
    localalloc: LocalallocOpt = False,
    instances: InstancesOpt = None,
    memory: MemoryOpt = None,
    pids_limit: PidsOpt = None,
    build_missing: BuildMissingOpt = False,
    allow_concurrent: ConcurrentOpt = False,
    resume: ResumeOpt = None,
    db: DbOpt = None,
    verify: VerifyOpt = False,
    repeats: RepeatsOpt = 1,
) -> None:
    """Run one IMAGE under one profile."""
    options = dict(locals())
    _execute([image], [profile], options)


@app.command("verify")
def verify_images(
    images: Annotated[
        list[str], typer.Argument(help="Flavors (stock, intel, latest) or image references.")
    ],
    profile: ProfileOpt = None,
    profiles_file: ProfilesFile = None,
    model: ModelOpt = None,
    results: ResultsOpt = Path("results"),
    engine: EngineOpt = None,
    host: HostOpt = None,
    db: DbOpt = None,
    cpus: CpusOpt = None,
    allow_concurrent: ConcurrentOpt = False,
) -> None:
    """Prove which oneDNN path each IMAGE runs (a short run with oneDNN verbose on).

    Reports oneDNN's version, threading runtime, ISA, the primitives it executed, the time share
    of unoptimized ref: implementations, and settings that cannot have had an effect.
    """
    options = {
        **dict(locals()),
        "preset": Preset.quick,
        "batch_size": None,
        "num_batches": None,
        "num_warmup_batches": None,
        "data_format": DataFormat.NHWC,
        "forward_only": False,
        "workload": Workload.kit,
        "workload_dir": None,
        "timeout": 1800.0,
        "fmt": Format.table,
        "nodes": None,
        "cores": None,
        "one_thread_per_core": False,
        "interleave": None,
        "membind": None,
        "preferred": None,
        "cpunodebind": None,
        "physcpubind": None,
        "localalloc": False,
        "instances": None,
        "memory": None,
        "pids_limit": None,
        "build_missing": False,
        "resume": None,
        "repeats": 1,
        "verify": True,
        "verify_only": True,
        "engine": engine,
    }
    _execute(images, profile or ["default"], options)


def _workload(o: dict) -> WorkloadSpec:
    if o["workload"] is Workload.peak:
        raise UsageError("--workload peak measures no training", "use `kit peak IMAGE`")
    return WorkloadSpec.from_preset(
        o["preset"],
        model=o["model"],
        batch_size=o["batch_size"],
        num_batches=o["num_batches"],
        num_warmup_batches=o["num_warmup_batches"],
        data_format=o["data_format"],
        forward_only=o["forward_only"],
        workload=o["workload"],
        workload_dir=o["workload_dir"],
    )


def _selection(o: dict) -> CpuSelection:
    return CpuSelection(
        cpus=parse_cpu_list(o["cpus"], what="--cpus") if o["cpus"] is not None else None,
        nodes=parse_cpu_list(o["nodes"], what="--nodes") if o["nodes"] is not None else None,
        cores=o["cores"],
        one_thread_per_core=o["one_thread_per_core"],
    )


def _numactl(o: dict) -> dict[str, str | bool]:
    """numactl settings given on the command line; they apply on top of every profile."""
    names = ("interleave", "membind", "preferred", "cpunodebind", "physcpubind")
    given: dict[str, str | bool] = {n: o[n] for n in names if o[n] is not None}
    if o["localalloc"]:
        given["localalloc"] = True
    NumaPolicy(**given)  # refuses two memory policies at once
    return given


def _execute(images: list[str], profile_names: list[str], o: dict) -> None:
    from kit.lock import session_lock
    from kit.session import check_images, open_session, run_session, run_verify
    from kit.session_dir import DB_NAME, check_writable, load_session
    from kit.store import ResultsDB
    from kit.ui import RunDisplay
    from kit.verify import VERIFY_HEADERS, verify_rows

    spec = _workload(o)
    profiles = pick(load_profiles(o["profiles_file"]), profile_names)
    options = {
        "numactl": _numactl(o),
        "instances": parse_instances(o["instances"]),
        "limits": Limits(memory=o["memory"], pids=o["pids_limit"]),
        "repeats": o["repeats"],
    }
    selection = _selection(o)
    baseline = o.get("baseline")
    hosts = o.get("host") or []
    if not hosts:
        # Planned once on this host before any engine is asked anything, so bad input is
        # refused first; again on what each engine reports of its host.
        kinds = [k.value for k in dict.fromkeys(o.get("engine") or [EngineKind.auto])]
        build_plan(
            images, profiles, spec, read_host(), selection, o["timeout"], engines=kinds, **options
        )
    check_writable(o["results"])
    gate = gate_baseline(o)
    engines = fleet.session_engines(o)
    if "local" in engines and (o["memory"] or o["pids_limit"]):
        raise UsageError(
            "--memory and --pids-limit are container limits", "use them with --engine docker"
        )
    remote = [e.name for e in fleet.docker_engines(engines) if not e.samples_host]
    if remote and o["workload_dir"] is not None:
        raise UsageError(
            f"--workload-dir mounts a folder of this machine; {', '.join(remote)} cannot see it",
            "run tf_cnn_benchmarks on this machine's engine, or leave --host out",
        )
    for one in engines.values():
        one.check()
    refs = [resolve_image(name) for name in images]
    if o.get("pull"):
        fleet.pull_missing(refs, engines, o.get("registry"))
    if o["build_missing"]:
        fleet.build_missing(refs, engines)
    fleet.send_missing(refs, engines)
    for one in engines.values():  # every engine has every image, or the fix is said now
        check_images(one, [r.reference for r in refs])
    facts = {name: one.host_facts(refs[0].reference) for name, one in engines.items()}
    if hosts:
        for name, f in facts.items():
            r = f.record
            err.print(
                f"{name}: {r['hostname']}, {r.get('cpu_model') or '?'}, {r['sockets']} socket(s), "
                f"{r['numa_nodes']} NUMA node(s), {r['physical_cores']} cores / "
                f"{r['logical_cpus']} CPUs",
                markup=False,
            )
    machines = fleet.machines_of(engines, facts)
    plan = build_fleet_plan(
        [(facts[names[0]].topology, names) for names in machines.values()],
        images, profiles, spec, selection, o["timeout"], **options,
    )  # fmt: skip
    check_baseline([k for s in plan for k in cell_keys(s.key, s.engine)], baseline)
    engine = next(iter(engines.values())) if len(engines) == 1 else EngineSet(engines)

    records = {name: f.record for name, f in facts.items()}
    lanes = {name: f.machine for name, f in facts.items()}
    meta = {"host_record": next(iter(records.values())), "argv": sys.argv[1:]}
    if len(engines) > 1:
        meta["hosts"] = records
    with (
        session_lock(allow_concurrent=o["allow_concurrent"]),
        ResultsDB(o["db"] or o["results"] / DB_NAME) as db,
    ):
        store, previous = open_session(plan, engine, o["results"], o["resume"], meta, db)
        todo = len(plan) - len(previous)
        err.print(f"kit {__version__}: {todo} run(s) of {spec.describe()}; results in {store.path}")
        try:
            with RunDisplay(err, spec, show_engine=len(engines) > 1) as display:
                finished = (
                    []
                    if o.get("verify_only")
                    else run_session(
                        plan, engine, store, display.on_event, baseline, previous, records, lanes
                    )
                )
                verified = run_verify(plan, engine, store, display.on_event) if o["verify"] else []
        except KeyboardInterrupt:
            done = len(load_session(store.path))
            raise Interrupted(
                f"interrupted after {done} of {len(plan)} runs; every finished run is in "
                f"{store.path}",
                f"finish it with the same command plus --resume {store.session_id}",
            ) from None
    if finished:
        out.print(render(finished, o["fmt"], baseline), markup=False)
    if verified:
        out.print(tabulate_rows(verify_rows(verified), VERIFY_HEADERS), markup=False)
    err.print(f"results: {store.path} (summary.md, a log and a JSON record per run)")
    apply_gate(finished, gate, o.get("fail_if_slower"))
    failed = [r for r in finished if not r.ok]
    if failed:
        raise RunFailed(
            f"{len(failed)} of {len(finished)} runs failed or were INVALID",
            f"see the status column and the logs in {store.path}",
        )
