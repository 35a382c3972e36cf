"""Every option of every kit command, declared once: its type and default (the field), its
help, help panel, and the commands that offer it (``opt``); and the arguments several commands
share. A command offers exactly the options whose declaration names it;
`kit.cli.declare.command` builds its signature from here. Only small modules are imported here
(the choices' enums): `kit --help` loads this, not the core.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.schedules.strategy import Strategy
from kit.cli.declare import REQUIRED, Panel, opt
from kit.engines.kinds import ContainerEngine, EngineKind
from kit.engines.slurm.options import NodeEngine
from kit.judging.choices import GateOn, Undecided
from kit.model.workload import Allocator, DataFormat, Mode, Model, Precision, Preset, Workload
from kit.reporting.formats import Format, PlanFormat, ReportFormat

# The commands that plan and run campaigns; verify runs only its proof.
RUNS = ("compare", "run", "sweep", "tune")
MEASURE = (*RUNS, "plan")
CAMPAIGN = (*MEASURE, "verify")
GATED = ("compare", "sweep", "report")  # a gate against a past session or the history
STORED = ("export", "import", "replay", "diff", "history", "report", "peak", "site")
WORK, PLACE, REPEATS = Panel.workload, Panel.placement, Panel.repeats
GATE, ENGINES, OUTPUT, SLURM = Panel.gate, Panel.engines, Panel.results, Panel.slurm
BASE = "The base profile the knobs are set on."

# The arguments the measuring commands share.
ImagesArg = Annotated[
    list[str], typer.Argument(help="Flavors (stock, intel, latest, zentf) or image references.")
]
ImageArg = Annotated[
    str, typer.Argument(help="A flavor (stock, intel, latest, zentf) or image reference.")
]
SweepImagesArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[IMAGE]...", help="Flavors or image references (or give them as --knob image=...)."
    ),
]


# fmt: off
def complete_model(incomplete: str) -> list[str]:
    """--model's TAB: the built-in models, and saved Keras files under the path typed so far."""
    import glob  # noqa: PLC0415 -- only when completing

    found = [m.value for m in Model if m.value.startswith(incomplete)]
    files = glob.glob(glob.escape(incomplete) + "*")
    found += sorted(f for f in files if f.endswith((".keras", ".h5")) or Path(f).is_dir())
    return found


