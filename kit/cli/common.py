"""What every command shares: the consoles, the apps, the option types, the engine factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kit import __version__
from kit.cli.help import RootGroup
from kit.engines.factory import EngineKind, EngineMaker, SystemEngines
from kit.engines.slurm.options import NodeEngine, SlurmOptions
from kit.errors import UsageError
from kit.inputs import stat_of
from kit.judging.gate import GateOn, Undecided
from kit.model.workload import Allocator, DataFormat, Mode, Model, Precision, Preset, Workload
from kit.reporting.table import Format
from kit.store.database import ResultsDB
from kit.store.folder import DB_NAME

app = typer.Typer(
    name="kit",
    help="How fast does TensorFlow train on this CPU, which build and settings win, by how much?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    cls=RootGroup,
)
images_app = typer.Typer(help="Build and list kit's TensorFlow images.", no_args_is_help=True)
profiles_app = typer.Typer(help="Named env/thread/numactl settings.", no_args_is_help=True)
envs_app = typer.Typer(
    help="The local engine's virtual environments (the images' pins, no Docker).",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")
app.add_typer(envs_app, name="envs")
app.add_typer(profiles_app, name="profiles")

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = Console(highlight=False, soft_wrap=True, emoji=False)

DEFAULT_PROFILES = ["default", "tuned", "interleave"]

ProfilesFile = Annotated[
    Path | None,
    typer.Option(
        "--profiles",
        help="TOML file with more profiles (see kit/model/profiles.toml).",
        dir_okay=False,
    ),
]
ProfileOpt = Annotated[
    list[str] | None, typer.Option("--profile", "-p", help="Profile to run; repeat for several.")
]
PresetOpt = Annotated[
    Preset,
    typer.Option(
        help="quick: resnet50 training, batch 32, 10 batches; seed: batch 128, 30 batches; "
        "latency, throughput: inference at batch 1, 32."
    ),
]
ModelOpt = Annotated[
    Model | None, typer.Option(help="The model (default: resnet50, or the preset's).")
]
BatchOpt = Annotated[int | None, typer.Option(help="Overrides the preset's batch size.")]
BatchesOpt = Annotated[int | None, typer.Option(help="Timed batches (overrides the preset).")]
_WARMUP = "Untimed warmup batches: auto (until the step time settles) or N, a fixed number."
WarmupOpt = Annotated[str | None, typer.Option(help=_WARMUP, metavar="auto|N")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="How to print the table.")]
DataFormatOpt = Annotated[DataFormat, typer.Option(help="Tensor layout.")]
ForwardOpt = Annotated[bool, typer.Option(hidden=True, help="The same as --mode infer.")]
ModeOpt = Annotated[
    Mode | None,
    typer.Option(
        help="train, or infer: the forward pass alone, with latency p50/p90/p99 (overrides the "
        "preset's)."
    ),
]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(help="fp32, or bf16 (Keras mixed_bfloat16; needs avx512_bf16 or amx_bf16)."),
]
AllocatorOpt = Annotated[
    Allocator,
    typer.Option(help="The malloc preloaded in the container: system (glibc), jemalloc, tcmalloc."),
]
AllowEmulatedOpt = Annotated[
    bool, typer.Option(help="Run bf16 even on a CPU that would emulate it (slower than fp32).")
]
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
    Path,
    typer.Option(help="Where session folders (and kit.db) are written.", file_okay=False,
                 envvar="KIT_RESULTS", show_envvar=True),
]  # fmt: skip
BaselineOpt = Annotated[
    str | None,
    typer.Option(help="IMAGE:PROFILE that speedups are relative to (default: the first row)."),
]
CpusOpt = Annotated[
    str | None,
    typer.Option(help="Host CPUs to use, e.g. 0-8,18-26 (default: all)."),
]
NodesOpt = Annotated[str | None, typer.Option(help="Use the CPUs of these NUMA nodes.")]
CoresOpt = Annotated[
    int | None,
    typer.Option(help="Use the first N physical cores of the selection."),
]
OnePerCoreOpt = Annotated[
    bool,
    typer.Option(
        "--one-thread-per-core",
        help="One logical CPU per physical core.",
    ),
]
InterleaveOpt = Annotated[
    str | None,
    typer.Option(help="numactl --interleave: all or NODES."),
]
MembindOpt = Annotated[str | None, typer.Option(help="numactl --membind NODES.")]
PreferredOpt = Annotated[str | None, typer.Option(help="numactl --preferred NODE.")]
CpunodebindOpt = Annotated[str | None, typer.Option(help="numactl --cpunodebind NODES.")]
PhyscpubindOpt = Annotated[str | None, typer.Option(help="numactl --physcpubind CPUS.")]
LocalallocOpt = Annotated[bool, typer.Option(help="numactl --localalloc.")]
InstancesOpt = Annotated[
    str | None,
    typer.Option(
        help="N or per-node: N containers at once on disjoint cores, memory local; their sum.",
    ),
]

MemoryOpt = Annotated[
    str | None,
    typer.Option(help="Memory limit per container, e.g. 8g (no swap)."),
]
PidsOpt = Annotated[int | None, typer.Option(help="Process/thread limit per container.")]
BuildMissingOpt = Annotated[
    bool,
    typer.Option(help="Build a flavor's image when it is missing."),
]
ConcurrentOpt = Annotated[
    bool,
    typer.Option(
        help="Run even while another kit session runs on this host (they disturb each other).",
    ),
]
RepeatsOpt = Annotated[
    str,
    typer.Option(
        help="Runs per cell, each a fresh container, interleaved (A B C, C B A, ...); auto: until "
        "the verdict is clear or the interval within --ci-width.",
    ),
]
CiWidthOpt = Annotated[
    float,
    typer.Option(
        help="--repeats auto stops a cell when its speedup's interval is within this many "
        "percent each side.",
    ),
]
MinRepeatsOpt = Annotated[int, typer.Option(help="--repeats auto: at least this many runs.")]
MaxRepeatsOpt = Annotated[int, typer.Option(help="--repeats auto: at most this many runs.")]
BaselineSessionOpt = Annotated[
    str | None,
    typer.Option(
        help="Session to gate against (id, unique prefix or 'latest'); see --fail-if-slower.",
    ),
]
BaselineHistoryOpt = Annotated[
    int | None,
    typer.Option(metavar="N", help="Gate against the last N sessions "
                 "of each cell on this machine (since its last change); see --fail-if-slower."),
]  # fmt: skip
GateOnOpt = Annotated[
    GateOn,
    typer.Option(
        help="What --fail-if-slower compares: throughput, or the per-batch latency p50, p90 "
        "or p99 (lower is better)."
    ),
]
GateUndecidedOpt = Annotated[
    Undecided,
    typer.Option(
        help="What a cell the gate cannot decide does (too few repeats, an interval too wide, "
        "absent from the baseline, another machine or placement): fail the gate, or pass.",
    ),
]
KeepDisturbedOpt = Annotated[
    bool,
    typer.Option(
        help="Count runs whose CPUs other work took more than 15% of (status disturbed, out of "
        "verdicts by default) as ok.",
    ),
]
WaitQuietOpt = Annotated[
    float | None,
    typer.Option(
        min=0, max=86400,
        help="Before the first run, wait up to this many seconds for the host to be quiet "
        "(otherwise a busy host is only said).",
    ),
]  # fmt: skip
KeepEquivalentOpt = Annotated[
    bool,
    typer.Option(
        help="Run cells that cannot differ on this host (e.g. interleave and tuned on one NUMA "
        "node) apart anyway, instead of measuring them once.",
    ),
]
FailIfSlowerOpt = Annotated[
    float | None,
    typer.Option(
        help="Exit 1 when a cell is significantly slower than the baseline session (or "
        "history) by more than X percent.",
    ),
]
VerifyOpt = Annotated[
    bool,
    typer.Option(
        help="Also a short diagnostic run per image with oneDNN verbose on: proof of what ran.",
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Results database (default: RESULTS/kit.db).",
        dir_okay=False,
    ),
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        help="Session id (or folder) to finish: runs only what it is missing.",
    ),
]


EngineOpt = Annotated[
    list[EngineKind] | None,
    typer.Option(
        help="docker, podman, local (virtual environments, no containers), slurm (a job per "
        "node), or auto: docker if an engine answers, else local. Give two for one table.",
    ),
]


PartitionOpt = Annotated[str | None, typer.Option(help="Partition the jobs go to.")]
NodelistOpt = Annotated[
    str | None,
    typer.Option(help="Nodes to run on, comma-separated (one job each)."),
]
SlurmNodesOpt = Annotated[
    int | None,
    typer.Option(help="How many nodes Slurm picks (--nodes is NUMA nodes)."),
]
ConstraintOpt = Annotated[
    str | None,
    typer.Option(help="Node features the nodes must have, e.g. 'c5|m7i'."),
]
AccountOpt = Annotated[str | None, typer.Option(help="Account the jobs are charged to.")]
TimeLimitOpt = Annotated[
    str | None,
    typer.Option("--time", help="Each job's time limit, e.g. 2:00:00."),
]
SlurmArgOpt = Annotated[
    list[str] | None,
    typer.Option(help="Any other sbatch/srun option, e.g. --slurm-arg=--qos=high."),
]  # fmt: skip
NodeEngineOpt = Annotated[
    NodeEngine,
    typer.Option(help="The engine each node runs kit's containers with."),
]
SpreadOpt = Annotated[
    bool,
    typer.Option("--spread", help="Deal the repeats of every cell over alike machines (Slurm "
                 "nodes, --host), compared within each, not the whole plan on each."),
]  # fmt: skip
NodePythonOpt = Annotated[
    str | None,
    typer.Option(metavar="PATH",
                 help="The Python with kit on the nodes (default: this host's, the same path)."),
]  # fmt: skip


def slurm_options(
    engines: list[EngineKind] | None, partition: str | None, nodelist: str | None,
    nodes: int | None, constraint: str | None, account: str | None, time: str | None,
    extra: list[str] | None, node_engine: NodeEngine, node_python: str | None = None,
) -> SlurmOptions | None:  # fmt: skip
    """The Slurm options, with --engine slurm; refused without it."""
    given = [partition, nodelist, nodes, constraint, account, time, node_python, *(extra or [])]
    if EngineKind.slurm not in (engines or []):
        if any(v is not None for v in given) or node_engine is not NodeEngine.docker:
            raise UsageError(
                "--partition, --nodelist, --slurm-nodes, --constraint, --account, --time, "
                "--slurm-arg, --node-engine and --node-python go with --engine slurm",
                "add --engine slurm, or leave them out",
            )
        return None
    nodes_list = tuple(n.strip() for n in (nodelist or "").split(",") if n.strip())
    return SlurmOptions(partition, nodes_list, nodes, constraint, account, time,
                        tuple(extra or ()), node_engine, node_python)  # fmt: skip


HostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        "-H",
        help="A Docker engine: unix:///path.sock, tcp://HOST:PORT, ssh://USER@HOST, a context or "
        "NAME=URL. Several: the same plan on each at once, one table (images sent from here).",
    ),
]


def engine_maker(ctx: typer.Context) -> EngineMaker:
    """The engines commands run on: the real ones, unless the caller handed in others (tests
    invoke the app with ``obj=`` a fake EngineMaker)."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = SystemEngines(say=lambda message: err.print(message, markup=False))
    return root.obj


def existing_db(db: Path | None, results: Path) -> Path:
    """The results database a command reads: --db, else RESULTS/kit.db; it must exist."""
    path = db or results / DB_NAME
    if stat_of(path, "--db") is None:
        raise UsageError(f"no results database at {path}", "run `kit compare` first, or pass --db")
    return path


def open_db(db: Path | None, results: Path):
    return ResultsDB(existing_db(db, results))


def _print_version(value: bool) -> None:
    if value:
        out.print(f"kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print kit's version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """How fast does TensorFlow train on this CPU, which build and settings win, by how much?"""
