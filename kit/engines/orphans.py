"""Containers whose kit is gone: a kit killed outright (SIGKILL: the OOM killer, a CI runner's
time limit) cannot remove the container it was running, which then keeps its pinned CPUs busy
under the next session. Each container kit starts is labelled with its owner (this boot of this
machine, kit's process id and its start time); the next session on that engine finds the
containers whose owner no longer runs, says so, and removes them before its first run. A
container another machine's kit started, or whose kit still runs (``--allow-concurrent``), is
left alone."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from kit.engines.container import LABEL_MANAGED, LABEL_RUN, LABEL_SESSION

LABEL_OWNER = "kit.owner"  # BOOT_ID/PID/START of the kit process that started the container
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown-boot"


def started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat's 22nd field), so
    that a pid the kernel gave to another process since is not taken for the same one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner() -> str:
    """This kit process, as a container's owner label names it."""
    return f"{boot_id()}/{os.getpid()}/{started(os.getpid())}"


def running(pid: int, start: str) -> bool:
    return started(pid) == start


def _owner(labels: dict[str, str], here: str) -> tuple[int, str] | None:
    """The pid and start time of the kit on this boot that started a container (None: another
    machine's kit, or one that did not label its owner)."""
    boot, pid, start = ([*labels.get(LABEL_OWNER, "").split("/"), "", ""])[:3]
    return (int(pid), start) if boot == here and pid.isdigit() else None


def orphaned(
    labels: dict[str, str], here: str, alive: Callable[[int, str], bool] = running
) -> bool:
    """A container whose owner ran on this boot of this machine and no longer runs."""
    found = _owner(labels, here)
    return found is not None and not alive(*found)


def held(labels: dict[str, str], here: str, alive: Callable[[int, str], bool] = running) -> bool:
    """A container a kit on this machine still runs: not left behind, whatever cleans up."""
    found = _owner(labels, here)
    return found is not None and alive(*found)


def remove_orphans(client, alive: Callable[[int, str], bool] = running) -> list[str]:
    """Remove the engine's orphaned kit containers; a line about each."""
    here, said = boot_id(), []
    for container in client.containers.list(all=True, filters={"label": LABEL_MANAGED}):
        labels = container.labels or {}
        if not orphaned(labels, here, alive):
            continue
        cpus = (container.attrs.get("HostConfig") or {}).get("CpusetCpus") or "all"
        with contextlib.suppress(Exception):  # gone meanwhile, or the engine away: said anyway
            container.remove(force=True)
        said.append(
            f"removed container {container.name} ({container.status}, CPUs {cpus}): run "
            f"{labels.get(LABEL_RUN, '?')} of session {labels.get(LABEL_SESSION, '?')}, whose "
            f"kit (pid {labels[LABEL_OWNER].split('/')[1]}) is gone"
        )
    return said
