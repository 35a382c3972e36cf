"""A session as one self-contained file another host can check, import and replay.

A bundle (``.kit.tar.zst`` or ``.kit.tar.gz``) is a tar stream whose first member is
``manifest.json``: the bundle schema, the kit that wrote it, its session, and the sha256 and
size of every other member. Then:

- ``session/``: the session's folder as kit wrote it (``session.json`` with its plan and
  recipe, ``results.jsonl``, every run's record and log);
- ``system.json``: a system description per engine (MLPerf-style fields);
- ``images.json``: every image the runs used, by label: reference, id, registry digests;
- ``profiles.toml``: the cells' profiles as ``--profiles`` reads them;
- ``images.tar``: with ``--with-images``, the images themselves (one ``docker save``, shared
  layers once).

Reading checks the manifest before trusting anything: a bundle from a newer schema, a member
missing, changed, added or cut short is refused naming it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath

import zstandard

from kit import __version__
from kit.errors import UsageError
from kit.inputs import stat_of
from kit.model.results import RunResult
from kit.store.folder import load_session

BUNDLE_SCHEMA = 1
MANIFEST = "manifest.json"
SESSION = "session"
SYSTEM = "system.json"
IMAGES = "images.json"
IMAGES_TAR = "images.tar"
PROFILES = "profiles.toml"
CHUNK = 1 << 20
SUFFIXES = (".tar.zst", ".tar.gz")


def compression_of(path: Path) -> str:
    if path.name.endswith(".tar.zst"):
        return "zstd"
    if path.name.endswith(".tar.gz"):
        return "gzip"
    raise UsageError(f"{path}: a bundle is named .tar.zst or .tar.gz", "e.g. -o run.kit.tar.zst")


def system_description(host: Mapping, runs: Sequence[RunResult], engine: str) -> dict:
    """One machine as MLPerf's system description names its fields, plus what kit's numbers
    depend on (microcode, governor, ISA flags, TensorFlow and oneDNN, kit)."""
    mine = [r for r in runs if r.engine == engine] or list(runs)
    tf = sorted({v for r in mine if (v := r.tf_version)})
    onednn = sorted(
        {str(v) for r in mine if (v := (r.provenance or {}).get("onednn_enabled")) is not None}
    )
    return {
        "system_name": host.get("hostname"),
        "engine": engine,
        "number_of_nodes": 1,
        "host_processor_model_name": host.get("cpu_model"),
        "host_processors_per_node": host.get("sockets"),
        "host_processor_core_count": host.get("physical_cores"),
        "host_processor_thread_count": host.get("logical_cpus"),
        "host_numa_nodes": host.get("numa_nodes"),
        "host_memory_capacity_mb": host.get("memory_mb"),
        "host_processor_microcode": host.get("microcode"),
        "host_processor_isa": list(host.get("isa_flags") or []),
        "operating_system_kernel": host.get("kernel"),
        "cpu_frequency_governor": host.get("governor"),
        "accelerators_per_node": 0,
        "framework": ", ".join(f"TensorFlow {v}" for v in tf) or None,
        "onednn_enabled": ", ".join(onednn) or None,
        "images": sorted({f"{r.image}={(r.image_id or '?')[:19]}" for r in mine}),
        "kit_version": None,  # filled from the session
    }


def systems_of(meta: Mapping, runs: Sequence[RunResult]) -> dict[str, dict]:
    """Every engine's system description for a session (from its record and runs)."""
    hosts = meta.get("hosts") or {}
    if not isinstance(hosts, Mapping) or not hosts:
        hosts = {r.engine: r.host or {} for r in runs}
    out = {}
    for engine, host in hosts.items():
        record = system_description(host if isinstance(host, Mapping) else {}, runs, engine)
        record["kit_version"] = meta.get("kit_version")
        out[engine] = record
    return out


def images_of(runs: Sequence[RunResult], digests: Mapping[str, list[str]]) -> dict[str, dict]:
    """The images a session ran, by label: reference, id, the registry digests known for it."""
    out: dict[str, dict] = {}
    for r in runs:
        if r.image in out and out[r.image]["id"]:
            continue
        out[r.image] = {
            "reference": r.image_ref,
            "id": r.image_id,
            "repo_digests": sorted(digests.get(r.image_ref, [])),
        }
    return out


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    members: int


