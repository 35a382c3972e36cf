"""What the process really got, read from inside the container (never echoed from the request)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping

from . import PROVENANCE_PREFIX, WORKLOAD_VERSION
from .footprint import cpu_limit

_ENV_PREFIXES = ("KMP_", "OMP_", "TF_", "ONEDNN_", "DNNL_", "MKL", "KIT_")
# Which kit, session and run started a local run (kit.engines.orphans): who, not how it ran.
_RUN_IDENTITY = ("KIT_OWNER", "KIT_SESSION", "KIT_RUN")


def settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment that sets how the workload runs (threads, oneDNN, TensorFlow, kit's)."""
    return {k: v for k, v in sorted(environ.items())
            if k.startswith(_ENV_PREFIXES) and k not in _RUN_IDENTITY}  # fmt: skip


def _proc_status_field(name: str) -> str | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except OSError:
        pass
    return None


def numactl_show() -> str:
    """The memory policy in force for this process, as ``numactl --show`` prints it (kit
    parses it). The policy is inherited across fork/exec, so the child reports ours."""
    try:
        return subprocess.run(
            ["numactl", "--show"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"error: {exc}"


def onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415 -- heavy, optional

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def collect(tf, threads: dict[str, int], workload: str, argv: list[str]) -> dict:
    affinity = sorted(os.sched_getaffinity(0))
    return {
        "workload": workload,
        "workload_version": WORKLOAD_VERSION,
        "argv": argv,
        "tf_version": tf.__version__ if tf is not None else None,
        "onednn_enabled": onednn_enabled() if tf is not None else None,
        "python": platform.python_version(),
        "flavor": os.environ.get("KIT_FLAVOR"),
        "cpus_allowed_list": _proc_status_field("Cpus_allowed_list"),
        "mems_allowed_list": _proc_status_field("Mems_allowed_list"),
        "affinity": affinity,
        "cpu_count": os.cpu_count(),  # what the process sees of the host: a quota hides nothing
        "cpu_limit": cpu_limit(),
        "numactl_show": numactl_show(),
        "threads": threads,
        "env": settings(os.environ),
        "uid": os.getuid(),
    }


def emit(record: dict) -> None:
    print(PROVENANCE_PREFIX + json.dumps(record, sort_keys=True), flush=True)
