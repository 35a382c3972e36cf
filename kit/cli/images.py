"""kit images: build, push, pull, save, load, list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kit.cli.common import (
    envs_app,
    err,
    images_app,
    out,
)
from kit.cli.ui import BuildDisplay, ByteDisplay, LayerDisplay, TerminalFeedback
from kit.engines.endpoints import Endpoint
from kit.engines.factory import ContainerEngine
from kit.engines.local import LocalEngine
from kit.engines.podman import podman_socket
from kit.engines.reach import connect
from kit.images.build import build_image, check_ca_bundle, default_ca_bundle, list_images
from kit.images.delivery import build_envs, pull_one
from kit.images.distribution import compression_for, load, push, registry_from, save
from kit.inputs import check_output_file
from kit.model.flavors import Flavor, check_reference
from kit.reporting.table import tabulate_rows


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
    network: Annotated[
        str | None,
        typer.Option(
            help="Network for the build's steps, e.g. host where the engine's bridge reaches "
            "no package index (default: the engine's)."
        ),
    ] = None,
) -> None:
    """Build kit's images through the Docker SDK."""

    check_reference(base)
    check_ca_bundle(ca_bundle)
    bundle = ca_bundle or default_ca_bundle()
    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        with BuildDisplay(err, flavor.value) as display:
            image_id = build_image(
                client, flavor, base, bundle, display.say, display.on_log, network
            )
        err.print(f"built {flavor.value}: {image_id[:19]}")


RegistryOpt = Annotated[
    str | None,
    typer.Option(help="Registry host[:port] (default: $KIT_REGISTRY, else localhost:5000)."),
]
FlavorsArg = Annotated[list[Flavor] | None, typer.Argument(help="Default: all flavors.")]


@images_app.command("push")
def images_push(flavors: FlavorsArg = None, registry: RegistryOpt = None) -> None:
    """Tag and push flavors to a registry, tagged by flavor, TF version and kit version."""

    host = registry_from(registry)
    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        with LayerDisplay(err, f"push {flavor.value}") as display:
            digest = push(client, flavor, host, display.on_layer)
        err.print(f"pushed {flavor.value} to {host}: {digest}", markup=False)


@images_app.command("pull")
def images_pull(flavors: FlavorsArg = None, registry: RegistryOpt = None) -> None:
    """Pull flavors from a registry, check them by digest, tag them as kit expects."""

    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        pull_one(client, flavor, registry, TerminalFeedback(err))


@images_app.command("save")
def images_save(
    flavors: FlavorsArg = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Archive: .tar.zst, .tar.gz or .tar.")
    ] = Path("kit-images.tar.zst"),
) -> None:
    """Write flavors' images to one compressed archive, for hosts that reach no registry."""

    compression_for(output)
    check_output_file(output, "--output")
    client = connect(timeout=1800)
    with ByteDisplay(err, f"saving to {output}") as display:
        size = save(client, flavors or list(Flavor), output, display.on_bytes)
    err.print(f"saved {output}: {size / 2**20:.0f} MiB", markup=False)


EngineOpt = Annotated[
    ContainerEngine, typer.Option(help="The engine: Docker, or podman's Docker API.")
]


def _client(target: ContainerEngine):
    """A client of this host's Docker engine, or of podman's API (rootful or rootless)."""
    if target is ContainerEngine.podman:
        return connect(timeout=1800, endpoint=Endpoint("podman", url=podman_socket()))
    return connect(timeout=1800)


@images_app.command("load")
def images_load(
    archive: Annotated[Path, typer.Argument(help="A file made by kit images save.")],
    engine: EngineOpt = ContainerEngine.docker,
) -> None:
    """Load an archive made by `kit images save`; the images then run with no network."""

    client = _client(engine)
    with ByteDisplay(err, f"loading {archive}") as display:
        tags = load(client, archive, display.on_bytes)
    err.print(f"loaded {', '.join(tags) or 'no tagged image'}", markup=False)


@images_app.command("list")
def images_list(engine: EngineOpt = ContainerEngine.docker) -> None:
    """kit's images on this engine: flavor, TF package, size, id, created."""
    rows = [
        [
            ", ".join(i.tags) or "<untagged>",
            i.flavor,
            i.tf_package,
            f"{i.size_bytes / 1e9:.2f} GB",
            i.id,
            i.created,
        ]
        for i in list_images(_client(engine))
    ]
    out.print(
        tabulate_rows(rows, ["tags", "flavor", "TF package", "size", "id", "created"]), markup=False
    )


@envs_app.command("build")
def envs_build(flavors: FlavorsArg = None) -> None:
    """Make the local engine's environment of each flavor (cached until its pins change)."""

    build_envs(LocalEngine(), flavors or list(Flavor), TerminalFeedback(err))


@envs_app.command("adopt")
def envs_adopt(
    flavor: Annotated[Flavor, typer.Argument(help="The flavor the environment holds.")],
    prefix: Annotated[
        Path, typer.Argument(help="The environment's prefix (it holds bin/python), e.g. /opt/venv.")
    ],
) -> None:
    """Use an environment kit did not make (an image's /opt/venv, a cluster's own) for a flavor,
    once its packages match the flavor's pins."""
    path = LocalEngine().adopt(flavor, prefix)
    err.print(f"adopted: {flavor.value} is {prefix} ({path})", markup=False)


@envs_app.command("list")
def envs_list() -> None:
    """The local engine's environments and whether each is ready."""
    engine = LocalEngine()
    missing = "missing: kit envs build "
    rows = [[f.value, str(engine.env_path(f)), engine.state(f) or missing + f.value]
            for f in Flavor]  # fmt: skip
    out.print(tabulate_rows(rows, ["flavor", "environment", "state"]), markup=False)
