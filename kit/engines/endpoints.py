"""Where Docker engines are: each ``--host`` value (a URL, ``NAME=URL``, or a Docker context's
name) becomes a labelled endpoint. Pure: nothing here connects; the label is what tables,
baselines (``IMAGE:PROFILE@LABEL``) and result records call the host."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from kit.errors import UsageError

SCHEMES = ("unix", "tcp", "ssh")
DEFAULT_SOCKET_PATH = "/var/run/docker.sock"
RESERVED = ("local",)  # the local engine's name
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_HINT = (
    "give unix:///path/docker.sock, tcp://HOST:PORT, ssh://USER@HOST, a Docker context's name, "
    "or NAME=URL"
)


@dataclass(frozen=True)
class Endpoint:
    """One Docker engine to measure on: a URL, or a Docker context that names one."""

    label: str
    url: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.context is None):
            raise ValueError("an endpoint is a URL or a context, not both or neither")

    @property
    def where(self) -> str:
        return self.url or f"context {self.context}"


def default_label(url: str) -> str:
    """A short name for a URL: the default socket is ``docker`` (as with no --host); another
    socket is named by its folder (``/run/kit2/docker.sock`` -> ``kit2``) or file; tcp is
    ``HOST:PORT``; ssh is ``HOST`` (``:PORT`` when given)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = PurePosixPath(parts.path or "/")
        if str(path) in (DEFAULT_SOCKET_PATH, "/run/docker.sock"):
            return "docker"
        return path.parent.name if path.name == "docker.sock" and path.parent.name else path.stem
    host = parts.hostname or "?"
    if parts.scheme == "tcp":
        return f"{host}:{parts.port}" if parts.port else host
    return f"{host}:{parts.port}" if parts.port else host


def _check_url(url: str, given: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"--host {given!r}: unknown scheme {parts.scheme!r}", _HINT)
    if parts.scheme == "unix" and not parts.path:
        raise UsageError(f"--host {given!r} names no socket", "write unix:///path/docker.sock")
    if parts.scheme in ("tcp", "ssh") and not parts.hostname:
        raise UsageError(f"--host {given!r} names no host", _HINT)
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number, or out of range
    except ValueError as exc:
        why = "is out of range (1-65535)" if "range" in str(exc) else "is not a number"
        raise UsageError(f"--host {given!r}: the port {why}", _HINT) from None


def parse_host(text: str) -> Endpoint:
    """``unix://...``, ``tcp://...``, ``ssh://...``, ``NAME=URL`` or a context name."""
    given = text.strip()
    if not given:
        raise UsageError("--host is empty", _HINT)
    name, sep, rest = given.partition("=")
    if sep and "://" not in name:
        if not _NAME.match(name):
            raise UsageError(
                f"--host {given!r}: {name!r} is not a usable name",
                "use letters, digits, '.', '_' and '-'",
            )
        target = parse_host(rest)
        return Endpoint(name, target.url, target.context)
    if "://" in given:
        _check_url(given, given)
        return Endpoint(default_label(given), url=given)
    if not _NAME.match(given):
        raise UsageError(f"--host {given!r} is neither a URL nor a context name", _HINT)
    return Endpoint(given, context=given)


def parse_hosts(texts: Sequence[str]) -> list[Endpoint]:
    """Every --host, each once, with labels that tell them apart."""
    endpoints = list(dict.fromkeys(parse_host(t) for t in texts))
    seen: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        if endpoint.label in RESERVED:
            raise UsageError(
                f"--host {endpoint.where}: {endpoint.label!r} names the local engine",
                f"name the host another way: NAME={endpoint.where}",
            )
        if endpoint.label in seen:
            raise UsageError(
                f"--host {seen[endpoint.label].where} and {endpoint.where} are both called "
                f"{endpoint.label!r}",
                f"name them apart: NAME={endpoint.where}",
            )
        seen[endpoint.label] = endpoint
    return endpoints
