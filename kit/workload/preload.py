"""The allocator a run asks for, preloaded into the workload's own process.

kit's images carry Debian's jemalloc and tcmalloc. The workload re-executes itself once with
``LD_PRELOAD`` naming the library (so the numactl policy and cpuset it runs under carry over),
and the provenance line proves what was loaded by reading the process's memory maps.
"""

from __future__ import annotations

import glob
import os
import sys

ALLOCATORS = ("system", "jemalloc", "tcmalloc")
LIBRARIES = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"}
_SEARCH = ("/usr/lib/*-linux-gnu", "/usr/lib", "/usr/local/lib", "/usr/lib64")
_MARK = "KIT_ALLOCATOR_PRELOADED"


def library_path(allocator: str) -> str | None:
    name = LIBRARIES[allocator]
    for folder in _SEARCH:
        for path in sorted(glob.glob(os.path.join(folder, name))):
            return path
    return None


def mapped(maps_text: str) -> dict[str, str]:
    """Which of jemalloc and tcmalloc a process has mapped, with the library's path, from the
    text of its /proc/PID/maps."""
    found: dict[str, str] = {}
    for line in maps_text.splitlines():
        fields = line.split(maxsplit=5)
        path = fields[5].strip() if len(fields) == 6 else ""  # anonymous maps have no path
        base = os.path.basename(path)
        for allocator, library in LIBRARIES.items():
            if base.startswith(library.split(".so")[0] + ".so"):
                found.setdefault(allocator, path)
    return found


def mapped_now() -> dict[str, str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return mapped(maps.read())
    except OSError:
        return {}


def ensure(allocator: str) -> None:
    """Return once ``allocator`` is loaded in this process; re-execute with it preloaded
    otherwise. Exits 2 with one line when the image has no such library."""
    if allocator == "system" or allocator in mapped_now():
        return
    path = library_path(allocator)
    if path is None or os.environ.get(_MARK):
        why = "is not in this image" if path is None else "did not load through LD_PRELOAD"
        print(f"error: {LIBRARIES[allocator]} ({allocator}) {why}; rebuild the image with "
              "`kit images build`", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], preload_env(path))


def preload_env(path: str) -> dict[str, str]:
    """This process's environment with ``path`` first in LD_PRELOAD."""
    preload = " ".join(p for p in (path, os.environ.get("LD_PRELOAD", "")) if p)
    return {**os.environ, "LD_PRELOAD": preload, _MARK: "1"}


def record(requested: str) -> dict:
    """The provenance's allocator entry: what was asked and what the maps show."""
    loaded = mapped_now()
    return {
        "requested": requested,
        "loaded": sorted(loaded),
        "libraries": [loaded[name] for name in sorted(loaded)],
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }
