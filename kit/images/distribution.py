"""Moving kit's images to another host: through a registry (push, pull checked by digest) or
as an archive file (save, load; zstd or gzip), so a new host needs no build."""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from kit import __version__
from kit.errors import ImageNotFound, KitError, UsageError
from kit.inputs import stat_of
from kit.lazy import lazy_module
from kit.model.flavors import IMAGE_REPOSITORY, Flavor, image_tag, tf_package

docker = lazy_module("docker")
requests = lazy_module("requests")

DEFAULT_REGISTRY = "localhost:5000"
REGISTRY_ENV = "KIT_REGISTRY"
CHUNK = 1 << 20

LayerSink = Callable[[str, str, int, int], None]  # layer id, status, current, total
ByteSink = Callable[[int], None]


def registry_from(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--registry, else $KIT_REGISTRY, else the documented default."""
    env = os.environ if environ is None else environ
    registry = (option or env.get(REGISTRY_ENV) or DEFAULT_REGISTRY).strip().rstrip("/")
    if not registry or "://" in registry or " " in registry:
        raise UsageError(
            f"registry {registry!r} is not a registry host", "write it like localhost:5000"
        )
    return registry


@dataclass(frozen=True)
class RemoteName:
    repository: str  # REGISTRY/kit/tensorflow
    tags: tuple[str, ...]  # most specific first: <flavor>-<TF version>-kit<version>, <flavor>

    @property
    def primary(self) -> str:
        return f"{self.repository}:{self.tags[0]}"


def remote_name(flavor: Flavor, registry: str) -> RemoteName:
    version = tf_package(flavor).split("==")[-1]
    return RemoteName(
        f"{registry}/{IMAGE_REPOSITORY}",
        (f"{flavor.value}-{version}-kit{__version__}", flavor.value),
    )


def _stream(events: Iterator[dict], on_layer: LayerSink) -> dict:
    """Feed push/pull progress to ``on_layer``; raise on an error event; return the last aux."""
    aux: dict = {}
    for event in events:
        if "error" in event:
            raise KitError(str(event["error"]).strip())
        if "aux" in event:
            aux = event["aux"]
        detail = event.get("progressDetail") or {}
        on_layer(
            event.get("id", ""),
            event.get("status", ""),
            int(detail.get("current") or 0),
            int(detail.get("total") or 0),
        )
    return aux


def push(client: docker.DockerClient, flavor: Flavor, registry: str, on_layer: LayerSink) -> str:
    """Tag and push one flavor; return the manifest digest the registry reported."""
    name = remote_name(flavor, registry)
    try:
        image = client.images.get(image_tag(flavor))
    except docker.errors.NotFound:
        raise ImageNotFound(
            f"no {image_tag(flavor)} to push", f"build it first: kit images build {flavor.value}"
        ) from None
    digest = ""
    tagged: list[str] = []  # the tags this push adds (an earlier push's stay, whatever happens)
    had = set(image.tags)
    try:
        for tag in name.tags:
            image.tag(name.repository, tag)
            if f"{name.repository}:{tag}" not in had:
                tagged.append(f"{name.repository}:{tag}")
            aux = _stream(client.api.push(name.repository, tag, stream=True, decode=True), on_layer)
            digest = digest or aux.get("Digest", "")
    except (docker.errors.APIError, requests.exceptions.RequestException, KitError) as exc:
        for reference in tagged:  # leave no tag behind for a push that did not happen
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                client.images.remove(reference, noprune=True)
        reason = str(exc).strip().splitlines()[0][:300]
        if "connection refused" in reason or "no such host" in reason:
            reason = f"no registry answers at {registry} ({reason.rsplit(': ', 1)[-1]})"
        raise KitError(
            f"pushing {name.primary} failed: {reason}",
            "start a registry there (Debian: docker-registry) or pass --registry HOST:PORT",
        ) from None
    if not digest:
        raise KitError(f"the registry reported no digest for {name.primary}")
    return digest


def pull(client: docker.DockerClient, flavor: Flavor, registry: str, on_layer: LayerSink) -> str:
    """Pull one flavor, check it by digest against the registry, tag it as kit expects;
    return the image id."""
    name = remote_name(flavor, registry)
    try:
        expected = client.images.get_registry_data(name.primary).id
        _stream(client.api.pull(name.repository, name.tags[0], stream=True, decode=True), on_layer)
        image = client.images.get(name.primary)
    except docker.errors.NotFound:
        raise ImageNotFound(
            f"{name.primary} is not in the registry",
            f"push it from a host that has it: kit images push {flavor.value} --registry "
            f"{registry}",
        ) from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise KitError(
            f"pulling {name.primary} failed: {exc}", f"is a registry listening at {registry}?"
        ) from None
    digests = [d.split("@", 1)[1] for d in image.attrs.get("RepoDigests", []) if "@" in d]
    if expected not in digests:
        raise KitError(
            f"{name.primary} does not match the registry: pulled {digests or 'no digest'}, "
            f"the registry has {expected}",
            "pull again; if it persists the registry content changed",
        )
    image.tag(IMAGE_REPOSITORY, flavor.value)
    image.tag(IMAGE_REPOSITORY, f"{flavor.value}-{tf_package(flavor).split('==')[-1]}")
    return image.id


def compression_for(path: Path) -> str | None:
    name = path.name
    if name.endswith((".zst", ".zstd")):
        return "zstd"
    if name.endswith((".gz", ".tgz")):
        return "gzip"
    if name.endswith(".tar"):
        return None
    raise UsageError(f"{path}: unknown archive type", "name it .tar.zst, .tar.gz or .tar")


def save(
    client: docker.DockerClient, flavors: Sequence[Flavor], path: Path, on_bytes: ByteSink
) -> int:
    """All the flavors' images in one archive (shared layers stored once); returns its size."""
    return save_references(client, [image_tag(f) for f in flavors], path, on_bytes)


def save_references(
    client: docker.DockerClient, names: Sequence[str], path: Path, on_bytes: ByteSink
) -> int:
    """These images in one archive (shared layers stored once); returns its size."""
    kind = compression_for(path)
    for name in names:
        try:
            client.images.get(name)
        except docker.errors.NotFound:
            raise ImageNotFound(f"no {name} to save", "build or pull it first") from None
    # docker-py saves one image per call; the engine's endpoint takes several at once.
    response = client.api._get(
        client.api._url("/images/get"),
        params={"names": list(names)},
        stream=True,
    )
    client.api._raise_for_status(response)
    tmp = path.with_name(path.name + ".part")
    try:
        with _writer(tmp, kind) as out:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                on_bytes(len(chunk))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def load(client: docker.DockerClient, path: Path, on_bytes: ByteSink) -> list[str]:
    """Load an archive made by save; returns the image tags it held."""
    if stat_of(path, "archive") is None or not path.is_file():
        raise UsageError(f"no archive at {path}", "pass a file made by kit images save")
    kind = compression_for(path)

    def chunks() -> Iterator[bytes]:
        with _reader(path, kind) as stream:
            while chunk := stream.read(CHUNK):
                on_bytes(len(chunk))
                yield chunk

    hint = "make it again with `kit images save`, and copy it whole"
    loaded: list[str] = []
    try:
        for event in client.api.load_image(chunks()):
            if "error" in event:
                raise KitError(f"loading {path} failed: {_engine_said(event['error'])}", hint)
            stream = event.get("stream", "")
            if stream.startswith("Loaded image:"):
                loaded.append(stream.split(":", 1)[1].strip())
    except EOFError:  # gzip's word for a file cut short
        raise KitError(f"{path} is cut short: the archive ends before its end", hint) from None
    except (docker.errors.APIError, zstandard.ZstdError, OSError) as exc:
        raise KitError(f"loading {path} failed: {_engine_said(str(exc))}", hint) from None
    if not loaded:
        raise KitError(f"{path} held no tagged image", hint)
    return loaded


def _engine_said(text: str) -> str:
    """What the engine's error means, without its temporary paths."""
    if "docker-import-" in text and ("repositories" in text or "manifest.json" in text):
        return "it is not an image archive (no manifest.json inside)"
    if "unexpected EOF" in text:
        return "the archive is cut short"
    if "invalid tar header" in text:
        return "it is not an image archive (not a tar file inside)"
    return text.strip().splitlines()[0][:300] if text.strip() else "no reason given"


def _writer(path: Path, kind: str | None):
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(path.open("wb"))
    if kind == "gzip":
        return gzip.open(path, "wb", compresslevel=6)
    return path.open("wb")


def _reader(path: Path, kind: str | None):
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"))
    if kind == "gzip":
        return gzip.open(path, "rb")
    return path.open("rb")


def send(
    source: docker.DockerClient,
    target: docker.DockerClient,
    references: Sequence[str],
    on_bytes: ByteSink,
) -> None:
    """Stream images from one engine to another (``docker save | docker load`` without a file
    in between), then check the target holds the very same image ids."""
    wanted = {}
    for name in references:
        try:
            wanted[name] = source.images.get(name).id
        except docker.errors.NotFound:
            raise ImageNotFound(f"no {name} to send", "build or pull it first") from None
    try:
        response = source.api._get(
            source.api._url("/images/get"), params={"names": list(wanted)}, stream=True
        )
        source.api._raise_for_status(response)

        def chunks() -> Iterator[bytes]:
            for chunk in response.iter_content(CHUNK):
                on_bytes(len(chunk))
                yield chunk

        for event in target.api.load_image(chunks()):
            if "error" in event:
                raise KitError(f"sending {', '.join(wanted)} failed: {event['error']}")
        for name, image_id in wanted.items():
            got = target.images.get(name).id
            if got != image_id:
                raise KitError(
                    f"{name} arrived as {got[:19]}, not {image_id[:19]}",
                    "send it again; if it repeats, the engines disagree on the image format",
                )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise KitError(
            f"sending {', '.join(wanted)} failed: {exc}", "check both engines answer (`kit doctor`)"
        ) from None