def write_bundle(
    out: Path,
    folder: Path,
    extra: Mapping[str, bytes],
    images_tar: Path | None,
    session_id: str,
) -> Written:
    """The bundle file: the manifest first (every member hashed before), then the members.
    Written beside ``out`` and renamed into place, so a failure leaves no half file."""
    files: list[tuple[str, Path | bytes]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
        files.append((f"{SESSION}/{path.relative_to(folder).as_posix()}", path))
    files += list(extra.items())
    if images_tar is not None:
        files.append((IMAGES_TAR, images_tar))
    members = {name: _digest(data) for name, data in files}
    manifest = {
        "kit_bundle": BUNDLE_SCHEMA,
        "kit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "session": session_id,
        "members": {name: {"sha256": h, "bytes": n} for name, (h, n) in members.items()},
    }
    tmp = out.with_name(out.name + ".part")
    try:
        with (
            _compressed_writer(tmp, compression_of(out)) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add(tar, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
            for name, data in files:
                _add(tar, name, data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Written(out, out.stat().st_size, len(files))


def _digest(data: Path | bytes) -> tuple[str, int]:
    h = hashlib.sha256()
    if isinstance(data, bytes):
        h.update(data)
        return h.hexdigest(), len(data)
    size = 0
    with data.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _add(tar: tarfile.TarFile, name: str, data: Path | bytes) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = int(datetime.now(UTC).timestamp())
    if isinstance(data, bytes):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return
    info.size = data.stat().st_size
    with data.open("rb") as f:
        tar.addfile(info, f)


@contextlib.contextmanager
def _compressed_writer(path: Path, kind: str) -> Iterator:
    with path.open("wb") as raw:
        if kind == "zstd":
            with zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(raw) as z:
                yield z
        else:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as g:
                yield g


@dataclass(frozen=True)
class Bundle:
    """A bundle checked against its manifest and unpacked in ``root`` (a temporary folder)."""

    source: Path
    root: Path
    manifest: Mapping

    @property
    def session_id(self) -> str:
        return str(self.manifest["session"])

    @property
    def folder(self) -> Path:
        return self.root / SESSION

    @property
    def images_tar(self) -> Path | None:
        path = self.root / IMAGES_TAR
        return path if path.is_file() else None

    def json(self, name: str) -> dict:
        return json.loads((self.root / name).read_text(encoding="utf-8"))

    @cached_property  # read once: a replay asks more than once
    def meta(self) -> dict:
        return self.json(f"{SESSION}/session.json")

    @cached_property  # read once: a replay asks more than once
    def runs(self) -> list[RunResult]:
        return load_session(self.folder)

    @cached_property  # read once: a replay asks more than once
    def systems(self) -> dict[str, dict]:
        return self.json(SYSTEM)

    @cached_property  # read once: a replay asks more than once
    def images(self) -> dict[str, dict]:
        return self.json(IMAGES)


def is_bundle(text: str) -> bool:
    return text.endswith(SUFFIXES)


@contextlib.contextmanager
def open_bundle(path: Path, scratch: Path | None = None) -> Iterator[Bundle]:
    """The bundle at ``path``, checked and unpacked; the unpacked copy is removed after."""
    if stat_of(path, "bundle") is None or not path.is_file():
        raise UsageError(f"no bundle at {path}", "pass a file made by `kit export`")
    kind = compression_of(path)
    root = Path(tempfile.mkdtemp(prefix="kit-bundle-", dir=scratch))
    try:
        manifest = _unpack(path, kind, root)
        yield Bundle(path, root, manifest)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unpack(path: Path, kind: str, root: Path) -> dict:
    hint = "export it again (`kit export`) and copy the whole file"
    manifest: dict | None = None
    seen: dict[str, tuple[str, int]] = {}
    try:
        with (
            _compressed_reader(path, kind) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for member in tar:
                if manifest is None:
                    manifest = _read_manifest(path, tar, member)
                    continue
                seen[member.name] = _extract(path, tar, member, manifest, root)
    except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as exc:
        raise UsageError(f"{path} is damaged or cut short ({_said(exc)})", hint) from None
    if manifest is None:
        raise UsageError(f"{path} is empty: not a kit bundle", hint)
    for name in manifest["members"]:
        if name not in seen:
            raise UsageError(f"{path} lacks its member {name}", hint)
    return manifest


def _said(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return text


def _read_manifest(path: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict:
    not_bundle = UsageError(
        f"{path} is not a kit bundle (it does not start with {MANIFEST})",
        "pass a file made by `kit export`",
    )
    if member.name != MANIFEST or not member.isfile() or member.size > 64 * 2**20:
        raise not_bundle
    try:
        manifest = json.loads(tar.extractfile(member).read().decode("utf-8"))  # type: ignore[union-attr]
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise not_bundle from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("kit_bundle"), int):
        raise not_bundle
    if manifest["kit_bundle"] > BUNDLE_SCHEMA:
        raise UsageError(
            f"{path} was written by kit {manifest.get('kit_version', '?')} (bundle schema "
            f"{manifest['kit_bundle']}); this kit {__version__} reads schema {BUNDLE_SCHEMA}",
            "upgrade kit to read it",
        )
    members = manifest.get("members")
    if not isinstance(members, dict) or not isinstance(manifest.get("session"), str):
        raise not_bundle
    return manifest


def _extract(
    path: Path, tar: tarfile.TarFile, member: tarfile.TarInfo, manifest: Mapping, root: Path
) -> tuple[str, int]:
    """One member into ``root``, hashed as it is written; refused unless the manifest lists it
    with this content."""
    hint = "export it again (`kit export`) and copy the whole file"
    expected = manifest["members"].get(member.name)
    name = PurePosixPath(member.name)
    if expected is None or not member.isfile() or name.is_absolute() or ".." in name.parts:
        raise UsageError(f"{path} holds {member.name}, which its manifest does not list", hint)
    target = root.joinpath(*name.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    source = tar.extractfile(member)
    assert source is not None
    with target.open("wb") as out:
        while chunk := source.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if h.hexdigest() != expected.get("sha256") or size != expected.get("bytes"):
        raise UsageError(
            f"{path}: member {member.name} does not match its manifest (sha256 differs): "
            "the bundle was changed or damaged",
            hint,
        )
    return h.hexdigest(), size


@contextlib.contextmanager
def _compressed_reader(path: Path, kind: str) -> Iterator:
    with path.open("rb") as raw:
        if kind == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(raw) as z:
                yield z
        else:
            with gzip.GzipFile(fileobj=raw, mode="rb") as g:
                yield g
