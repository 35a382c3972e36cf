"""Making engines: the one place a kind (docker, local, auto) or a ``--host`` endpoint becomes an
Engine. The command line is handed an ``EngineMaker``; tests hand it a fake one, so nothing is
monkeypatched and a fake's host can be any captured topology."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kit.engines.base import Engine, ImageHolder
from kit.engines.docker import DockerEngine
from kit.engines.endpoints import Endpoint
from kit.engines.kinds import EngineKind
from kit.engines.local import LocalEngine
from kit.engines.podman import podman_socket
from kit.engines.reach import connect
from kit.engines.slurm.engine import SlurmEngine, probe_nodes
from kit.errors import EngineUnavailable, ImageNotFound, UsageError
from kit.host.facts import HostFacts
from kit.host.topology import Topology, read_host
from kit.model.flavors import Flavor, image_tag

if TYPE_CHECKING:
    from kit.engines.slurm.options import SlurmOptions


class EngineMaker(Protocol):
    def engine(self, kind: EngineKind, endpoint: Endpoint | None = None) -> Engine:
        """An engine of that kind (``docker`` when an endpoint is given)."""

    def this_host(self) -> Topology:
        """The topology of the machine kit itself runs on (read without asking an engine)."""

    def cluster(self, options: SlurmOptions, folder: Path) -> dict[str, Engine]:
        """Each node Slurm allocates for ``options``, probed, by name (``folder``: the results
        folder, which the nodes must share)."""


class SystemEngines:
    """The real engines: Docker through the SDK, the local engine's virtual environments."""

    def __init__(self, say: Callable[[str], None] = lambda message: None) -> None:
        self.say = say

    def engine(self, kind: EngineKind, endpoint: Endpoint | None = None) -> Engine:

        if endpoint is not None or kind is EngineKind.docker:
            return DockerEngine(endpoint=endpoint)
        if kind is EngineKind.podman:
            return DockerEngine(endpoint=Endpoint("podman", url=podman_socket()))
        if kind is EngineKind.local:
            return LocalEngine()
        try:
            client = connect(timeout=60)
        except EngineUnavailable as exc:
            self.say(f"engine: local ({exc.message})")
            return LocalEngine()
        self.say("engine: docker")
        return DockerEngine(client)

    def this_host(self) -> Topology:
        return read_host()

    def cluster(self, options: SlurmOptions, folder: Path) -> dict[str, Engine]:
        probes = probe_nodes(options, folder)
        self.say(f"engine: slurm, node(s) {', '.join(p.node for p in probes)}")
        return {p.node: SlurmEngine(p, options) for p in probes}


def open_engines(
    maker: EngineMaker,
    kinds: Sequence[EngineKind],
    hosts: Sequence[Endpoint],
    cluster: tuple[SlurmOptions, Path] | None = None,
) -> dict[str, Engine]:
    """The engines a session runs on, by name: each host's Docker engine, or each kind (which
    may be several, for one table); ``local`` adds this machine's venvs to the hosts; ``slurm``
    each node of the cluster (``cluster``: its options and the shared results folder)."""
    kinds = list(dict.fromkeys(kinds or [EngineKind.auto]))
    engines: dict[str, Engine] = {}
    if EngineKind.slurm in kinds:
        if cluster is None:
            raise UsageError("--engine slurm needs its options", "see kit compare --help")
        engines.update(maker.cluster(*cluster))
        kinds = [k for k in kinds if k is not EngineKind.slurm]
        if not kinds and not hosts:
            return engines
    for endpoint in hosts:
        engines[endpoint.label] = maker.engine(EngineKind.docker, endpoint)
    if hosts:
        kinds = [k for k in kinds if k is EngineKind.local]
    for kind in kinds:
        engine = maker.engine(kind)
        engines.setdefault(engine.name, engine)
    return engines


def image_holders(engines: Mapping[str, Engine]) -> list[ImageHolder]:
    """The image holders of the engines that have images to move (Docker and podman)."""
    return [e.images for e in engines.values() if e.images is not None]


def remote_facts(maker: EngineMaker, endpoint: Endpoint) -> HostFacts:
    """A Docker engine's host, read by a probe container from the first kit image it has."""

    engine = maker.engine(EngineKind.docker, endpoint)
    engine.check()
    for flavor in Flavor:
        try:
            engine.image_id(image_tag(flavor))
        except ImageNotFound:
            continue
        return engine.host_facts(image_tag(flavor))
    raise ImageNotFound(
        f"no kit image on {engine.name} to read its host with",
        "send one with any `kit compare ... --host` there, or `kit images pull` on it",
    )
