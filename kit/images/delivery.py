"""Every engine of a campaign has every image before anything runs: pulled from a registry,
built (images on this machine's Docker engine, environments for the local engine), or sent
from an engine that has them (docker save | docker load, ids checked). Also a replay's: the
very images a session ran, loaded from its bundle, found by id, or pulled by digest; and an
export's: the images' registry digests and the images themselves. All through the engines'
image holders (``Engine.images``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from kit.engines.base import Engine, ImageHolder
from kit.engines.docker import DockerEngine
from kit.engines.factory import image_holders
from kit.engines.reach import connect
from kit.errors import EngineUnavailable, ImageNotFound, KitError, UsageError
from kit.images.build import DEFAULT_BASE, build_image, default_ca_bundle, missing_flavors
from kit.images.distribution import load, pull, registry_from, save_references, send
from kit.model.feedback import Feedback
from kit.model.flavors import Flavor, near_flavor
from kit.model.results import RunResult
from kit.model.spec import ImageRef
from kit.store.bundle import Bundle


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
        for one in image_holders(engines):
            for flavor in missing_flavors(one.client, refs):
                pull_one(one.client, flavor, registry, feedback, where=one.name)
    if build_missing:
        _build_missing(refs, engines, feedback)
    _send_missing(refs, engines, feedback)
    return {name: {r.reference: _held_id(one, r) for r in refs} for name, one in engines.items()}


def _held_id(engine: Engine, ref: ImageRef) -> str:
    try:
        return engine.image_id(ref.reference)
    except ImageNotFound as exc:
        near = near_flavor(ref.label) if ref.flavor is None else ""
        raise ImageNotFound(exc.message, f"{near}{exc.hint}" if near else exc.hint) from None


def check_named_images(refs: Sequence[ImageRef], engine: Engine | None) -> list[str]:
    """For a plan: an image that is no flavor, not on the engine and close to a flavor's name
    (a typo, ``intell``) is refused; one that is only not on the engine gets a note."""
    notes = []
    for ref in refs:
        held = None if ref.flavor is not None else _holds(engine, ref.reference)
        if ref.flavor is not None or held:
            continue
        where = f"on {engine.name}" if held is False and engine else "on an engine (none answered)"
        if near := near_flavor(ref.label):
            raise ImageNotFound(
                f"image {ref.label!r} is neither a flavor nor {where}",
                f"{near}the flavors are {', '.join(f.value for f in Flavor)}",
            )
        notes.append(f"note: image {ref.label} is no flavor and not {where}: build or pull it")
    return notes


def _holds(engine: Engine | None, reference: str) -> bool | None:
    """Whether the engine has the image; None when there is no engine to ask, or it does not
    answer."""
    if engine is None:
        return None
    try:
        engine.image_id(reference)
        return True
    except ImageNotFound:
        return False
    except KitError:
        return None


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
        if only_missing and engine.state(flavor) is not None:
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
    if not image_holders(engines):
        return

    client = connect(timeout=1800)
    for flavor in missing_flavors(client, refs):
        with feedback.building(flavor.value) as build:
            build_image(client, flavor, DEFAULT_BASE, default_ca_bundle(), build.say, build.on_log)


def _sources(targets: Sequence[ImageHolder]) -> list[tuple[str, ImageHolder]]:
    """Engines images can be sent from, as (name, holder): this machine's engine first."""
    sources: list[tuple[str, ImageHolder]] = []
    with contextlib.suppress(EngineUnavailable):  # no engine here: send from a host that has it
        sources.append(("this host", DockerEngine(connect(timeout=1800))))
    return sources + [(e.name, e) for e in targets]


def _send_missing(refs: Sequence[ImageRef], engines: Mapping[str, Engine], feedback) -> None:
    """Stream the images a Docker engine lacks to it from one that has them."""
    targets = image_holders(engines)
    if len(targets) < 2 and not any(e.endpoint is not None for e in targets):
        return  # one default engine: nothing to send it from
    references = list(dict.fromkeys(r.reference for r in refs))
    sources = None
    for target in targets:
        missing = [r for r in references if not target.holds(r)]
        if not missing:
            continue
        sources = sources if sources is not None else _sources(targets)
        source = next(
            (s for s in sources if s[1].url != target.url and all(s[1].holds(r) for r in missing)),
            None,
        )
        if source is None:
            raise ImageNotFound(
                f"{target.name} lacks {', '.join(missing)} and no engine here has it to send",
                "build it here (`kit images build`), or pass --pull --registry REG",
            )
        with feedback.moving(f"sending {', '.join(missing)} to {target.name}") as on_bytes:
            send(source[1].client, target.client, missing, on_bytes)
        feedback.say(f"sent {', '.join(missing)} from {source[0]} to {target.name}")


