"""Which engines a session runs on and what they need first: the engines named by --host and
--engine, the images each lacks (pulled, built or sent to it), and which engines share a
machine (and so take turns)."""

from __future__ import annotations

import contextlib

from kit.cli import common
from kit.cli.common import EngineKind, err
from kit.cli.images import build_envs, pull_one
from kit.flavors import Flavor
from kit.spec import ImageRef


def pull_missing(refs: list[ImageRef], engines: dict, registry: str | None) -> None:
    """Pull the flavors each Docker engine lacks from the registry, on that engine."""
    from kit.images import missing_flavors

    for one in docker_engines(engines):
        for flavor in missing_flavors(one.client, refs):
            pull_one(one.client, flavor, registry, where=one.name)


def build_missing(refs: list[ImageRef], engines: dict) -> None:
    """Build the flavors the plan needs that an engine lacks: local environments for the local
    engine; images on this host's Docker engine (other hosts are sent them)."""
    if "local" in engines:
        build_envs(
            engines["local"],
            [Flavor(r.flavor) for r in refs if r.flavor],
            only_missing=True,
        )
    if not docker_engines(engines):
        return
    from kit.engines.docker import connect
    from kit.images import DEFAULT_BASE, build_image, default_ca_bundle, missing_flavors
    from kit.ui import BuildDisplay

    client = connect(timeout=1800)
    for flavor in missing_flavors(client, refs):
        with BuildDisplay(err, flavor.value) as display:
            build_image(
                client, flavor, DEFAULT_BASE, default_ca_bundle(), display.say, display.on_log
            )


def docker_engines(engines: dict) -> list:
    """The session's Docker engines (the ones with a client to send images through)."""
    return [e for e in engines.values() if hasattr(e, "client")]


def send_missing(refs: list[ImageRef], engines: dict) -> None:
    """Stream the images a Docker engine lacks to it from one that has them: this host's
    engine first, else another in the session (docker save | docker load, ids checked)."""
    import docker.errors
    from requests.exceptions import RequestException

    from kit.distribution import send
    from kit.engines.docker import DockerEngine, connect
    from kit.errors import EngineUnavailable, ImageNotFound
    from kit.ui import ByteDisplay

    targets = docker_engines(engines)
    if len(targets) < 2 and not any(e.endpoint is not None for e in targets):
        return  # one default engine: nothing to send it from
    references = list(dict.fromkeys(r.reference for r in refs))
    sources = []  # (name, URL, client): this host's engine first
    with contextlib.suppress(EngineUnavailable):  # no engine here: send from a host that has it
        sources.append(("this host", DockerEngine().url, connect(timeout=1800)))
    sources += [(e.name, e.url, e.client) for e in targets]

    def has(client, reference: str) -> bool:
        try:
            client.images.get(reference)
            return True
        except (docker.errors.DockerException, RequestException):  # missing, or no answer
            return False

    for target in targets:
        missing = [r for r in references if not has(target.client, r)]
        if not missing:
            continue
        for name, url, client in sources:
            if url == target.url:
                continue
            if all(has(client, r) for r in missing):
                with ByteDisplay(err, f"sending {', '.join(missing)} to {target.name}") as shown:
                    send(client, target.client, missing, shown.on_bytes)
                err.print(f"sent {', '.join(missing)} from {name} to {target.name}", markup=False)
                break
        else:
            raise ImageNotFound(
                f"{target.name} lacks {', '.join(missing)} and no engine here has it to send",
                "build it here (`kit images build`), or pass --pull --registry REG",
            )


def session_engines(o: dict) -> dict:
    """The engines the session runs on, by name: each --host's Docker engine, or --engine
    (which may be given more than once); --engine local adds this host's venvs to the hosts."""
    from kit.engines.endpoints import parse_hosts

    kinds = list(dict.fromkeys(o.get("engine") or [EngineKind.auto]))
    engines = {}
    for endpoint in parse_hosts(o.get("host") or []):
        engines[endpoint.label] = common.make_engine(EngineKind.docker, endpoint)
    if engines:
        kinds = [k for k in kinds if k is EngineKind.local]
    for kind in kinds:
        engine = common.make_engine(kind)
        engines.setdefault(engine.name, engine)
    return engines


def machines_of(engines: dict, facts: dict) -> dict[str, list[str]]:
    """Engines grouped by the machine they run on (its kernel's boot id), in the given order;
    says when engines share one, as their runs then take turns."""
    machines: dict[str, list[str]] = {}
    for name in engines:
        machines.setdefault(facts[name].machine, []).append(name)
    for names in machines.values():
        if len(names) > 1:
            err.print(
                f"{' and '.join(names)} run on one machine ({facts[names[0]].hostname}): "
                "their runs take turns",
                markup=False,
            )
    return machines
