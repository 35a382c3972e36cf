"""Per-CPU busy % of the host, sampled about once a second while a run executes (psutil), so
idle threads and work leaking outside a run's cpuset both show; and the processes that used the
most CPU time through the run (what disturbed it, named). The run's own processes start after
the first reading and end before the last, so they are never among them."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from kit.lazy import lazy_module
from kit.model.utilization import Consumer, Utilization

psutil = lazy_module("psutil")


def busy_percent(before, after) -> list[float]:
    """Busy % per CPU between two psutil.cpu_times(percpu=True) readings."""
    out = []
    for b, a in zip(before, after, strict=False):
        total = sum(a) - sum(b)
        idle = (a.idle - b.idle) + (getattr(a, "iowait", 0.0) - getattr(b, "iowait", 0.0))
        out.append(round(100.0 * (1 - idle / total), 1) if total > 0 else 0.0)
    return out


class Sampler:
    """A background thread reading per-CPU times every ``interval`` seconds. Each sampler keeps
    its own previous reading (psutil.cpu_percent shares one across callers, and instances sample
    at the same time)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._times: list[float] = []
        self._samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kit-utilization", daemon=True)
        self._start = 0.0

    def __enter__(self) -> Sampler:
        self._start = time.monotonic()
        self._last = psutil.cpu_times(percpu=True)
        self._procs = cpu_by_process()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._consumers = consumers(self._procs, cpu_by_process())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            now = psutil.cpu_times(percpu=True)
            self._samples.append(busy_percent(self._last, now))
            self._last = now
            self._times.append(round(time.monotonic() - self._start, 3))

    def result(self) -> Utilization:
        cpus = max((len(s) for s in self._samples), default=0)
        busy = tuple(tuple(s[c] if c < len(s) else 0.0 for s in self._samples) for c in range(cpus))
        return Utilization(tuple(self._times), busy, getattr(self, "_consumers", ()))


Seen = dict[int, tuple[str, float, float]]  # pid -> name, CPU seconds so far, start time
CONTAINER_ID = re.compile(r"([0-9a-f]{64})")
LEAST_CPU_S = 0.5  # a process that used less through a run is not worth naming
MOST = 5


def cpu_by_process() -> Seen:
    """Every process's name, CPU seconds so far and start time, but kit's own."""
    mine = os.getpid()
    seen: Seen = {}
    for p in psutil.process_iter(["pid", "name", "cpu_times", "create_time"]):
        info = p.info
        if info["pid"] == mine or info["cpu_times"] is None:
            continue
        cpu = info["cpu_times"]
        seen[info["pid"]] = (info["name"] or "?", cpu.user + cpu.system, info["create_time"])
    return seen


def consumers(before: Seen, after: Seen) -> tuple[Consumer, ...]:
    """The processes that used the most CPU between two readings (one alive at both, or only
    at the second: all its time is since), most first."""
    used = []
    for pid, (name, cpu, started) in after.items():
        was = before.get(pid)
        spent = cpu - was[1] if was is not None and was[2] == started else cpu
        if spent >= LEAST_CPU_S:
            used.append(Consumer(name, pid, round(spent, 2), _container(pid)))
    return tuple(sorted(used, key=lambda c: -c.cpu_s)[:MOST])


def _container(pid: int) -> str | None:
    try:
        found = CONTAINER_ID.search(Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8"))
    except OSError:
        return None
    return found.group(1)[:12] if found else None


def host_busy(seconds: float = 0.5) -> tuple[float, float]:
    """The host's CPUs' busy % and the hypervisor's steal % over ``seconds``, now."""
    times = psutil.cpu_times_percent(interval=seconds)
    return 100.0 - times.idle - getattr(times, "iowait", 0.0), getattr(times, "steal", 0.0)
