"""The measuring commands' one option set, ``MeasureOptions`` (each field one option, with its
Typer annotation), and the campaign request it becomes. Adding an option is one field here and
one line in ``request_of``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from kit.campaign.request import CampaignRequest, How, What, Where
from kit.campaign.schedules.adaptive import Adaptive
from kit.cli.common import (
    DEFAULT_PROFILES,
    AccountOpt,
    AllocatorOpt,
    AllowEmulatedOpt,
    BaselineHistoryOpt,
    BaselineOpt,
    BaselineSessionOpt,
    BatchesOpt,
    BatchOpt,
    BuildMissingOpt,
    CiWidthOpt,
    ConcurrentOpt,
    ConstraintOpt,
    CoresOpt,
    CpunodebindOpt,
    CpusOpt,
    DataFormatOpt,
    DbOpt,
    EngineOpt,
    FailIfSlowerOpt,
    FormatOpt,
    ForwardOpt,
    GateOnOpt,
    GateUndecidedOpt,
    HostOpt,
    InstancesOpt,
    InterleaveOpt,
    KeepDisturbedOpt,
    KeepEquivalentOpt,
    LocalallocOpt,
    MaxRepeatsOpt,
    MembindOpt,
    MemoryOpt,
    MinRepeatsOpt,
    ModelOpt,
    ModeOpt,
    NodeEngineOpt,
    NodelistOpt,
    NodePythonOpt,
    NodesOpt,
    OnePerCoreOpt,
    PartitionOpt,
    PhyscpubindOpt,
    PidsOpt,
    PrecisionOpt,
    PreferredOpt,
    PresetOpt,
    ProfileOpt,
    ProfilesFile,
    RepeatsOpt,
    ResultsOpt,
    ResumeOpt,
    SlurmArgOpt,
    SlurmNodesOpt,
    SpreadOpt,
    TimeLimitOpt,
    TimeoutOpt,
    VerifyOpt,
    WaitQuietOpt,
    WarmupOpt,
    WorkloadDirOpt,
    WorkloadOpt,
    slurm_options,
)
from kit.cpus import parse_cpu_list
from kit.engines.endpoints import parse_hosts
from kit.engines.factory import EngineKind
from kit.engines.slurm.options import NodeEngine
from kit.errors import UsageError
from kit.inputs import check_output_file
from kit.judging.gate import Gate, GateOn, Undecided
from kit.model.numa import NumaPolicy
from kit.model.spec import Limits
from kit.model.workload import (
    Allocator,
    DataFormat,
    Mode,
    Precision,
    Preset,
    Workload,
    WorkloadSpec,
    warmup_of,
)
from kit.planning.placement import CpuSelection, parse_instances
from kit.reporting.table import Format

ImagesArg = Annotated[
    list[str], typer.Argument(help="Flavors (stock, intel, latest) or image references.")
]
ImageArg = Annotated[
    str, typer.Argument(help="A flavor (stock, intel, latest) or image reference.")
]
OneProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="Profile to run.")]
PullOpt = Annotated[
    bool,
    typer.Option(help="Pull missing flavors from --registry instead of failing."),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option(
        help="Registry for --pull (default: $KIT_REGISTRY, else localhost:5000).",
    ),
]


def _export_opt(what: str):
    return Annotated[
        Path | None,
        typer.Option(metavar="FILE", dir_okay=False,
                     help=f"Write the table as {what} here too, rewritten as each run arrives."),
    ]  # fmt: skip


ExportJsonOpt, ExportCsvOpt, ExportMarkdownOpt = (
    _export_opt(w) for w in ("JSON", "CSV", "Markdown")
)
WideOpt = Annotated[
    bool, typer.Option(help="Every column in full (default: fit 120 columns, notes below).")
]


@dataclass(frozen=True)
class MeasureOptions:
    """Every option of the measuring commands, as Typer reads them (one field, one option)."""

    images: ImagesArg
    profile: ProfileOpt = None
    profiles_file: ProfilesFile = None
    preset: PresetOpt = Preset.quick
    model: ModelOpt = None
    batch_size: BatchOpt = None
    num_batches: BatchesOpt = None
    num_warmup_batches: WarmupOpt = None
    data_format: DataFormatOpt = DataFormat.NHWC
    mode: ModeOpt = None
    forward_only: ForwardOpt = False
    precision: PrecisionOpt = Precision.fp32
    allocator: AllocatorOpt = Allocator.system
    allow_emulated: AllowEmulatedOpt = False
    keep_equivalent: KeepEquivalentOpt = False
    keep_disturbed: KeepDisturbedOpt = False
    wait_quiet: WaitQuietOpt = None
    workload: WorkloadOpt = Workload.kit
    workload_dir: WorkloadDirOpt = None
    timeout: TimeoutOpt = 3600.0
    baseline: BaselineOpt = None
    fmt: FormatOpt = Format.table
    export_json: ExportJsonOpt = None
    export_csv: ExportCsvOpt = None
    export_markdown: ExportMarkdownOpt = None
    wide: WideOpt = False
    results: ResultsOpt = Path("results")
    engine: EngineOpt = None
    host: HostOpt = None
    cpus: CpusOpt = None
    nodes: NodesOpt = None
    cores: CoresOpt = None
    one_thread_per_core: OnePerCoreOpt = False
    interleave: InterleaveOpt = None
    membind: MembindOpt = None
    preferred: PreferredOpt = None
    cpunodebind: CpunodebindOpt = None
    physcpubind: PhyscpubindOpt = None
    localalloc: LocalallocOpt = False
    instances: InstancesOpt = None
    memory: MemoryOpt = None
    pids_limit: PidsOpt = None
    build_missing: BuildMissingOpt = False
    allow_concurrent: ConcurrentOpt = False
    resume: ResumeOpt = None
    db: DbOpt = None
    verify: VerifyOpt = False
    pull: PullOpt = False
    registry: RegistryOpt = None
    repeats: RepeatsOpt = "3"
    ci_width: CiWidthOpt = 3.0
    min_repeats: MinRepeatsOpt = 2
    max_repeats: MaxRepeatsOpt = 8
    baseline_session: BaselineSessionOpt = None
    baseline_history: BaselineHistoryOpt = None
    fail_if_slower: FailIfSlowerOpt = None
    gate_on: GateOnOpt = GateOn.throughput
    gate_undecided: GateUndecidedOpt = Undecided.fail
    partition: PartitionOpt = None
    nodelist: NodelistOpt = None
    slurm_nodes: SlurmNodesOpt = None
    constraint: ConstraintOpt = None
    account: AccountOpt = None
    time_limit: TimeLimitOpt = None
    slurm_arg: SlurmArgOpt = None
    node_engine: NodeEngineOpt = NodeEngine.docker
    node_python: NodePythonOpt = None
    spread: SpreadOpt = False


def exports_of(o: MeasureOptions) -> dict[Format, Path]:
    """The --export-* files, each checked by writing there before any work."""
    found = {Format.json: o.export_json, Format.csv: o.export_csv,
             Format.markdown: o.export_markdown}  # fmt: skip
    for fmt, path in found.items():
        if path is not None:
            check_output_file(path, f"--export-{fmt.value}")
    return {fmt: path for fmt, path in found.items() if path is not None}


def request_of(o: MeasureOptions, *, measure: bool = True) -> CampaignRequest:
    """The options as the core's typed request (each value checked as it is built)."""
    warmup = None if o.num_warmup_batches is None else warmup_of(o.num_warmup_batches)
    workload = WorkloadSpec.from_preset(
        o.preset, model=o.model, batch_size=o.batch_size, num_batches=o.num_batches,
        num_warmup_batches=warmup, data_format=o.data_format,
        mode=Mode.infer if o.forward_only else o.mode, precision=o.precision,
        allocator=o.allocator, workload=o.workload, workload_dir=o.workload_dir,
    )  # fmt: skip
    selection = CpuSelection(
        cpus=parse_cpu_list(o.cpus, what="--cpus") if o.cpus is not None else None,
        nodes=parse_cpu_list(o.nodes, what="--nodes") if o.nodes is not None else None,
        cores=o.cores,
        one_thread_per_core=o.one_thread_per_core,
    )
    numactl = NumaPolicy(o.interleave, o.membind, o.preferred, o.cpunodebind, o.physcpubind,
                         o.localalloc)  # fmt: skip
    adaptive, repeats = repeats_of(o)
    what = What(
        tuple(o.images), tuple(o.profile or DEFAULT_PROFILES), o.profiles_file, workload,
        selection, numactl, parse_instances(o.instances), Limits(o.memory, o.pids_limit),
        repeats, o.timeout, adaptive=adaptive, allow_emulated=o.allow_emulated,
        keep_equivalent=o.keep_equivalent, keep_disturbed=o.keep_disturbed,
        wait_quiet=o.wait_quiet,
    )  # fmt: skip
    slurm = slurm_options(o.engine, o.partition, o.nodelist, o.slurm_nodes, o.constraint,
                          o.account, o.time_limit, o.slurm_arg, o.node_engine,
                          o.node_python)  # fmt: skip
    where = Where(tuple(o.engine or [EngineKind.auto]), tuple(parse_hosts(o.host or [])),
                  o.pull, o.registry, o.build_missing, slurm, o.spread)  # fmt: skip
    how = How(
        o.results, o.db, o.resume, measure, o.verify or not measure, o.baseline,
        Gate.from_options(o.baseline_session, o.fail_if_slower, o.gate_on, o.gate_undecided,
                          o.baseline_history),
        o.allow_concurrent,
    )  # fmt: skip
    return CampaignRequest(what, where, how)


def repeats_of(o: MeasureOptions) -> tuple[Adaptive | None, int]:
    """--repeats N, or auto with its rule (planned for its most repeats)."""
    if o.repeats.strip().lower() == "auto":
        rule = Adaptive(o.ci_width / 100, o.min_repeats, o.max_repeats)
        return rule, rule.max_repeats
    if not o.repeats.strip().isdigit():
        raise UsageError(f"--repeats {o.repeats!r} is neither a number nor auto", "e.g. 3 or auto")
    return None, int(o.repeats)
