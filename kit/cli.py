"""kit's command line: options -> spec -> core -> print. Thin on purpose."""

from __future__ import annotations

import json
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kit import __version__
from kit.cpus import format_cpu_list, parse_cpu_list
from kit.errors import Interrupted, KitError, RunFailed, UsageError
from kit.flavors import Flavor
from kit.placement import CpuSelection, parse_instances
from kit.plan import build_plan, resolve_placement
from kit.profiles import NumaPolicy, load_profiles, pick
from kit.report import Format, check_baseline, render, slower_than, tabulate_rows
from kit.results import slug
from kit.spec import DataFormat, Limits, Model, Preset, Workload, WorkloadSpec
from kit.topology import read_host

app = typer.Typer(
    name="kit",
    help="How fast does TensorFlow train on this CPU, which build and settings win, by how much?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
images_app = typer.Typer(help="Build and list kit's TensorFlow images.", no_args_is_help=True)
profiles_app = typer.Typer(help="Named env/thread/numactl settings.", no_args_is_help=True)
app.add_typer(images_app, name="images")
app.add_typer(profiles_app, name="profiles")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DEFAULT_PROFILES = ["default", "tuned", "interleave"]

ProfilesFile = Annotated[
    Path | None,
    typer.Option(
        "--profiles", help="TOML file with more profiles (see kit/profiles.toml).", dir_okay=False
    ),
]
ProfileOpt = Annotated[
    list[str] | None, typer.Option("--profile", "-p", help="Profile to run; repeat for several.")
]
PresetOpt = Annotated[
    Preset,
    typer.Option(
        help="quick: resnet50 batch 32, 10+2 batches. seed: the experiment's batch 128, 30 batches."
    ),
]
ModelOpt = Annotated[Model | None, typer.Option(help="Overrides the preset's model.")]
BatchOpt = Annotated[int | None, typer.Option(help="Overrides the preset's batch size.")]
BatchesOpt = Annotated[int | None, typer.Option(help="Timed batches (overrides the preset).")]
WarmupOpt = Annotated[int | None, typer.Option(help="Untimed warmup batches.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="How to print the table.")]
DataFormatOpt = Annotated[DataFormat, typer.Option(help="Tensor layout.")]
ForwardOpt = Annotated[bool, typer.Option(help="Inference only, no backward pass.")]
WorkloadOpt = Annotated[
    Workload,
    typer.Option(help="kit's built-in workload, or tf_cnn_benchmarks from --workload-dir."),
]
WorkloadDirOpt = Annotated[
    Path | None,
    typer.Option(help="Checkout of tensorflow/benchmarks, mounted read-only.", file_okay=False),
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds before a run is killed.")]
ResultsOpt = Annotated[
    Path, typer.Option(help="Where session folders (and kit.db) are written.", file_okay=False)
]
BaselineOpt = Annotated[
    str | None,
    typer.Option(help="IMAGE:PROFILE that speedups are relative to (default: the first row)."),
]
PLACEMENT = "Placement (CPUs, NUMA)"
CpusOpt = Annotated[
    str | None,
    typer.Option(
        help="Host CPUs to use, e.g. 0-8,18-26 (default: all).", rich_help_panel=PLACEMENT
    ),
]
NodesOpt = Annotated[
    str | None, typer.Option(help="Use the CPUs of these NUMA nodes.", rich_help_panel=PLACEMENT)
]
CoresOpt = Annotated[
    int | None,
    typer.Option(
        help="Use the first N physical cores of the selection.", rich_help_panel=PLACEMENT
    ),
]
OnePerCoreOpt = Annotated[
    bool,
    typer.Option(
        "--one-thread-per-core",
        help="One logical CPU per physical core.",
        rich_help_panel=PLACEMENT,
    ),
]
InterleaveOpt = Annotated[
    str | None,
    typer.Option(help="numactl --interleave: all or NODES.", rich_help_panel=PLACEMENT),
]
MembindOpt = Annotated[
    str | None, typer.Option(help="numactl --membind NODES.", rich_help_panel=PLACEMENT)
]
PreferredOpt = Annotated[
    str | None, typer.Option(help="numactl --preferred NODE.", rich_help_panel=PLACEMENT)
]
CpunodebindOpt = Annotated[
    str | None, typer.Option(help="numactl --cpunodebind NODES.", rich_help_panel=PLACEMENT)
]
PhyscpubindOpt = Annotated[
    str | None, typer.Option(help="numactl --physcpubind CPUS.", rich_help_panel=PLACEMENT)
]
LocalallocOpt = Annotated[
    bool, typer.Option(help="numactl --localalloc.", rich_help_panel=PLACEMENT)
]
InstancesOpt = Annotated[
    str | None,
    typer.Option(
        help="N or per-node: N containers at once on disjoint core groups, memory local; "
        "reports their sum.",
        rich_help_panel=PLACEMENT,
    ),
]

CONTROL = "Run control"
MemoryOpt = Annotated[
    str | None,
    typer.Option(help="Memory limit per container, e.g. 8g (no swap).", rich_help_panel=CONTROL),
]
PidsOpt = Annotated[
    int | None, typer.Option(help="Process/thread limit per container.", rich_help_panel=CONTROL)
]
BuildMissingOpt = Annotated[
    bool,
    typer.Option(help="Build a flavor's image when it is missing.", rich_help_panel=CONTROL),
]
ConcurrentOpt = Annotated[
    bool,
    typer.Option(
        help="Run even while another kit session runs on this host (they disturb each other).",
        rich_help_panel=CONTROL,
    ),
]
RepeatsOpt = Annotated[
    int,
    typer.Option(
        help="Runs per cell, each a fresh container, in interleaved order (A B C, C B A, ...).",
        rich_help_panel=CONTROL,
    ),
]
BaselineSessionOpt = Annotated[
    str | None,
    typer.Option(
        help="Session to gate against (id, unique prefix or 'latest'); see --fail-if-slower.",
        rich_help_panel=CONTROL,
    ),
]
FailIfSlowerOpt = Annotated[
    float | None,
    typer.Option(
        help="Exit 1 when a cell is significantly slower than in --baseline-session by more "
        "than this many percent.",
        rich_help_panel=CONTROL,
    ),
]
VerifyOpt = Annotated[
    bool,
    typer.Option(
        help="Also a short diagnostic run per image with oneDNN verbose on: proof of what ran.",
        rich_help_panel=CONTROL,
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Results database (default: RESULTS/kit.db).",
        rich_help_panel=CONTROL,
        dir_okay=False,
    ),
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        help="Session id (or folder) to finish: runs only what it is missing.",
        rich_help_panel=CONTROL,
    ),
]


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print kit's version.")] = False,
) -> None:
    if version:
        out.print(f"kit {__version__}")
        raise typer.Exit()


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
    }
    _execute(images, profile or ["default"], options)


def make_engine():
    """The engine runs go through (the one place tests swap in a fake)."""
    from kit.docker_engine import DockerEngine

    return DockerEngine()


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


def _build_missing(plan) -> None:
    """Build the flavors the plan needs that this engine lacks."""
    from kit.docker_engine import connect
    from kit.images import DEFAULT_BASE, build_image, default_ca_bundle, missing_flavors
    from kit.ui import BuildDisplay

    client = connect(timeout=1800)
    for flavor in missing_flavors(client, plan):
        with BuildDisplay(err, flavor.value) as display:
            build_image(
                client, flavor, DEFAULT_BASE, default_ca_bundle(), display.say, display.on_log
            )


def _gate_baseline(o: dict) -> list | None:
    """The baseline session's runs for --fail-if-slower, loaded (and checked) up front."""
    from kit.results import SessionDir, load_session

    session, percent = o.get("baseline_session"), o.get("fail_if_slower")
    if session is None and percent is None:
        return None
    if session is None or percent is None:
        raise UsageError(
            "--baseline-session and --fail-if-slower go together", "pass both, or neither"
        )
    slower_than([], [], percent)  # checks the percentage
    runs = load_session(SessionDir.open(o["results"], session).path)
    if not runs:
        raise UsageError(f"baseline session {session} has no runs", "pick one with results")
    return runs


def _apply_gate(found: list, gate: list | None, percent: float | None) -> None:
    if gate is None or percent is None:
        return
    slower = slower_than(found, gate, percent)
    if slower:
        raise RunFailed(
            f"{len(slower)} cell(s) slower than the baseline session by more than "
            f"{percent:g}%: {'; '.join(slower)}"
        )
    err.print(f"gate: no cell is more than {percent:g}% slower than the baseline session")


def _execute(images: list[str], profile_names: list[str], o: dict) -> None:
    from kit.hostinfo import host_record
    from kit.lock import session_lock
    from kit.results import DB_NAME, check_writable, load_session
    from kit.session import check_images, open_session, run_session, run_verify
    from kit.store import ResultsDB
    from kit.ui import RunDisplay
    from kit.verify import VERIFY_HEADERS, verify_rows

    spec = _workload(o)
    topology = read_host()
    profiles = pick(load_profiles(o["profiles_file"]), profile_names)
    plan = build_plan(
        images,
        profiles,
        spec,
        topology,
        _selection(o),
        o["timeout"],
        numactl=_numactl(o),
        instances=parse_instances(o["instances"]),
        limits=Limits(memory=o["memory"], pids=o["pids_limit"]),
        repeats=o["repeats"],
    )
    baseline = o.get("baseline")
    check_baseline([s.key for s in plan], baseline)
    check_writable(o["results"])
    gate = _gate_baseline(o)
    engine = make_engine()
    engine.check()
    if o["build_missing"]:
        _build_missing(plan)
    check_images(engine, plan)

    host = host_record(topology)
    with (
        session_lock(allow_concurrent=o["allow_concurrent"]),
        ResultsDB(o["db"] or o["results"] / DB_NAME) as db,
    ):
        store, previous = open_session(
            plan, engine, o["results"], o["resume"], {"host_record": host, "argv": sys.argv[1:]}, db
        )
        todo = len(plan) - len(previous)
        err.print(f"kit {__version__}: {todo} run(s) of {spec.describe()}; results in {store.path}")
        try:
            with RunDisplay(err, spec) as display:
                finished = (
                    []
                    if o.get("verify_only")
                    else run_session(
                        plan, engine, store, display.on_event, baseline, previous, host
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
    _apply_gate(finished, gate, o.get("fail_if_slower"))
    failed = [r for r in finished if not r.ok]
    if failed:
        raise RunFailed(
            f"{len(failed)} of {len(finished)} runs failed or were INVALID",
            f"see the status column and the logs in {store.path}",
        )


def _open_db(db: Path | None, results: Path):
    from kit.results import DB_NAME
    from kit.store import ResultsDB

    path = db or results / DB_NAME
    if not path.exists():
        raise UsageError(f"no results database at {path}", "run `kit compare` first, or pass --db")
    return ResultsDB(path)


@app.command()
def history(
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
    limit: Annotated[int, typer.Option(help="How many sessions, newest first.")] = 20,
) -> None:
    """Past sessions: when, host, images, profiles, best cell."""

    with _open_db(db, results) as store:
        sessions = store.sessions(limit)
    rows = [
        [
            s.id,
            (s.started or "?")[:19].replace("T", " "),
            s.host or "?",
            s.runs,
            ", ".join(s.images),
            ", ".join(s.profiles),
            f"{s.best[0]} {s.best[1]:.2f}" if s.best else "-",
        ]
        for s in sessions
    ]
    headers = ["session", "started (UTC)", "host", "runs", "images", "profiles", "best images/sec"]
    out.print(tabulate_rows(rows, headers), markup=False)


class ReportFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


@app.command()
def report(
    session: Annotated[
        str, typer.Argument(help="Session id, a unique prefix of one, or 'latest'.")
    ] = "latest",
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
    plot: Annotated[
        bool, typer.Option(help="Write PNG plots (bar chart, per-CPU heatmaps) to the session.")
    ] = False,
    baseline: BaselineOpt = None,
    output: Annotated[
        Path | None, typer.Option(help="Where the HTML goes (default: SESSION/report.html).")
    ] = None,
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
    baseline_session: BaselineSessionOpt = None,
    fail_if_slower: FailIfSlowerOpt = None,
) -> None:
    """Re-render a past session: table, CSV, JSON, or one HTML file with plots.

    The HTML holds the table, the plots, every run's provenance and the verify results. With
    --baseline-session and --fail-if-slower this is also the regression gate, for CI.
    """
    from kit.results import RunResult

    gate = _gate_baseline(
        {"baseline_session": baseline_session, "fail_if_slower": fail_if_slower,
         "results": results}
    )  # fmt: skip
    with _open_db(db, results) as store:
        session_id = store.resolve_session(session)
        records = store.runs(session_id)
        meta = next((s.meta for s in store.sessions() if s.id == session_id), {})
        host = (meta.get("host_record") or {}).get("hostname") or meta.get("host") or ""
        peaks = store.peaks(str(host))
    found = [RunResult.from_json(r) for r in records]
    check_baseline([r.key for r in found], baseline)
    if fmt is not ReportFormat.html and not plot:
        out.print(render(found, Format(fmt.value), baseline, peaks), markup=False)
        _apply_gate(found, gate, fail_if_slower)
        return
    from kit.artifacts import write_html, write_plots

    folder = results / session_id
    folder.mkdir(parents=True, exist_ok=True)
    plots = write_plots(folder, found, baseline)
    for path in plots.values():
        err.print(f"plot: {path}", markup=False)
    if fmt is ReportFormat.html:
        path = write_html(
            output or folder / "report.html",
            f"kit session {session_id}",
            found,
            meta,
            plots,
            baseline,
            peaks,
        )
        err.print(f"report: {path}", markup=False)
    else:
        out.print(render(found, Format(fmt.value), baseline, peaks), markup=False)
    _apply_gate(found, gate, fail_if_slower)


@app.command()
def peak(
    image: Annotated[str, typer.Argument(help="A flavor or image reference.")],
    cpus: CpusOpt = None,
    db: DbOpt = None,
    results: ResultsOpt = Path("results"),
) -> None:
    """Measure this host's float32 GEMM peak inside IMAGE; reports then show % of peak."""
    from kit.hostinfo import host_record
    from kit.parse import parse_peak_output
    from kit.results import DB_NAME, check_writable
    from kit.store import ResultsDB

    topology = read_host()
    (profile,) = pick(load_profiles(None), ["default"])
    (spec,) = build_plan(
        [image], [profile], WorkloadSpec(workload=Workload.peak), topology,
        CpuSelection(cpus=parse_cpu_list(cpus, what="--cpus") if cpus else None), 600.0,
    )  # fmt: skip
    check_writable(results)
    engine = make_engine()
    engine.check()
    image_id = engine.image_id(spec.image.reference)
    log = results / f"peak-{slug(spec.image.label)}.log"
    err.print(f"measuring the GEMM peak of {spec.image.label} on CPUs {spec.cpu_list}")
    outcome = engine.run(spec, "peak", log, lambda line: None)
    with log.open(encoding="utf-8", errors="replace") as text:
        record = parse_peak_output(text)
    if outcome.exit_code != 0 or record is None:
        raise RunFailed(f"the peak run failed (exit status {outcome.exit_code})", f"see {log}")
    host = str(host_record(topology)["hostname"])
    with ResultsDB(db or results / DB_NAME) as store:
        store.add_peak(host, image_id, float(record["gflops"]), record)
    out.print(f"{spec.image.label}: {record['gflops']:.1f} GFLOP/s float32 GEMM on {host}")


@app.command()
def doctor() -> None:
    """Check the engine, images, numactl and capabilities; print the containers' posture."""
    from kit.docker_engine import connect
    from kit.doctor import run_checks

    failed = False
    for check in run_checks(connect):
        style = {"ok": "green", "warn": "yellow"}.get(check.status, "red")
        err.print(f"[{style}]{check.status:>4}[/] {check.name}: {check.detail}", soft_wrap=True)
        failed |= check.status == "FAIL"
    if failed:
        raise typer.Exit(1)


@app.command()
def topology(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """This host's sockets, NUMA nodes, cores and SMT siblings, and the CPUs kit may use."""
    from kit.topology import format_topology, to_json

    host = read_host()
    if as_json:
        out.print(json.dumps(to_json(host), indent=2), markup=False)
    else:
        for line in format_topology(host):
            out.print(line, markup=False)


@app.command()
def clean() -> None:
    """Remove containers an earlier kit session left behind (found by kit's labels)."""
    removed = make_engine().remove_strays()
    err.print(f"removed {removed} container(s) left by kit")


@images_app.command("build")
def images_build(
    flavors: Annotated[list[Flavor] | None, typer.Argument(help="Default: all flavors.")] = None,
    base: Annotated[
        str,
        typer.Option(help="Base image; when it cannot be pulled, kit builds a local Debian base."),
    ] = "python:3.11-slim-bookworm",
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            help="CA bundle pip trusts in the build (default: $SSL_CERT_FILE, $PIP_CERT or "
            "$REQUESTS_CA_BUNDLE when set).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Build kit's images through the Docker SDK."""
    from kit.docker_engine import connect
    from kit.images import build_image, check_ca_bundle, default_ca_bundle
    from kit.ui import BuildDisplay

    check_ca_bundle(ca_bundle)
    bundle = ca_bundle or default_ca_bundle()
    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        with BuildDisplay(err, flavor.value) as display:
            image_id = build_image(client, flavor, base, bundle, display.say, display.on_log)
        err.print(f"built {flavor.value}: {image_id[:19]}")


@images_app.command("list")
def images_list() -> None:
    """kit's images on this engine: flavor, TF package, size, id, created."""
    from kit.docker_engine import connect
    from kit.images import list_images

    rows = [
        [
            ", ".join(i.tags) or "<untagged>",
            i.flavor,
            i.tf_package,
            f"{i.size_bytes / 1e9:.2f} GB",
            i.id,
            i.created,
        ]
        for i in list_images(connect())
    ]
    out.print(
        tabulate_rows(rows, ["tags", "flavor", "TF package", "size", "id", "created"]), markup=False
    )


@profiles_app.command("list")
def profiles_list(profiles_file: ProfilesFile = None) -> None:
    """Every profile, built-in and from --profiles."""

    profiles = load_profiles(profiles_file)
    rows = [[p.name, p.source, p.description] for p in profiles.values()]
    out.print(tabulate_rows(rows, ["profile", "from", "description"]), markup=False)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    profiles_file: ProfilesFile = None,
    cpus: CpusOpt = None,
) -> None:
    """A profile resolved for this host (or --cpus): CPUs, env, threads, numactl argv."""
    host = read_host()
    selection = CpuSelection(cpus=parse_cpu_list(cpus, what="--cpus") if cpus else None)
    (profile,) = pick(load_profiles(profiles_file), [name])
    cpuset, effective, placement, numa = resolve_placement(profile, host, selection)
    resolved = profile.resolve(placement, numa)
    lines = [
        f"profile:      {profile.name} ({profile.source})",
        f"description:  {profile.description}",
        f"cpuset:       {format_cpu_list(cpuset)}",
        f"workload on:  CPUs {format_cpu_list(effective)}: {placement.cores} physical cores, "
        f"{placement.threads} logical CPUs, {placement.nodes} NUMA node(s)",
        *(f"env:          {key}={value}" for key, value in resolved.env.items()),
        f"threads:      inter_op={resolved.inter_op or 'TF default'} "
        f"intra_op={resolved.intra_op or 'TF default'}",
        f"numactl:      {' '.join(resolved.numa.argv()) or '(none)'}",
        "capabilities: " + ("SYS_NICE (memory policy)" if resolved.numa.needs_sys_nice else "none"),
    ]
    for line in lines:
        out.print(line, markup=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a session the way Ctrl-C does: cleanly


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KitError as exc:
        err.print(f"kit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
