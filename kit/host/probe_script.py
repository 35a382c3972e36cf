"""Reads what a host is -- CPU topology files, CPU model and flags, memory, kernel, governor, the
kernel's boot id -- and prints it as JSON. The standard library only: kit runs this file's text
with ``python3 -c`` inside an image on every engine it measures on (so the facts are the engine
host's, not the caller's), and calls ``collect`` in-process for this host. Parsing is kit's
(``kit.host.facts``), not this file's."""

import glob
import json
import os
import re

SYSFS = "/sys/devices/system"
PROBE_VERSION = 1


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _first_block(text):
    return (text or "").split("\n\n", 1)[0]


def sysfs_files(root=SYSFS):
    """The topology files, keyed by their path below ``root``."""
    wanted = ["cpu/online"]
    for path in glob.glob(root + "/cpu/cpu*"):
        if re.search(r"/cpu\d+$", path):
            name = os.path.basename(path)
            wanted += [f"cpu/{name}/topology/{leaf}" for leaf in ("core_id", "physical_package_id")]
    for path in glob.glob(root + "/node/node*"):
        if re.search(r"/node\d+$", path):
            name = os.path.basename(path)
            wanted += [f"node/{name}/{leaf}" for leaf in ("cpulist", "meminfo", "distance")]
    found = {}
    for key in wanted:
        text = _read(root + "/" + key)
        if text is not None:
            found[key] = text
    return found


def collect():
    return {
        "probe": PROBE_VERSION,
        "sysfs": sysfs_files(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpuinfo": _first_block(_read("/proc/cpuinfo")),
        "meminfo": _read("/proc/meminfo") or "",
        "governor": (_read(SYSFS + "/cpu/cpu0/cpufreq/scaling_governor") or "").strip(),
        "kernel": os.uname().release,
        "boot_id": (_read("/proc/sys/kernel/random/boot_id") or "").strip(),
        # The system state that moves numbers: turbo, SMT, transparent huge pages, load.
        "boost": (_read(SYSFS + "/cpu/cpufreq/boost") or "").strip(),
        "no_turbo": (_read(SYSFS + "/cpu/intel_pstate/no_turbo") or "").strip(),
        "smt": (_read(SYSFS + "/cpu/smt/control") or "").strip(),
        "thp": (_read("/sys/kernel/mm/transparent_hugepage/enabled") or "").strip(),
        "loadavg": (_read("/proc/loadavg") or "").strip(),
    }


if __name__ == "__main__":
    print("kit-probe: " + json.dumps(collect()))
