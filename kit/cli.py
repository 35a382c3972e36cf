"""kit's command line: options -> spec -> core -> print. Thin on purpose."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kit import __version__
from kit.cpus import parse_cpu_list
from kit.errors import KitError, RunFailed
from kit.flavors import Flavor
from kit.plan import build_plan, placement_for
from kit.profiles import load_profiles, pick
from kit.report import Format, check_baseline, render
from kit.spec import DataFormat, Model, Preset, Workload, WorkloadSpec
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
CpusOpt = Annotated[
    str | None, typer.Option(help="Host CPUs the containers get, e.g. 0-8,18-26 (default: all).")
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
ResultsOpt = Annotated[Path, typer.Option(help="Where session folders are written.")]
BaselineOpt = Annotated[
    str | None,
    typer.Option(help="IMAGE:PROFILE that speedups are relative to (default: the first row)."),
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
    cpus: CpusOpt = None,
    timeout: TimeoutOpt = 3600.0,
    baseline: BaselineOpt = None,
    fmt: FormatOpt = Format.table,
    results: ResultsOpt = Path("results"),
) -> None:
    """Run every IMAGE under every profile and tabulate images/sec and speedup."""
    spec = WorkloadSpec.from_preset(
        preset,
        model=model,
        batch_size=batch_size,
        num_batches=num_batches,
        num_warmup_batches=num_warmup_batches,
        data_format=data_format,
        forward_only=forward_only,
        workload=workload,
        workload_dir=workload_dir,
    )
    _execute(
        images,
        profile or DEFAULT_PROFILES,
        profiles_file,
        spec,
        cpus,
        timeout,
        baseline,
        fmt,
        results,
    )


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
    cpus: CpusOpt = None,
    timeout: TimeoutOpt = 3600.0,
    fmt: FormatOpt = Format.table,
    results: ResultsOpt = Path("results"),
) -> None:
    """Run one IMAGE under one profile."""
    spec = WorkloadSpec.from_preset(
        preset,
        model=model,
        batch_size=batch_size,
        num_batches=num_batches,
        num_warmup_batches=num_warmup_batches,
        data_format=data_format,
        forward_only=forward_only,
        workload=workload,
        workload_dir=workload_dir,
    )
    _execute([image], [profile], profiles_file, spec, cpus, timeout, None, fmt, results)


def make_engine():
    """The engine runs go through (the one place tests swap in a fake)."""
    from kit.docker_engine import DockerEngine

    return DockerEngine()


def _execute(
    images, profile_names, profiles_file, spec, cpus, timeout, baseline, fmt, results_root
) -> None:
    from kit.results import check_writable
    from kit.session import check_images, run_session
    from kit.ui import RunDisplay

    topology = read_host()
    selected = parse_cpu_list(cpus, what="--cpus") if cpus is not None else None
    profiles = pick(load_profiles(profiles_file), profile_names)
    plan = build_plan(images, profiles, spec, topology, selected, timeout)
    check_baseline([s.key for s in plan], baseline)
    check_writable(results_root)
    engine = make_engine()
    engine.check()
    check_images(engine, plan)

    err.print(
        f"kit {__version__}: {len(plan)} run(s) of {spec.describe()} on CPUs {plan[0].cpu_list}"
    )
    with RunDisplay(err, spec) as display:
        store, finished = run_session(plan, engine, results_root, display.on_event, baseline)
    out.print(render(finished, fmt, baseline), markup=False)
    err.print(f"results: {store.path} (summary.md, a log and a JSON record per run)")
    failed = [r for r in finished if not r.ok]
    if failed:
        raise RunFailed(
            f"{len(failed)} of {len(finished)} runs failed",
            f"see the status column and the logs in {store.path}",
        )


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
    from kit.report import tabulate_rows

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
    from kit.report import tabulate_rows

    profiles = load_profiles(profiles_file)
    rows = [[p.name, p.source, p.description] for p in profiles.values()]
    out.print(tabulate_rows(rows, ["profile", "from", "description"]), markup=False)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    profiles_file: ProfilesFile = None,
    cpus: CpusOpt = None,
) -> None:
    """A profile resolved for this host (or --cpus): env, threads, numactl argv."""
    topology = read_host()
    selected = parse_cpu_list(cpus, what="--cpus") if cpus is not None else topology.cpu_ids
    topology.select(selected)
    placement = placement_for(topology, selected)
    (profile,) = pick(load_profiles(profiles_file), [name])
    resolved = profile.resolve(placement)
    out.print(f"profile:     {profile.name} ({profile.source})", markup=False)
    out.print(f"description: {profile.description}", markup=False)
    out.print(
        f"placement:   {placement.cores} physical cores, {placement.threads} logical CPUs, "
        f"{placement.nodes} NUMA node(s)",
        markup=False,
    )
    for key, value in resolved.env.items():
        out.print(f"env:         {key}={value}", markup=False)
    out.print(
        f"threads:     inter_op={resolved.inter_op or 'TF default'} "
        f"intra_op={resolved.intra_op or 'TF default'}",
        markup=False,
    )
    out.print(f"numactl:     {' '.join(resolved.numa.argv()) or '(none)'}", markup=False)
    caps = "SYS_NICE (memory policy)" if resolved.numa.needs_sys_nice else "none"
    out.print(f"capabilities: {caps}", markup=False)


def main() -> None:
    try:
        app()
    except KitError as exc:
        err.print(f"kit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
