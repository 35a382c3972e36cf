"""Reaching a Docker engine: an endpoint's URL and TLS settings (a URL, a Docker context, or
DOCKER_HOST) and a client that answers, or EngineUnavailable with the fix."""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import hashlib
import json
import os
from pathlib import Path

from kit.engines.endpoints import Endpoint
from kit.errors import EngineUnavailable, UsageError
from kit.lazy import lazy_module

docker = lazy_module("docker")
requests = lazy_module("requests")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def resolve(endpoint: Endpoint) -> tuple[str, dict]:
    """The endpoint's URL and the client's TLS settings (a context's, or DOCKER_TLS_VERIFY and
    DOCKER_CERT_PATH for a tcp:// URL, as the docker CLI reads them)."""
    if endpoint.context is not None:
        found = _context(endpoint.context)
        if found is None:
            raise UsageError(
                f"no Docker context named {endpoint.context!r}",
                "list them with `docker context ls`, or give the engine's URL "
                "(unix://, tcp://, ssh://)",
            )
        return found
    assert endpoint.url is not None
    if endpoint.url.startswith("tcp://"):
        kwargs = docker.utils.kwargs_from_env(
            environment={**os.environ, "DOCKER_HOST": endpoint.url}
        )
        return endpoint.url, {k: v for k, v in kwargs.items() if k == "tls"}
    return endpoint.url, {}


def _context(name: str) -> tuple[str, dict] | None:
    """A Docker CLI context's URL and TLS settings. The SDK finds the context store only beside
    an existing config.json, which `docker context create` does not write; then the CLI's
    store ($DOCKER_CONFIG or ~/.docker, contexts/meta/<sha256 of the name>) is read here."""
    context = docker.context.ContextAPI.get_context(name)
    if context is not None and context.Host:
        return context.Host, ({"tls": context.TLSConfig} if context.TLSConfig else {})
    store = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((store / "meta" / digest / "meta.json").read_text())
        docker_endpoint = meta["Endpoints"]["docker"]
        host = docker_endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    certs = store / "tls" / digest / "docker"
    if not certs.is_dir():
        return host, {}
    cert = (str(certs / "cert.pem"), str(certs / "key.pem"))
    ca = certs / "ca.pem"
    return host, {
        "tls": docker.tls.TLSConfig(
            client_cert=cert if (certs / "cert.pem").is_file() else None,
            ca_cert=str(ca) if ca.is_file() else None,
            verify=not docker_endpoint.get("SkipTLSVerify", False),
        )
    }


def connect(timeout: int = 60, endpoint: Endpoint | None = None) -> docker.DockerClient:
    """A client for the endpoint (default: DOCKER_HOST, else the default socket), answering;
    EngineUnavailable with the fix."""
    where = os.environ.get("DOCKER_HOST", DEFAULT_SOCKET) if endpoint is None else endpoint.where
    over_ssh = where.startswith("ssh://")
    try:
        if endpoint is None:
            client = docker.from_env(timeout=timeout)
        else:
            url, tls = resolve(endpoint)
            where = f"{endpoint.label} ({url})"
            # ssh:// goes through the system's ssh client, so ~/.ssh/config and agents apply.
            over_ssh = url.startswith("ssh://")
            ssh = {"use_ssh_client": True} if over_ssh else {}
            client = docker.DockerClient(base_url=url, timeout=timeout, **tls, **ssh)
        if over_ssh:  # before the ping: a client that fails it is closed at exit as well
            _close_at_exit(client)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        if over_ssh:  # a client that failed while being made leaves its pool behind
            _close_at_exit(None)
        raise EngineUnavailable(
            f"no Docker engine answers at {where}: {first_line(exc)}",
            "start one with `make engine` (root on Debian/Ubuntu), or check --host/DOCKER_HOST",
        ) from None
    return client


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# Held, not weakly: a client left in a reference cycle would otherwise leave the set before exit
# while its connection pool, and the pool's finalizer, live on.
_SSH_CLIENTS: list[docker.DockerClient] = []


@functools.cache
def _register_once() -> None:
    atexit.register(close_ssh_clients)


def _close_at_exit(client: docker.DockerClient | None) -> None:
    """An ssh:// client is closed before the interpreter's own finalizers run: by then its ssh
    process may be gone, and closing its pipe raises a BrokenPipeError traceback at exit.
    Registered with the first client, after its first request (the API version), so this runs
    before urllib3's finalizers (atexit runs last-registered first)."""
    _register_once()
    if client is not None:
        _SSH_CLIENTS.append(client)


def close_ssh_clients() -> None:
    """Close every ssh:// client kit opened (at exit, or before its ssh peer goes away)."""
    for client in list(_SSH_CLIENTS):
        with contextlib.suppress(OSError, docker.errors.DockerException):
            client.close()
    _SSH_CLIENTS.clear()
    # and the connection pools of clients that failed while being made (no client to close):
    # closed here, a dead ssh peer's broken pipe is ours to ignore, not a traceback at exit
    for pool in [
        o for o in gc.get_objects() if isinstance(o, docker.transport.sshconn.SSHConnectionPool)
    ]:
        with contextlib.suppress(OSError, ValueError):
            pool.close()