def registry_digests(
    holder: ImageHolder, runs: Sequence[RunResult], with_images: bool, feedback: Feedback
) -> dict[str, list[str]]:
    """Each image's registry digests, where the engine still holds the image the runs used.
    An image changed since gets none (its digests are another image's); with --with-images it
    is refused, as the bundle would name one image and carry another."""
    out: dict[str, list[str]] = {}
    for r in runs:
        if not r.image_id or r.image_ref in out:
            continue
        found = holder.repo_digests(r.image_ref)
        if found is None:
            out[r.image_ref] = []
            continue
        image_id, repo_digests = found
        changed = f"{r.image_ref} on {holder.name} is now {image_id[:19]}; the session ran "
        if image_id != r.image_id and with_images:
            raise UsageError(
                changed + r.image_id[:19],
                "export without --with-images, or from the engine that still has the image",
            )
        if image_id != r.image_id:
            feedback.say(f"{changed}{r.image_id[:19]}: its registry digests are not recorded")
            out[r.image_ref] = []
            continue
        out[r.image_ref] = repo_digests
    return out


def save_images(holder: ImageHolder, references: Sequence[str], tar: Path, feedback) -> None:
    """The images into one archive (for a bundle that carries them)."""
    with feedback.moving(f"saving {', '.join(references)}") as on_bytes:
        save_references(holder.client, references, tar, on_bytes)


def bring_images(
    bundle: Bundle,
    engines: Mapping[str, Engine],
    refs,
    allow: bool,
    feedback: Feedback,
    registry: str | None = None,
) -> list[str]:
    """Every engine holds the very images the session ran: loaded from the bundle when it
    carries them, else pulled by digest from ``registry``; a different one is refused unless
    allowed, then said and recorded."""
    recorded = bundle.images
    different, loaded = [], set()
    for name, engine in engines.items():
        for ref in refs:
            image = recorded.get(ref.label) or {}
            want = image.get("id")
            if want is None:
                continue  # a failed run's image: nothing to hold it to
            have = _image_id(engine, ref.reference)
            holder = engine.images
            if have != want and holder is not None:
                if _retag(holder, ref.reference, want, feedback):
                    pass  # the engine had it under another name
                elif bundle.images_tar is not None and name not in loaded:
                    _load(holder, bundle, feedback)
                    loaded.add(name)
                elif registry is not None:
                    digests = image.get("repo_digests") or []
                    _pull_digest(holder, ref.reference, digests, want, registry, feedback)
                have = _image_id(engine, ref.reference)
            if have != want:
                different.append(_refuse_or_say(name, ref, have, want, allow, feedback))
    return different


def _retag(holder: ImageHolder, reference: str, want: str, feedback: Feedback) -> bool:
    """The session's image, found on the engine by its id under another name, named as the
    session named it."""
    if not holder.tag_id(want, reference):
        return False
    feedback.say(f"{holder.name}: found the session's image {want[:19]}; tagged it {reference}")
    return True


def _refuse_or_say(name, ref, have: str | None, want: str, allow: bool, feedback) -> str:
    line = f"{name}: {ref.reference} is {(have or 'missing')[:19]}, the session ran {want[:19]}"
    if not allow:
        raise UsageError(
            line,
            "export the session with --with-images, pass --registry where its images were "
            "pushed, or --allow-different-image to run this image (recorded in the replay)",
        )
    feedback.say(f"different image (allowed): {line}")
    return line


def pulled_names(digests: Sequence[str], registry: str) -> list[str]:
    """Where each recorded digest (``HOST/REPO@sha256:...``) is in ``registry``."""
    names = []
    for digest in digests:
        repository, at, sha = digest.partition("@")
        if not at:
            continue
        first, slash, rest = repository.partition("/")
        is_host = slash and ("." in first or ":" in first or first == "localhost")
        names.append(f"{registry}/{rest if is_host else repository}@{sha}")
    return list(dict.fromkeys(names))


def _pull_digest(holder: ImageHolder, reference: str, digests, want: str, registry: str, feedback):
    """The image by one of its digests from the registry, tagged as the session named it."""
    for name in pulled_names(digests, registry):
        try:
            pulled = holder.pull_as(name, want, reference)
        except ImageNotFound as exc:
            feedback.say(f"{holder.name}: {exc.message}")
            continue
        if pulled:
            feedback.say(f"pulled {name} into {holder.name} as {reference} (id checked)")
            return
    feedback.say(f"{holder.name}: {registry} has no image with the session's digests")


def _image_id(engine: Engine, reference: str) -> str | None:
    try:
        return engine.image_id(reference)
    except ImageNotFound:
        return None


def _load(holder: ImageHolder, bundle: Bundle, feedback: Feedback) -> None:
    assert bundle.images_tar is not None
    with feedback.moving(f"loading the bundle's images into {holder.name}") as on_bytes:
        tags = load(holder.client, bundle.images_tar, on_bytes)
    feedback.say(f"loaded {', '.join(tags)} into {holder.name} from the bundle")
