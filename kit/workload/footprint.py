"""Where the run's memory and threads really went, read by the process itself from /proc.

Memory: ``/proc/self/numa_maps`` after the timed batches, pages per NUMA node, all of them and
the anonymous ones (heap, stack, anonymous mappings: the memory the process itself allocated, which
its memory policy placed; file pages may have been read in by another process, under another
policy). Threads: each thread's CPU time over the timed batches (its CPU-time clock, for each of
``/proc/self/task``), the process's involuntary context switches, each allowed CPU's busy time
(``/proc/stat``, the host's view: other work counts too; judged idle only over half a second or
more, as it counts 10-ms ticks), and the OpenMP team as the loaded OpenMP runtime says it.
Standard library only: this package is copied into every image.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import time

# A thread that ran at least this share of the timed batches' wall time was busy in them.
BUSY_THREAD = 0.05
# A CPU of the run's own busy less than this share of the timed batches sat idle (htop's view).
IDLE_CPU = 0.10
IDLE_WINDOW_S = 0.5  # /proc/stat's 10-ms ticks judge no CPU idle over less
OPENMP_LIBRARIES = ("libiomp5", "libgomp", "libomp")
_NODE = re.compile(r"\bN(\d+)=(\d+)")
_PAGE_KB = re.compile(r"\bkernelpagesize_kB=(\d+)")


def numa_maps_memory(text: str) -> dict:
    """KiB per node in a numa_maps text: every mapping's pages, and the anonymous ones."""
    total: dict[str, int] = {}
    anon: dict[str, int] = {}
    for line in text.splitlines():
        page = _PAGE_KB.search(line)
        kb = int(page.group(1)) if page else 4
        private = " anon=" in line or " heap" in line or " stack" in line
        for node, pages in _NODE.findall(line):
            total[node] = total.get(node, 0) + int(pages) * kb
            if private:
                anon[node] = anon.get(node, 0) + int(pages) * kb
    return {"node_kb": total, "anon_node_kb": anon}


def memory() -> dict | None:
    try:
        with open("/proc/self/numa_maps", encoding="ascii", errors="replace") as maps:
            return numa_maps_memory(maps.read())
    except OSError:  # a kernel without NUMA support has no numa_maps
        return None


def _thread_clock(tid: int) -> int:
    """The CPU-time clock of a thread of this process (the kernel's MAKE_THREAD_CPUCLOCK:
    CPUCLOCK_SCHED, per thread): nanoseconds, where /proc's stat counts 10-ms ticks."""
    return ((~tid) << 3) | 6


def _thread_seconds() -> dict[str, float]:
    """Each thread's CPU seconds so far."""
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            seconds[tid] = time.clock_gettime(_thread_clock(int(tid)))
        except OSError:  # the thread ended
            continue
    return seconds


def _cpu_ticks(cpus: list[int]) -> dict[int, tuple[int, int]]:
    """Busy and total ticks of each of ``cpus`` from /proc/stat."""
    wanted = {f"cpu{c}": c for c in cpus}
    found = {}
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *values = line.split()
            if name in wanted:
                ticks = [int(v) for v in values[:8]]
                idle = ticks[3] + ticks[4]  # idle + iowait
                found[wanted[name]] = (sum(ticks) - idle, sum(ticks))
    return found


def openmp_team() -> dict | None:
    """The OpenMP runtime the process mapped and its team size (omp_get_max_threads)."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    for path in sorted(paths):
        name = os.path.basename(path)
        if name.startswith(OPENMP_LIBRARIES) and ".so" in name:
            try:
                team = ctypes.CDLL(path).omp_get_max_threads()
            except (OSError, AttributeError):
                continue
            return {"runtime": name, "team": int(team)}
    return None


_CGROUP = "/sys/fs/cgroup"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_limit() -> dict | None:
    """The CFS quota the process's cgroup has, in CPUs (None: no quota), as Docker's --cpus and
    Kubernetes CPU limits set it: cgroup v2's cpu.max, or v1's cpu.cfs_quota_us/period_us."""
    text = _read(f"{_CGROUP}/cpu.max")
    if text is not None:
        quota, _, period = text.partition(" ")
        cpus = int(quota) / int(period) if quota.isdigit() and period.isdigit() else None
        return {"cgroup": "v2", "cpu_max": text, "quota_cpus": cpus}
    for folder in (f"{_CGROUP}/cpu", f"{_CGROUP}/cpu,cpuacct"):
        quota, period = _read(f"{folder}/cpu.cfs_quota_us"), _read(f"{folder}/cpu.cfs_period_us")
        if quota is not None and period is not None:
            limited = quota.lstrip("-").isdigit() and int(quota) > 0 and period.isdigit()
            cpus = int(quota) / int(period) if limited else None
            return {"cgroup": "v1", "cpu_max": f"{quota} {period}", "quota_cpus": cpus}
    return None


def throttling() -> dict | None:
    """CFS periods so far, those throttled, and the time throttled (cgroup cpu.stat)."""
    for path, unit in ((f"{_CGROUP}/cpu.stat", 1e-6), (f"{_CGROUP}/cpu/cpu.stat", 1e-9)):
        text = _read(path)
        if text is None:
            continue
        stat = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        spent = stat.get("throttled_usec", stat.get("throttled_time", "0"))
        return {
            "periods": int(stat.get("nr_periods", 0)),
            "throttled": int(stat.get("nr_throttled", 0)),
            "throttled_s": int(spent) * unit,
        }
    return None


class Census:
    """The threads and CPUs over a span of the run: ``start()`` before the timed batches,
    ``stop()`` after them."""

    def start(self) -> None:
        self.cpus = sorted(os.sched_getaffinity(0))
        self.threads = _thread_seconds()
        self.cpu = _cpu_ticks(self.cpus)
        self.switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        self.throttling = throttling()
        self.started = time.perf_counter()

    def stop(self) -> dict:
        """Where the threads and the memory went, read now (while they live): the footprint
        line's record, kept in ``recorded``."""
        self.recorded = {"threads": self._threads(), "memory": memory()}
        return self.recorded

    def _threads(self) -> dict:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        now = _thread_seconds()
        cpu_s = sorted((t - self.threads.get(tid, 0.0) for tid, t in now.items()), reverse=True)
        cpu = _cpu_ticks(self.cpus)
        busy = {
            str(c): round((b - self.cpu[c][0]) / max(t - self.cpu[c][1], 1), 3)
            for c, (b, t) in cpu.items()
            if c in self.cpu
        }
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - self.switches
        return {
            "seconds": round(seconds, 3),
            "threads": len(now),
            "busy_threads": sum(1 for s in cpu_s if s >= BUSY_THREAD * seconds),
            "thread_cpu_s": [round(s, 3) for s in cpu_s[:64]],
            "allowed_cpus": len(self.cpus),
            "cpu_busy": busy,
            "idle_cpus": [int(c) for c, share in busy.items() if share < IDLE_CPU]
            if seconds >= IDLE_WINDOW_S
            else [],
            "involuntary_switches_per_s": round(switches / seconds, 1),
            "openmp": openmp_team(),
            "throttling": _since(self.throttling, throttling()),
        }


def _since(before: dict | None, after: dict | None) -> dict | None:
    if before is None or after is None:
        return None
    spent = {k: after[k] - before[k] for k in after}
    spent["throttled_s"] = round(spent["throttled_s"], 3)
    return spent
