"""kit images: build, push, pull, save, load, list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kit.cli.common import envs_app, err, images_app, out
from kit.cli.declare import command
from kit.cli.options import Options
from kit.engines.kinds import ContainerEngine
from kit.inputs import check_output_file
from kit.model.flavors import Flavor


@command(images_app, "images build", Options)
def images_build(
    o: Options,
    flavors: Annotated[list[Flavor] | None, typer.Argument(help="Default: all flavors.")] = None,
) -> None:
    """Build kit's images through the Docker SDK."""
    from kit.cli.ui import BuildDisplay
    from kit.engines.reach import connect
    from kit.images.build import build_image, check_ca_bundle, default_ca_bundle
    from kit.model.flavors import Flavor, check_reference

    base, ca_bundle, network = o.base, o.ca_bundle, o.network
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


FlavorsArg = Annotated[list[Flavor] | None, typer.Argument(help="Default: all flavors.")]


@command(images_app, "images push", Options)
def images_push(o: Options, flavors: FlavorsArg = None) -> None:
    """Tag and push flavors to a registry, tagged by flavor, TF version and kit version."""
    from kit.cli.ui import LayerDisplay
    from kit.engines.reach import connect
    from kit.images.distribution import push, registry_from
    from kit.model.flavors import Flavor

    host = registry_from(o.registry)
    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        with LayerDisplay(err, f"push {flavor.value}") as display:
            digest = push(client, flavor, host, display.on_layer)
        err.print(f"pushed {flavor.value} to {host}: {digest}", markup=False)


@command(images_app, "images pull", Options)
def images_pull(o: Options, flavors: FlavorsArg = None) -> None:
    """Pull flavors from a registry, check them by digest, tag them as kit expects."""
    from kit.cli.ui import TerminalFeedback
    from kit.engines.reach import connect
    from kit.images.delivery import pull_one
    from kit.model.flavors import Flavor

    client = connect(timeout=1800)
    for flavor in flavors or list(Flavor):
        pull_one(client, flavor, o.registry, TerminalFeedback(err))


@command(images_app, "images save", Options)
def images_save(o: Options, flavors: FlavorsArg = None) -> None:
    """Write flavors' images to one compressed archive, for hosts that reach no registry."""
    from kit.cli.ui import ByteDisplay
    from kit.engines.reach import connect
    from kit.images.distribution import compression_for, save
    from kit.model.flavors import Flavor

    output = o.output
    compression_for(output)
    check_output_file(output, "--output")
    client = connect(timeout=1800)
    with ByteDisplay(err, f"saving to {output}") as display:
        size = save(client, flavors or list(Flavor), output, display.on_bytes)
    err.print(f"saved {output}: {size / 2**20:.0f} MiB", markup=False)


def _client(target: ContainerEngine):
    """A client of this host's Docker engine, or of podman's API (rootful or rootless)."""
    from kit.engines.endpoints import Endpoint
    from kit.engines.podman import podman_socket
    from kit.engines.reach import connect

    if target is ContainerEngine.podman:
        return connect(timeout=1800, endpoint=Endpoint("podman", url=podman_socket()))
    return connect(timeout=1800)


@command(images_app, "images load", Options)
def images_load(
    archive: Annotated[Path, typer.Argument(help="A file made by kit images save.")], o: Options
) -> None:
    """Load an archive made by `kit images save`; the images then run with no network."""
    from kit.cli.ui import ByteDisplay
    from kit.images.distribution import load

    client = _client(o.container_engine)
    with ByteDisplay(err, f"loading {archive}") as display:
        tags = load(client, archive, display.on_bytes)
    err.print(f"loaded {', '.join(tags) or 'no tagged image'}", markup=False)


@command(images_app, "images list", Options)
def images_list(o: Options) -> None:
    """kit's images on this engine: flavor, TF package, size, id, created."""
    from kit.images.build import list_images
    from kit.reporting.narrow import fit_listing

    rows = [
        [
            ", ".join(i.tags) or "<untagged>",
            i.flavor,
            i.tf_package,
            f"{i.size_bytes / 1e9:.2f} GB",
            i.id,
            i.created,
        ]
        for i in list_images(_client(o.container_engine))
    ]
    shown = fit_listing(["tags", "flavor", "TF package", "size", "id", "created"], rows)
    out.print(shown, markup=False, fit=False)


@envs_app.command("build")
def envs_build(flavors: FlavorsArg = None) -> None:
    """Make the local engine's environment of each flavor (cached until its pins change)."""
    from kit.cli.ui import TerminalFeedback
    from kit.engines.local import LocalEngine
    from kit.images.delivery import build_envs
    from kit.model.flavors import Flavor

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
    from kit.engines.local import LocalEngine

    path = LocalEngine().adopt(flavor, prefix)
    err.print(f"adopted: {flavor.value} is {prefix} ({path})", markup=False)


@envs_app.command("list")
def envs_list() -> None:
    """The local engine's environments and whether each is ready."""
    from kit.engines.local import LocalEngine
    from kit.model.flavors import Flavor
    from kit.reporting.narrow import fit_listing

    engine = LocalEngine()
    missing = "missing: kit envs build "
    rows = [[f.value, str(engine.env_path(f)), engine.state(f) or missing + f.value]
            for f in Flavor]  # fmt: skip
    out.print(fit_listing(["flavor", "environment", "state"], rows), markup=False, fit=False)
