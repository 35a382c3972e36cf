"""podman as an engine: its Docker-compatible API, reached with the same SDK, so runs are made
exactly as for Docker. What differs is said here and applied by the Docker engine:

- podman's default ulimits (nofile, nproc) can exceed what the host itself allows a process;
  runc then cannot start the container ("error setting rlimit type 7: operation not
  permitted"). kit sets both to the host's own hard limits instead.
- where its socket is: rootful ``/run/podman/podman.sock``, rootless
  ``$XDG_RUNTIME_DIR/podman/podman.sock`` (``podman system service`` serves it).
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Mapping
from pathlib import Path

from kit.lazy import lazy_module

docker = lazy_module("docker")


ROOTFUL_SOCKET = "/run/podman/podman.sock"
MAX_LIMIT = 1 << 20  # no container needs more open files or processes than this


def podman_socket(environ: Mapping[str, str] | None = None, uid: int | None = None) -> str:
    """The podman API socket: $CONTAINER_HOST when it names a unix socket (podman's own
    variable), else this user's: rootful for root, the rootless one for others."""
    environ = os.environ if environ is None else environ
    if (given := environ.get("CONTAINER_HOST", "")).startswith("unix://"):
        return given
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return f"unix://{ROOTFUL_SOCKET}"
    runtime = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"unix://{Path(runtime) / 'podman' / 'podman.sock'}"


def is_podman(version: Mapping) -> bool:
    """Whether an engine's ``/version`` answer is podman's."""
    components = version.get("Components") or []
    return any("podman" in str(c.get("Name", "")).lower() for c in components)


def placement_problem(info: Mapping) -> str | None:
    """Why this podman cannot place kit's runs, from its libpod ``/info`` answer (None: it
    can). Rootless podman sets a container's cpuset only where the cpuset cgroup controller
    is delegated to the user (cgroup v2 with systemd); elsewhere it ignores the limit (it says
    "Resource limits are not supported and ignored on cgroups V1 rootless systems")."""
    host = info.get("host") or {}
    rootless = bool((host.get("security") or {}).get("rootless"))
    if rootless and "cpuset" not in (host.get("cgroupControllers") or []):
        version = host.get("cgroupVersion") or "?"
        return (
            f"rootless podman without the cpuset cgroup controller (cgroup {version}): it "
            "would ignore every run's cpuset, so no run could be pinned to its CPUs"
        )
    return None


def libpod_info(client) -> dict:
    """podman's own ``/info`` (the Docker-compatible one does not say rootless)."""
    response = client.api._get(client.api._url("/libpod/info"))
    client.api._raise_for_status(response)
    return response.json()


def host_ulimits() -> dict[str, int]:
    """nofile and nproc at this host's own hard limits (what a container may be given)."""
    out = {}
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(which)[1]
        out[name] = MAX_LIMIT if hard == resource.RLIM_INFINITY else min(hard, MAX_LIMIT)
    return out


# runc's words when a limit is above what it may set: "error setting rlimit type 7".
_RLIMIT_TYPES = {str(resource.RLIMIT_NOFILE): "nofile", str(resource.RLIMIT_NPROC): "nproc"}
MIN_LIMIT = 1024


def lowered(limits: dict[str, int], error: str) -> bool:
    """Lower the limit runc says it could not set to the next power of two below it, in
    place; False when the error is another one, or the limit is already at its floor."""
    match = re.search(r"error setting rlimit type (\d+)", error)
    name = _RLIMIT_TYPES.get(match.group(1)) if match else None
    if name is None or limits[name] <= MIN_LIMIT:
        return False
    limits[name] = max(MIN_LIMIT, 1 << (limits[name] - 1).bit_length() - 1)
    return True


def ulimit_kwargs(limits: Mapping[str, int]) -> dict:
    """``containers.create`` arguments setting those limits (soft = hard)."""
    return {"ulimits": [docker.types.Ulimit(name=k, soft=v, hard=v) for k, v in limits.items()]}


def describe(limits: Mapping[str, int]) -> str:
    return " ".join(f"--ulimit {k}={v}:{v}" for k, v in limits.items())
