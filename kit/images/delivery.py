"""Every engine of a campaign has every image before anything runs: pulled from a registry,
built (images on this machine's Docker engine, environments for the local engine), or sent
from an engine that has them (docker save | docker load, ids checked)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from kit.engines.base import Engine
from kit.engines.docker import DockerEngine, connect
from kit.engines.factory import docker_engines
from kit.errors import EngineUnavailable, ImageNotFound
from kit.images.build import DEFAULT_BASE, build_image, default_ca_bundle, missing_flavors
from kit.images.distribution import pull, registry_from, send
from kit.model.feedback import Feedback
from kit.model.flavors import Flavor
from kit.model.spec import ImageRef


def deliver(
    refs: Sequence[ImageRef],
    engines: Mapping[str, Engine],
    feedback: Feedback,
    *,
    pull: bool = False,
    registry: str | None = None,
    build_missing: bool = False,
) -> dict[str, dict[str, str]]:
    """Bring the images to every engine (pulled from ``registry``, built, then sent), and
    return each engine's image ids by reference; ImageNotFound with the fix otherwise."""
    if pull:
        for one in docker_engines(engines):
            for flavor in missing_flavors(one.client, refs):
                pull_one(one.client, flavor, registry, feedback, where=one.name)
    if build_missing:
        _build_missing(refs, engines, feedback)
    _send_missing(refs, engines, feedback)
    references = list(dict.fromkeys(r.reference for r in refs))
    return {name: {r: one.image_id(r) for r in references} for name, one in engines.items()}


def pull_one(client, flavor: Flavor, registry: str | None, feedback: Feedback, where=None) -> str:
    """Pull one flavor on that engine, checked by digest; its image id."""
    host = registry_from(registry)
    on = f" on {where}" if where else ""
    with feedback.layers(f"pull {flavor.value}{on}") as on_layer:
        image_id = pull(client, flavor, host, on_layer)
    feedback.say(f"pulled {flavor.value} from {host}{on}: {image_id[:19]}, digest checked")
    return image_id


def build_envs(engine, flavors: Sequence[Flavor], feedback: Feedback, only_missing=False) -> None:
    """Make the local engine's environments (pip installs from the images' pins)."""
    for flavor in dict.fromkeys(flavors):
        path = engine.env_path(flavor)
        if only_missing and (path / "ready").is_file():
            continue
        with feedback.building(f"{flavor.value} environment") as build:
            build.say(f"making {path} from docker/flavors/{flavor.value}.txt and .lock")
            engine.build(flavor, build.on_log)
        feedback.say(f"ready: {flavor.value} in {path}")


def _build_missing(refs: Sequence[ImageRef], engines: Mapping[str, Engine], feedback) -> None:
    """Local environments for the local engine; images on this machine's Docker engine (other
    hosts are then sent them)."""
    if "local" in engines:
        flavors = [Flavor(r.flavor) for r in refs if r.flavor]
        build_envs(engines["local"], flavors, feedback, only_missing=True)
    if not docker_engines(engines):
        return

    client = connect(timeout=1800)
    for flavor in missing_flavors(client, refs):
        with feedback.building(flavor.value) as build:
            build_image(client, flavor, DEFAULT_BASE, default_ca_bundle(), build.say, build.on_log)


def _has(client, reference: str) -> bool:
    import docker.errors
    from requests.exceptions import RequestException

    try:
        client.images.get(reference)
        return True
    except (docker.errors.DockerException, RequestException):  # missing, or no answer
        return False


def _sources(targets: Sequence) -> list[tuple[str, str, object]]:
    """Engines images can be sent from, as (name, URL, client): this machine's engine first."""
    sources = []
    with contextlib.suppress(EngineUnavailable):  # no engine here: send from a host that has it
        sources.append(("this host", DockerEngine().url, connect(timeout=1800)))
    return sources + [(e.name, e.url, e.client) for e in targets]


def _send_missing(refs: Sequence[ImageRef], engines: Mapping[str, Engine], feedback) -> None:
    """Stream the images a Docker engine lacks to it from one that has them."""
    targets = docker_engines(engines)
    if len(targets) < 2 and not any(e.endpoint is not None for e in targets):
        return  # one default engine: nothing to send it from
    references = list(dict.fromkeys(r.reference for r in refs))
    sources = None
    for target in targets:
        missing = [r for r in references if not _has(target.client, r)]
        if not missing:
            continue
        sources = sources if sources is not None else _sources(targets)
        source = next(
            (s for s in sources if s[1] != target.url and all(_has(s[2], r) for r in missing)),
            None,
        )
        if source is None:
            raise ImageNotFound(
                f"{target.name} lacks {', '.join(missing)} and no engine here has it to send",
                "build it here (`kit images build`), or pass --pull --registry REG",
            )
        with feedback.moving(f"sending {', '.join(missing)} to {target.name}") as on_bytes:
            send(source[2], target.client, missing, on_bytes)
        feedback.say(f"sent {', '.join(missing)} from {source[0]} to {target.name}")
