"""The one translation from a RunSpec to Docker SDK arguments: every container knob is set here.

Pure: it never talks to Docker, so tests assert on exactly what a container will get.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kit import __version__
from kit.model.spec import RunSpec
from kit.model.workload import WORKLOAD_MOUNT

LABEL_MANAGED = "kit.managed"
LABEL_SESSION = "kit.session"
LABEL_RUN = "kit.run"
# TF, Keras and numactl write nothing but scratch files; the root filesystem stays read-only.
SCRATCH = {"/tmp": "rw,exec,nosuid,size=1g", "/home/kit": "rw,nosuid,size=64m"}


def container_labels(session_id: str, spec: RunSpec) -> dict[str, str]:
    return {
        LABEL_MANAGED: "1",
        LABEL_SESSION: session_id,
        LABEL_RUN: str(spec.index),
        "kit.instance": f"{spec.instance}/{spec.instances}",
        "kit.image": spec.image.label,
        "kit.profile": spec.profile.name,
        "kit.version": __version__,
    }


def container_kwargs(
    spec: RunSpec, session_id: str, *, grant_sys_nice: bool = True
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (argv lists, never a shell string).

    ``grant_sys_nice=False`` withholds the capability a memory policy needs, as an engine that
    refuses capabilities would: the run must then be reported INVALID, never run unbound."""
    kwargs: dict[str, Any] = {
        "image": spec.image.reference,
        "command": list(spec.command()),
        "environment": dict(spec.environment()),
        "cpuset_cpus": spec.cpu_list,
        "labels": container_labels(session_id, spec),
        # Least privilege: nothing but SYS_NICE, and that only when numactl must set a memory
        # policy (Docker's seccomp profile allows set_mempolicy/mbind only with it).
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": dict(SCRATCH),
    }
    if spec.limits.memory is not None:
        kwargs["mem_limit"] = spec.limits.memory
        kwargs["memswap_limit"] = spec.limits.memory  # no swap: a limit hit is an OOM, not a crawl
    if spec.limits.pids is not None:
        kwargs["pids_limit"] = spec.limits.pids
    if spec.limits.cpu_quota is not None:  # docker run --cpus: a CFS quota of that many CPUs
        kwargs["nano_cpus"] = round(spec.limits.cpu_quota * 1e9)
    if spec.mems is not None:
        kwargs["cpuset_mems"] = spec.mems_list
    if spec.profile.numa.needs_sys_nice and grant_sys_nice:
        kwargs["cap_add"] = ["SYS_NICE"]
    volumes = {}
    if spec.workload.workload_dir is not None:
        volumes[str(spec.workload.workload_dir.resolve())] = {"bind": WORKLOAD_MOUNT, "mode": "ro"}
    if spec.workload.model_file is not None:  # the user's model, read-only
        volumes[str(spec.workload.model_file.resolve())] = {
            "bind": spec.workload.model_path,
            "mode": "ro",
        }
    if volumes:
        kwargs["volumes"] = volumes
    return kwargs


def probe_kwargs(image: str, source: str) -> dict[str, Any]:
    """A short container that prints the engine host's facts (``kit.probe_script``'s text run
    by the image's python): unprivileged, offline, read-only, labelled like every run."""
    return {
        "image": image,
        "command": ["python", "-c", source],
        "labels": {LABEL_MANAGED: "1", "kit.probe": "1", "kit.version": __version__},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "network_mode": "none",
        "read_only": True,
    }


_FLAGS = {  # docker-py keyword -> the docker CLI's flag, for the values that are one string
    "cpuset_cpus": "--cpuset-cpus",
    "cpuset_mems": "--cpuset-mems",
    "network_mode": "--network",
    "mem_limit": "--memory",
    "memswap_limit": "--memory-swap",
    "pids_limit": "--pids-limit",
}


def docker_run_argv(
    kwargs: dict[str, Any], cli: str = "docker", ulimits: Mapping[str, int] | None = None
) -> list[str]:
    """The plain ``docker run`` command that starts the same container as ``kwargs`` (from
    ``container_kwargs``), so anyone can rerun one cell by hand; ``cli`` podman with the
    ``ulimits`` kit gives podman's containers."""
    argv = [cli, "run", "--rm"]
    argv += [f"--ulimit={k}={v}:{v}" for k, v in (ulimits or {}).items()]
    for key, flag in _FLAGS.items():
        if kwargs.get(key) is not None:
            argv += [flag, str(kwargs[key])]
    if kwargs.get("nano_cpus") is not None:
        argv += ["--cpus", f"{kwargs['nano_cpus'] / 1e9:g}"]
    argv += [f"--cap-drop={c}" for c in kwargs.get("cap_drop", ())]
    argv += [f"--cap-add={c}" for c in kwargs.get("cap_add", ())]
    argv += [f"--security-opt={o}" for o in kwargs.get("security_opt", ())]
    if kwargs.get("read_only"):
        argv.append("--read-only")
    argv += [f"--tmpfs={path}:{opts}" for path, opts in kwargs.get("tmpfs", {}).items()]
    for source, bind in (kwargs.get("volumes") or {}).items():
        argv += ["-v", f"{source}:{bind['bind']}:{bind['mode']}"]
    argv += [f"--label={k}={v}" for k, v in kwargs.get("labels", {}).items()]
    argv += [f"--env={k}={v}" for k, v in kwargs.get("environment", {}).items()]
    return [*argv, kwargs["image"], *kwargs["command"]]


def docker_run_line(
    spec: RunSpec, session_id: str, cli: str = "docker", ulimits: Mapping[str, int] | None = None
) -> str:
    """``docker_run_argv`` for one run, quoted for a POSIX shell."""
    return shlex.join(docker_run_argv(container_kwargs(spec, session_id), cli, ulimits))


def lifetime(started: str | None, finished: str | None) -> float | None:
    """Seconds between Docker's RFC 3339 StartedAt and FinishedAt (nanoseconds cut to micro)."""

    def parse(text: str | None) -> datetime | None:
        if not text or text.startswith("0001-"):
            return None
        text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None

    start, end = parse(started), parse(finished)
    return (end - start).total_seconds() if start and end else None