@dataclass(frozen=True)
class Options:
    """The options of kit's commands, as one command was given them (the rest at default)."""

    # Options: what to run
    profile: tuple[str, ...] = opt(
        "Profile to run; repeat for several (default: default, tuned, interleave).", "--profile",
        "-p", default=(), on=CAMPAIGN,
        help_on={
            "run": "The profile to run.",
            "sweep": BASE,
            "tune": BASE,
            "verify": "Profile to verify with; repeat for several (default: default).",
        })
    profiles_file: Path | None = opt("TOML file with more profiles (see kit/model/profiles.toml).",
        "--profiles", on=(*CAMPAIGN, "profiles list", "profiles show"), rare=True, dir_okay=False)
    knob: tuple[str, ...] = opt(
        "NAME=V1,V2,... to vary (placeholders {cores} {threads} {nodes}, ranges 1..{cores}); "
        "repeat for a grid. `kit knobs` lists them.", "--knob", "-k", default=(),
        on=("sweep", "tune"))
    where: str | None = opt("Keep only cells where this holds, e.g. 'inter * intra <= threads'.",
        on=("sweep", "tune"))
    knobs_file: Path | None = opt("TOML file with more knobs.", "--knobs",
        on=("sweep", "tune", "knobs"), rare=True, dir_okay=False)
    budget: str | None = opt(
        "What the search may spend: runs (40runs) or time (45m, 2h).",
        on=("tune", "compare", "run"), default_on={"tune": "45m"},
        help_on={c: "--repeats auto: no round past --min-repeats starts unless it fits this: runs "
                 "(40runs) or time (30m, 2h), at the mean run so far." for c in
                 ("compare", "run")})  # fmt: skip
    strategy: Strategy = opt(
        "race: drop cells once significantly slower than the leader; grid: every cell; model: "
        "Optuna's TPE sampler, for spaces too big to race.", on=("tune",), default=Strategy.race)
    save_profile: Path | None = opt("Write the winner as a profile to this TOML file.",
        on=("tune",), dir_okay=False)

    # Workload
    preset: Preset = opt(
        "quick: resnet50 training, batch 32, 10 batches; seed: batch 128, 30 batches; latency, "
        "throughput: inference at batch 1, 32.", on=MEASURE, default=Preset.quick, panel=WORK)
    model: str | None = opt(
        f"The model: {', '.join(m.value for m in Model)} (default: resnet50, or the preset's), "
        "or your saved Keras model (a .keras or .h5 file), fed synthetic inputs from its own "
        "signature.", "--model", on=CAMPAIGN, panel=WORK, metavar="MODEL|FILE",
        autocompletion=complete_model,
        help_on={
            "verify": "The model the proof runs (default: resnet50), or your .keras/.h5 file.",
        })
    batch_size: int | None = opt("Overrides the preset's batch size.", on=MEASURE, panel=WORK)
    num_batches: int | None = opt("Timed batches (overrides the preset).", on=MEASURE, panel=WORK)
    num_warmup_batches: str | None = opt(
        "Untimed warmup batches: auto (until the step time settles) or N, a fixed number.",
        on=MEASURE, panel=WORK, metavar="auto|N")
    mode: Mode | None = opt(
        "train, or infer: the forward pass alone, with latency p50/p90/p99 (overrides the "
        "preset's).", on=CAMPAIGN, panel=WORK)
    precision: Precision = opt(
        "fp32, or bf16 (Keras mixed_bfloat16; needs avx512_bf16 or amx_bf16).", on=CAMPAIGN,
        default=Precision.fp32, panel=WORK)
    data_format: DataFormat = opt("Tensor layout.", on=MEASURE, default=DataFormat.NHWC, panel=WORK,
        rare=True)
    allocator: Allocator = opt(
        "The malloc preloaded in the container: system (glibc), jemalloc, tcmalloc.", on=CAMPAIGN,
        default=Allocator.system, panel=WORK, rare=True)
    allow_emulated: bool = opt("Run bf16 even on a CPU that would emulate it (slower than fp32).",
        on=CAMPAIGN, default=False, panel=WORK, rare=True)
    workload: Workload = opt(
        "kit's built-in workload, tf_cnn_benchmarks from --workload-dir, or bandwidth (STREAM's "
        "triad, GB/s).",
        on=MEASURE, default=Workload.kit, panel=WORK, rare=True)
    workload_dir: Path | None = opt("Checkout of tensorflow/benchmarks, mounted read-only.",
        on=MEASURE, panel=WORK, rare=True, file_okay=False)
    timeout: float = opt("Seconds before a run is killed.", on=CAMPAIGN, default=3600.0, panel=WORK,
        rare=True,
        default_on={
            "verify": 1800.0,
        })

    # Placement (CPUs, NUMA)
    cpus: str | None = opt("Host CPUs to use, e.g. 0-8,18-26 (default: all).",
        on=(*CAMPAIGN, "peak", "profiles show"), panel=PLACE)
    cores: int | None = opt("Use the first N physical cores of the selection.", on=MEASURE,
        panel=PLACE)
    nodes: str | None = opt("Use the CPUs of these NUMA nodes.", on=MEASURE, panel=PLACE)
    one_thread_per_core: bool = opt("One logical CPU per physical core.", "--one-thread-per-core",
        on=MEASURE, default=False, panel=PLACE, rare=True)
    instances: str | None = opt(
        "N or per-node: N containers at once on disjoint cores, memory local; their sum.",
        on=MEASURE, panel=PLACE)
    interleave: str | None = opt("numactl --interleave: all or NODES.", on=MEASURE, panel=PLACE)
    membind: str | None = opt("numactl --membind NODES.", on=MEASURE, panel=PLACE)
    preferred: str | None = opt("numactl --preferred NODE.", on=MEASURE, panel=PLACE, rare=True)
    cpunodebind: str | None = opt("numactl --cpunodebind NODES.", on=MEASURE, panel=PLACE,
        rare=True)
    physcpubind: str | None = opt("numactl --physcpubind CPUS.", on=MEASURE, panel=PLACE, rare=True)
    localalloc: bool = opt("numactl --localalloc.", on=MEASURE, default=False, panel=PLACE,
        rare=True)
    topology: Path | None = opt(
        "Plan for another host: its `lscpu -p`, `kit topology --format json` or `numactl -H` "
        "(with --threads-per-core) output saved to a file (default: this host).", on=("plan",),
        panel=PLACE, dir_okay=False)
    threads_per_core: int | None = opt(
        "With a `numactl -H` --topology: SMT threads per core (it does not say; 1 without SMT). "
        "Siblings are taken as Linux numbers most x86 servers: n and n + CPUs/2.", on=("plan",),
        panel=PLACE, rare=True, min=1, max=8)

    # Repeats and verdicts
    repeats: str = opt(
        "Runs per cell, each a fresh container, interleaved (A B C, C B A, ...); auto: until the "
        "verdict is clear or the interval within --ci-width.",
        on=("compare", "run", "sweep", "plan", "replay"), default="3", panel=REPEATS,
        default_on={
            "run": "1",
            "replay": None,
        },
        help_on={
            "replay": "Runs per cell, or auto (default: as many as the original had).",
        })
    ci_width: float = opt(
        "--repeats auto stops a cell when its speedup's interval is within this many percent "
        "each side.", on=("compare", "run", "sweep", "plan"), default=3.0, panel=REPEATS, rare=True)
    min_repeats: int = opt("--repeats auto: at least this many runs.",
        on=("compare", "run", "sweep", "plan"), default=2, panel=REPEATS, rare=True)
    max_repeats: int = opt("--repeats auto: at most this many runs.",
        on=("compare", "run", "sweep", "plan"), default=8, panel=REPEATS, rare=True)
    baseline: str | None = opt(
        "IMAGE:PROFILE that speedups are relative to (default: the first row).",
        on=("compare", "sweep", "report"), panel=REPEATS)
    keep_equivalent: bool = opt(
        "Run cells that cannot differ on this host (e.g. interleave and tuned on one NUMA node) "
        "apart anyway, instead of measuring them once.", on=("compare", "plan", "sweep", "tune"),
        default=False, panel=REPEATS, rare=True)
    keep_disturbed: bool = opt(
        "Count runs whose CPUs other work took more than 15% of (status disturbed, out of "
        "verdicts by default) as ok.", on=RUNS, default=False, panel=REPEATS, rare=True)
    wait_quiet: float | None = opt(
        "Before the first run, wait up to this many seconds for the host to be quiet (otherwise "
        "a busy host is only said).", on=RUNS, panel=REPEATS, rare=True, min=0, max=86400)
    tolerance: float = opt("A cell reproduces when within noise, or within this many percent.",
        on=("replay", "diff"), default=5.0, panel=REPEATS)
    allow_different_image: bool = opt(
        "Run even where this engine's image differs from the session's (recorded in the replay).",
        on=("replay",), default=False, panel=REPEATS)

    # Regression gate
    fail_if_slower: float | None = opt(
        "Exit 1 when a cell is significantly slower than the baseline session (or history) by "
        "more than X percent.", on=(*GATED, "diff"), panel=GATE,
        help_on={
            "diff": "Exit 1 when a cell is significantly slower in the second session by more "
                "than this many percent.",
        })
    baseline_session: str | None = opt(
        "Session to gate against (id, unique prefix or 'latest'); see --fail-if-slower.", on=GATED,
        panel=GATE)
    baseline_history: int | None = opt(
        "Gate against the last N sessions of each cell on this machine (since its last change); "
        "see --fail-if-slower.", on=GATED, panel=GATE, rare=True, metavar="N")
    gate_on: GateOn = opt(
        "What --fail-if-slower compares: throughput, or the per-batch latency p50, p90 or p99 "
        "(lower is better).", on=GATED, default=GateOn.throughput, panel=GATE, rare=True)
    gate_undecided: Undecided = opt(
        "What a cell the gate cannot decide does (too few repeats, an interval too wide, absent "
        "from the baseline, another machine or placement): fail the gate, or pass.",
        on=(*GATED, "diff"), default=Undecided.fail, panel=GATE, rare=True)

    # Engines and images
    engine: tuple[EngineKind, ...] = opt(
        "docker, podman, local (virtual environments, no containers), slurm (a job per node), or "
        "auto: docker if an engine answers, else local. Give two for one table.", default=(),
        on=(*CAMPAIGN, "replay"), panel=ENGINES)
    container_engine: ContainerEngine = opt("The engine: Docker, or podman's Docker API.",
        "--engine", on=("doctor", "images load", "images list"), default=ContainerEngine.docker,
        panel=ENGINES,
        help_on={
            "doctor": "Which engine to check.",
        })
    host: tuple[str, ...] = opt(
        "A Docker engine: unix:///path.sock, tcp://HOST:PORT, ssh://USER@HOST, a context or "
        "NAME=URL. Several: the same plan on each at once, one table (images sent from here).",
        "--host", "-H", default=(),
        on=("compare", "run", "plan", "verify", "sweep", "replay", "export", "topology", "clean"),
        panel=ENGINES,
        help_on={
            "export": "The Docker engine holding the images (one).",
            "topology": "Read the host behind this Docker engine instead (one; see compare).",
            "clean": "Clean these Docker engines (default: this host's).",
        })
    spread: bool = opt(
        "Deal the repeats of every cell over alike machines (Slurm nodes, --host), compared "
        "within each, not the whole plan on each.", "--spread", on=MEASURE, default=False,
        panel=ENGINES, rare=True)
    build_missing: bool = opt("Build a flavor's image when it is missing.", on=RUNS, default=False,
        panel=ENGINES)
    pull: bool = opt("Pull missing flavors from --registry instead of failing.", on=RUNS,
        default=False, panel=ENGINES, rare=True)
    registry: str | None = opt("Registry for --pull (default: $KIT_REGISTRY, else localhost:5000).",
        on=(*RUNS, "replay", "images push", "images pull"), panel=ENGINES, rare=True,
        help_on={
            "replay": "Pull images this engine lacks by their recorded digests from here.",
            "images push": "Registry host[:port] (default: $KIT_REGISTRY, else localhost:5000).",
            "images pull": "Registry host[:port] (default: $KIT_REGISTRY, else localhost:5000).",
        })
    memory: str | None = opt("Memory limit per container, e.g. 8g (no swap).", on=MEASURE,
        panel=ENGINES, rare=True)
    pids_limit: int | None = opt("Process/thread limit per container.", on=MEASURE, panel=ENGINES,
        rare=True)
    allow_concurrent: bool = opt(
        "Run even while another kit session runs on this host (they disturb each other).",
        on=(*RUNS, "verify"), default=False, panel=ENGINES, rare=True)
    verify: bool = opt(
        "Also a short diagnostic run per image with oneDNN verbose on: proof of what ran.", on=RUNS,
        default=False, panel=ENGINES)
    base: str = opt("Base image; when it cannot be pulled, kit builds a local Debian base.",
        on=("images build",), default="python:3.11-slim-bookworm", panel=ENGINES)
    ca_bundle: Path | None = opt(
        "CA bundle pip trusts in the build (default: $SSL_CERT_FILE, $PIP_CERT or "
        "$REQUESTS_CA_BUNDLE when set).", on=("images build",), panel=ENGINES, dir_okay=False)
    network: str | None = opt(
        "Network for the build's steps, e.g. host where the engine's bridge reaches no package "
        "index (default: the engine's).", on=("images build",), panel=ENGINES)
    with_images: bool = opt("Carry the images too (one archive, shared layers once).",
        on=("export",), default=False, panel=ENGINES)
    slurm: bool = opt("Instead cancel your kit jobs still in Slurm's queue.", "--slurm",
        on=("clean",), default=False, panel=ENGINES)

    # Results and output
    fmt: Format = opt("How to print the table.", "--format", "-f",
        on=(*RUNS, "verify", "replay", "diff", "history", "knobs", "topology", "profiles list",
            "profiles show"),
        default=Format.table, panel=OUTPUT)
    plan_format: PlanFormat = opt("How to print the plan.", "--format", "-f", on=("plan",),
        default=PlanFormat.table, panel=OUTPUT)
    report_format: ReportFormat = opt("How to print the report.", "--format", "-f", on=("report",),
        default=ReportFormat.table, panel=OUTPUT)
    wide: bool = opt("Every column in full (default: fit 120 columns, notes below).", on=RUNS,
        default=False, panel=OUTPUT, rare=True)
    export_json: Path | None = opt(
        "Write the table as JSON here too, rewritten as each run arrives.", on=RUNS, panel=OUTPUT,
        rare=True, metavar="FILE", dir_okay=False)
    export_csv: Path | None = opt("Write the table as CSV here too, rewritten as each run arrives.",
        on=RUNS, panel=OUTPUT, rare=True, metavar="FILE", dir_okay=False)
    export_markdown: Path | None = opt(
        "Write the table as Markdown here too, rewritten as each run arrives.", on=RUNS,
        panel=OUTPUT, rare=True, metavar="FILE", dir_okay=False)
    plot: bool = opt("Write PNG plots (bar chart, per-CPU heatmaps) to the session.",
        on=("report",), default=False, panel=OUTPUT)
    output: Path | None = opt("Write the report here (html's default: SESSION/report.html).",
        "--output", "-o", on=("report", "site", "export", "images save"), panel=OUTPUT,
        default_on={
            "site": Path("site"),
            "export": REQUIRED,
            "images save": Path("kit-images.tar.zst"),
        },
        help_on={
            "site": "The folder to write the site to.",
            "export": "The bundle to write (.tar.zst or .tar.gz).",
            "images save": "Archive: .tar.zst, .tar.gz or .tar.",
        })
    limit: int = opt("How many sessions, newest first.", on=("history",), default=20, panel=OUTPUT,
        min=1, max=100_000)
    cell: str | None = opt(
        "One cell over time (IMAGE:PROFILE): every session's figure with its interval and "
        "provenance, and the change points found, with what changed at each.", on=("history",),
        panel=OUTPUT, metavar="IMAGE:PROFILE")
    machine: str | None = opt("With --cell: only this machine's series (its hostname).",
        on=("history",), panel=OUTPUT)
    price: tuple[str, ...] = opt(
        "MACHINE=USD: the machine's price per hour, for the cost of a million images "
        "(repeatable; MACHINE is the hostname the sessions recorded).", default=(), on=("site",),
        panel=OUTPUT, metavar="MACHINE=USD")
    bundles: bool = opt("Write each session's bundle into the site to download (kit export).",
        on=("site",), default=False, panel=OUTPUT)
    results: Path = opt("Where session folders (and kit.db) are written.", on=(*CAMPAIGN, *STORED),
        default=Path("results"), panel=OUTPUT, rare=True, file_okay=False, envvar="KIT_RESULTS",
        show_envvar=True)
    db: Path | None = opt("Results database (default: RESULTS/kit.db).", "--db",
        on=(*CAMPAIGN, *STORED), panel=OUTPUT, rare=True, dir_okay=False)
    resume: str | None = opt("Session id (or folder) to finish: runs only what it is missing.",
        on=(*RUNS, "replay"), panel=OUTPUT)

    # On a Slurm cluster (--engine slurm)
    partition: str | None = opt("Partition the jobs go to.", on=MEASURE, panel=SLURM, rare=True)
    nodelist: str | None = opt("Nodes to run on, comma-separated (one job each).", on=MEASURE,
        panel=SLURM, rare=True)
    slurm_nodes: int | None = opt("How many nodes Slurm picks (--nodes is NUMA nodes).", on=MEASURE,
        panel=SLURM, rare=True)
    constraint: str | None = opt("Node features the nodes must have, e.g. 'c5|m7i'.", on=MEASURE,
        panel=SLURM, rare=True)
    account: str | None = opt("Account the jobs are charged to.", on=MEASURE, panel=SLURM,
        rare=True)
    time_limit: str | None = opt("Each job's time limit, e.g. 2:00:00.", "--time", on=MEASURE,
        panel=SLURM, rare=True)
    slurm_arg: tuple[str, ...] = opt("Any other sbatch/srun option, e.g. --slurm-arg=--qos=high.",
        default=(), on=MEASURE, panel=SLURM, rare=True)
    node_engine: NodeEngine = opt("The engine each node runs kit's containers with.", on=MEASURE,
        default=NodeEngine.docker, panel=SLURM, rare=True)
    node_python: str | None = opt(
        "The Python with kit on the nodes (default: this host's, the same path).", on=MEASURE,
        panel=SLURM, rare=True, metavar="PATH")
# fmt: on
