"""Per-CPU busy % of the host, sampled about once a second while a run executes (psutil), so
idle threads and work leaking outside a run's cpuset both show."""

from __future__ import annotations

import threading
import time

from kit.lazy import lazy_module
from kit.model.utilization import Utilization

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
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            now = psutil.cpu_times(percpu=True)
            self._samples.append(busy_percent(self._last, now))
            self._last = now
            self._times.append(round(time.monotonic() - self._start, 3))

    def result(self) -> Utilization:
        cpus = max((len(s) for s in self._samples), default=0)
        busy = tuple(tuple(s[c] if c < len(s) else 0.0 for s in self._samples) for c in range(cpus))
        return Utilization(tuple(self._times), busy)


def host_busy(seconds: float = 0.5) -> tuple[float, float]:
    """The host's CPUs' busy % and the hypervisor's steal % over ``seconds``, now."""
    times = psutil.cpu_times_percent(interval=seconds)
    return 100.0 - times.idle - getattr(times, "iowait", 0.0), getattr(times, "steal", 0.0)
