"""Runs whose kit is gone: a kit killed outright (SIGKILL: the OOM killer, a CI runner's time
limit) cannot remove the container, or end the process, it was running, which then keeps its
pinned CPUs busy under the next session. Each container kit starts is labelled with its owner
(this boot of this machine, kit's process id and its start time), and each process the local
engine starts carries it in its environment (KIT_OWNER); the next session on that engine finds
the runs whose owner no longer runs, says so, and removes them before its first run. A run
another machine's kit started, or whose kit still runs (``--allow-concurrent``), is left
alone."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from kit.cpus import format_cpu_list
from kit.engines.container import LABEL_MANAGED, LABEL_RUN, LABEL_SESSION
from kit.lazy import lazy_module

psutil = lazy_module("psutil")

LABEL_OWNER = "kit.owner"  # BOOT_ID/PID/START of the kit process that started the container
# A local run's process carries the same as its environment: its owner, session and run.
OWNER_ENV = {"KIT_OWNER": LABEL_OWNER, "KIT_SESSION": LABEL_SESSION, "KIT_RUN": LABEL_RUN}
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
        said.append(f"removed container {container.name} ({container.status}, CPUs {cpus}): "
                    f"{_whose(labels)}")  # fmt: skip
    return said


def _whose(labels: dict[str, str]) -> str:
    """The run an orphan was, and its kit that is gone."""
    return (f"run {labels.get(LABEL_RUN, '?')} of session {labels.get(LABEL_SESSION, '?')}, "
            f"whose kit (pid {labels[LABEL_OWNER].split('/')[1]}) is gone")  # fmt: skip


def owner_environment(session_id: str, run: int) -> dict[str, str]:
    """What the local engine adds to a run's environment, so that its process can be found as
    a container by its labels."""
    labels = {LABEL_OWNER: owner(), LABEL_SESSION: session_id, LABEL_RUN: str(run)}
    return {name: labels[label] for name, label in OWNER_ENV.items()}


def end_orphaned_processes(alive: Callable[[int, str], bool] = running) -> list[str]:
    """End the local engine's processes whose kit is gone (each run is a process group of its
    own: its leader's group is ended whole); a line about each run."""
    here, found = boot_id(), {}
    for proc in psutil.process_iter(["pid", "name", "environ", "cpu_affinity"]):
        env = proc.info["environ"] or {}  # None: another user's, or gone meanwhile
        labels = {label: env[name] for name, label in OWNER_ENV.items() if name in env}
        if labels and orphaned(labels, here, alive):
            found[proc.info["pid"]] = (proc.info, labels)
    said = []
    for pid, (info, labels) in found.items():
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group == pid:
                os.killpg(pid, signal.SIGKILL)  # the run's whole group
            elif group in found:
                continue  # ended with its run's group
            else:
                os.kill(pid, signal.SIGKILL)
            cpus = format_cpu_list(info["cpu_affinity"] or []) or "all"
            said.append(f"ended process {info['name']} (pid {pid}, CPUs {cpus}): {_whose(labels)}")
    return said
