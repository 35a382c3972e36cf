"""The measuring commands' options as one typed request: the campaign the core runs and how its
results are shown. Where each option of compare, run, verify, plan, sweep and tune acts is here,
one line each (the options themselves are declared in ``kit.cli.options``).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from kit.campaign.request import CampaignRequest, How, What, Where
from kit.campaign.schedules.adaptive import Adaptive
from kit.campaign.schedules.budget import MAX_ROUNDS, Budget
from kit.campaign.schedules.confirm import CONFIRM_REPEATS
from kit.campaign.schedules.strategy import Strategy
from kit.campaign.schedules.tuning import Tuning
from kit.cli.options import Options
from kit.cpus import parse_cpu_list
from kit.engines.endpoints import parse_hosts
from kit.engines.kinds import EngineKind
from kit.engines.slurm.options import NodeEngine, SlurmOptions
from kit.errors import UsageError, did_you_mean
from kit.inputs import check_output_file
from kit.judging.gate import Gate
from kit.model.acts import Needs, needs
from kit.model.numa import NumaPolicy
from kit.model.profiles import load_profiles
from kit.model.spec import Limits
from kit.model.workload import Model, WorkloadSpec, model_digest, warmup_of
from kit.planning.knobs import KnobKind, load_knobs, parse_knob
from kit.planning.placement import CpuSelection, parse_instances
from kit.planning.sweep import Sweep
from kit.reporting.formats import Format, PlanFormat

DEFAULT_PROFILES = ("default", "tuned", "interleave")
ONE_PROFILE = ("run", "sweep", "tune")  # one profile: the run's, or the knobs' base


@dataclass(frozen=True)
class Shown:
    """How a measuring command shows what it measured."""

    fmt: Format | PlanFormat = Format.table
    wide: bool = False
    exports: Mapping[Format, Path] = field(default_factory=dict)
    baseline: str | None = None
    save_profile: Path | None = None  # tune: the winner, as a profile
    topology: Path | None = None  # plan: another host's topology file
    threads_per_core: int | None = None


@dataclass(frozen=True)
class MeasureRequest:
    campaign: CampaignRequest
    shown: Shown


def measure_request(command: str, images: tuple[str, ...], o: Options) -> MeasureRequest:
    """The options of ``command`` as the core's typed request, each value checked as it is
    built (a file to write is tried now, before any work)."""
    if command in ONE_PROFILE and len(o.profile) > 1:
        what = "the base profile the knobs are set on" if command != "run" else "one profile"
        raise UsageError(
            f"kit {command} takes {what}; -p was given {len(o.profile)} times",
            "compare several profiles with `kit compare -p A -p B`"
            if command == "run" else "give one -p BASE, and vary the rest with --knob",
        )  # fmt: skip
    if command in ("sweep", "tune"):
        request = _sweep_request(command, images, o)
    else:
        request = campaign_request(command, images, o)
    fmt = o.plan_format if command == "plan" else o.fmt
    shown = Shown(fmt, o.wide, exports_of(o), o.baseline, _writable(o.save_profile),
                  o.topology, o.threads_per_core)  # fmt: skip
    return MeasureRequest(request, shown)


def _writable(path: Path | None) -> Path | None:
    if path is not None:
        check_output_file(path, "--save-profile")
    return path


def exports_of(o: Options) -> dict[Format, Path]:
    """The --export-* files, each checked by writing there before any work."""
    found = {Format.json: o.export_json, Format.csv: o.export_csv,
             Format.markdown: o.export_markdown}  # fmt: skip
    for fmt, path in found.items():
        if path is not None:
            check_output_file(path, f"--export-{fmt.value}")
    return {fmt: path for fmt, path in found.items() if path is not None}


def _profiles(command: str, o: Options) -> tuple[str, ...]:
    for name in (n for n in o.profile if "," in n):
        several = " ".join(f"-p {p.strip()}" for p in name.split(",") if p.strip())
        raise UsageError(f"-p takes one profile name, not {name!r}", f"give several as {several}")
    if o.profile:
        return o.profile
    return DEFAULT_PROFILES if command in ("compare", "plan") else ("default",)


def campaign_request(command: str, images: tuple[str, ...], o: Options) -> CampaignRequest:
    """What, where and how a campaign runs, from the options."""
    warmup = None if o.num_warmup_batches is None else warmup_of(o.num_warmup_batches)
    model, model_file, digest = model_of(o.model, o.engine)
    workload = WorkloadSpec.from_preset(
        o.preset, model=model, batch_size=o.batch_size, num_batches=o.num_batches,
        model_file=model_file, model_digest=digest,
        num_warmup_batches=warmup, data_format=o.data_format, mode=o.mode,
        precision=o.precision, allocator=o.allocator, workload=o.workload,
        workload_dir=o.workload_dir,
    )  # fmt: skip
    selection = CpuSelection(
        cpus=parse_cpu_list(o.cpus, what="--cpus") if o.cpus is not None else None,
        nodes=parse_cpu_list(o.nodes, what="--nodes") if o.nodes is not None else None,
        cores=o.cores,
        one_thread_per_core=o.one_thread_per_core,
    )
    numactl = NumaPolicy(o.interleave, o.membind, o.preferred, o.cpunodebind, o.physcpubind,
                         o.localalloc)  # fmt: skip
    adaptive, repeats = repeats_of(o, command)
    what = What(
        images, _profiles(command, o), o.profiles_file, workload, selection, numactl,
        parse_instances(o.instances), Limits(o.memory, o.pids_limit), repeats, o.timeout,
        adaptive=adaptive, allow_emulated=o.allow_emulated, keep_equivalent=o.keep_equivalent,
        keep_disturbed=o.keep_disturbed, wait_quiet=o.wait_quiet,
    )  # fmt: skip
    where = Where(tuple(o.engine or (EngineKind.auto,)), tuple(parse_hosts(list(o.host))),
                  o.pull, o.registry, o.build_missing, slurm_options(o), o.spread)  # fmt: skip
    measure = command != "verify"
    how = How(
        o.results, o.db, o.resume, measure, o.verify or not measure, o.baseline,
        Gate.from_options(o.baseline_session, o.fail_if_slower, o.gate_on, o.gate_undecided,
                          o.baseline_history),
        o.allow_concurrent,
    )  # fmt: skip
    return CampaignRequest(what, where, how)


def repeats_of(o: Options, command: str = "compare") -> tuple[Adaptive | None, int]:
    """--repeats N, or auto with its rule (planned for its most repeats); a tune's --budget is
    its search's, not the repeats'."""
    auto = o.repeats.strip().lower() == "auto"
    budget = o.budget if command != "tune" else None
    changed = [name for name, value, default in (("--ci-width", o.ci_width, 3.0),
               ("--min-repeats", o.min_repeats, 2), ("--max-repeats", o.max_repeats, 8),
               ("--budget", budget, None)) if value != default]  # fmt: skip
    if changed and not auto:
        raise UsageError(f"{changed[0]} goes with --repeats auto", "add --repeats auto")
    if auto:
        spend = Budget.parse(budget) if budget is not None else None
        rule = Adaptive(o.ci_width / 100, o.min_repeats, o.max_repeats, spend)
        return rule, rule.max_repeats
    if not o.repeats.strip().isdigit():
        raise UsageError(f"--repeats {o.repeats!r} is neither a number nor auto", "e.g. 3 or auto")
    return None, int(o.repeats)


def slurm_options(o: Options) -> SlurmOptions | None:
    """The Slurm options, with --engine slurm; refused without it."""
    given = [o.partition, o.nodelist, o.slurm_nodes, o.constraint, o.account, o.time_limit,
             o.node_python, *o.slurm_arg]  # fmt: skip
    if EngineKind.slurm not in o.engine:
        if any(v is not None for v in given) or o.node_engine is not NodeEngine.docker:
            raise UsageError(
                "--partition, --nodelist, --slurm-nodes, --constraint, --account, --time, "
                "--slurm-arg, --node-engine and --node-python go with --engine slurm",
                "add --engine slurm, or leave them out",
            )
        return None
    nodes_list = tuple(n.strip() for n in (o.nodelist or "").split(",") if n.strip())
    return SlurmOptions(o.partition, nodes_list, o.slurm_nodes, o.constraint, o.account,
                        o.time_limit, o.slurm_arg, o.node_engine, o.node_python)  # fmt: skip


def _sweep_request(command: str, images: tuple[str, ...], o: Options) -> CampaignRequest:
    """A sweep: cells from the knobs' values on one base profile. A tune's is seeded with the
    built-in profiles and planned for as many rounds as a race may take (the grid strategy:
    three), its last rounds confirming the best."""
    registry = load_knobs(o.knobs_file)
    knobs = tuple(parse_knob(text, registry) for text in o.knob)
    named = tuple(v for k in knobs if k.knob.kind is KnobKind.image for v in k.raw)
    if named and images:
        raise UsageError(
            "images are named twice: as arguments and as --knob image=...", "name them once"
        )
    if not named and not images:
        raise UsageError("no image to sweep", f"e.g. kit {command} intel --knob intra=1,2")
    tuning = None
    if command == "tune":
        tuning = Tuning(Budget.parse(o.budget), o.strategy)
        search = 3 if o.strategy is Strategy.grid else MAX_ROUNDS
        o = replace(o, repeats=str(search + CONFIRM_REPEATS))
    request = campaign_request(command, images or named, o)
    # Every built-in profile seeds the tuner, but a quota (it is how a run is deployed, not a
    # setting to win by: it gives the same CPUs less time) and, without zentf among the
    # images, AMD's zentf settings (made for a build that is not there).
    zentf = "zentf" in (images or named)
    seeds = tuple(n for n, p in load_profiles().items() if not p.select.get("quota")
                  and (zentf or not any(needs(k) is Needs.zendnn for k in p.env)))  # fmt: skip
    seeds = seeds if tuning is not None else ()
    what = replace(request.what, sweep=Sweep(knobs, o.where, seeds=seeds))
    return replace(request, what=what, how=replace(request.how, tuning=tuning))


MODEL_SUFFIXES = (".keras", ".h5")


def model_of(text: str | None, kinds) -> tuple[Model | None, Path | None, str | None]:
    """--model: a built-in model, or the user's saved Keras file with its sha256; refused in one
    line when it is neither (before any engine is asked)."""
    if text is None or text in set(Model):
        return (Model(text) if text else None), None, None
    path = Path(text).expanduser()
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise UsageError(f"--model {text} is a folder with no saved_model.pb",
                         "give a saved Keras model (.keras, .h5) or a SavedModel "
                         "folder")  # fmt: skip
    if not path.exists():
        known = ", ".join(m.value for m in Model)
        raise UsageError(f"--model {text!r} is neither a built-in model nor a file",
                         f"{did_you_mean(text, [m.value for m in Model])}choose {known}, or "
                         "give a saved Keras model (.keras, .h5) or a SavedModel "
                         "folder")  # fmt: skip
    if path.is_file() and path.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"--model {text}: kit reads saved Keras models (.keras, .h5)",
                         "save yours with model.save('model.keras')")  # fmt: skip
    files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
    hidden = any(not f.stat().st_mode & 0o004 for f in files)
    if hidden and tuple(kinds or ()) != (EngineKind.local,):
        raise UsageError(f"--model {text}: kit's containers run as an unprivileged user, who "
                         "cannot read it", f"chmod -R o+rX {text}")  # fmt: skip
    if EngineKind.slurm in tuple(kinds or ()):
        raise UsageError("--model FILE is a file of this machine; Slurm's nodes cannot see it",
                         "run your model on a local or Docker engine")  # fmt: skip
    digest = model_digest(path)
    if digest is None:
        raise UsageError(f"--model {text}: cannot read it")
    return None, path.resolve(), digest
