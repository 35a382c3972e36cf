"""Docker inside the NUMA guest (tests/numa_guest.py): this host's own dockerd, containerd and
runc (with the libraries the guest's root lacks), and a light copy of kit's stock image to
import there, so that kit's Docker engine runs on a kernel with several nodes: cpusets with
cpuset.mems, numactl under Docker's seccomp profile with SYS_NICE.

The light image is the image's own root without TensorFlow and the packages only TensorFlow
needs (215 MB against 1.5 GB: a `docker import` under TCG takes ~50 s), with the image's
config and labels: the bandwidth workload runs in it as in the image itself. Measured here:
dockerd starts in ~13 s in the guest, a container runs in ~16 s.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

BINARIES = ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-init",
            "docker-proxy", "docker")  # fmt: skip
SITE = "opt/venv/lib/python3.11/site-packages"
KEPT_PACKAGES = ("numpy", "_distutils_hack", "distutils-precedence.pth")  # the workload's own
LEFT_OUT = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
            "var/lib/apt", "var/cache")  # fmt: skip
LIGHT_LABEL = "kit.test.light"  # says the image in the guest is the light copy

START = """set -e
mkdir -p /var/lib/docker /var/lib/containerd
mount -t tmpfs run /run; mount -t tmpfs docker /var/lib/docker
mount -t tmpfs containerd /var/lib/containerd; mount -t cgroup2 cgroup2 /sys/fs/cgroup
env PATH={at}/bin:$PATH LD_LIBRARY_PATH={at}/lib dockerd --iptables=false --ip6tables=false \\
    --ip-masq=false --bridge=none > /job/dockerd.log 2>&1 &
n=0
until {at}/bin/docker info > /dev/null 2>&1; do
    n=$((n + 1)); [ $n -lt 180 ] || {{ echo "guest: dockerd did not start"; exit 1; }}; sleep 1
done
{at}/bin/docker import {changes} {at}/image.tar {image} > /dev/null
echo "guest: dockerd up, {image} imported"
"""


def guest_docker(root: Path, image: str, at: str) -> Path:
    """The folder the guest mounts at ``at``: bin/ and lib/ (this host's Docker), image.tar
    (the light image from ``root``) and start.sh, which starts dockerd on tmpfs (no network
    bridge: kit's runs have none) and imports the image as ``image``. Cached beside ``root``."""
    folder = root.with_name(root.name.replace("root-", "docker-"))
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for old in root.parent.glob(folder.name.rpartition("-")[0] + "-*"):  # an earlier build's
        shutil.rmtree(old, ignore_errors=True)
    (folder / "bin").mkdir(parents=True)
    (folder / "lib").mkdir()
    for name in BINARIES:
        found = shutil.which(name)
        if found is None:
            raise RuntimeError(f"{name} is missing: make engine installs Docker")
        shutil.copy2(Path(found).resolve(), folder / "bin" / name)
    for library in _libraries(folder / "bin"):
        if not any((root / d / library.name).exists() for d in ("usr/lib/x86_64-linux-gnu", "lib")):
            shutil.copy2(library.resolve(), folder / "lib" / library.name)
    _light_tar(root, folder / "image.tar")
    changes = " ".join(f"--change {shlex.quote(c)}" for c in _config_changes(image))
    (folder / "start.sh").write_text(START.format(at=at, changes=changes, image=image))
    (folder / ".complete").touch()
    return folder


def _libraries(binaries: Path) -> set[Path]:
    found = set()
    for binary in binaries.iterdir():
        listed = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in listed.stdout.splitlines():
            if "=>" in line and "/" in line.split("=>")[1]:
                found.add(Path(line.split("=>")[1].split()[0]))
    return found


def _light_tar(root: Path, path: Path) -> None:
    def kept(rel: str) -> bool:
        if rel.startswith(SITE + "/"):
            return rel[len(SITE) + 1 :].startswith(KEPT_PACKAGES)
        return not any(rel == d or rel.startswith(d + "/") for d in LEFT_OUT)

    with tarfile.open(path, "w") as tar:
        folders = [root]
        while folders:
            for child in sorted(folders.pop().iterdir()):
                rel = str(child.relative_to(root))
                if rel.startswith(".") or not kept(rel):
                    continue
                tar.add(child, arcname=rel, recursive=False)
                if child.is_dir() and not child.is_symlink():
                    folders.append(child)


def _config_changes(image: str) -> list[str]:
    """The image's environment, user, folder and labels as `docker import --change` lines."""
    shown = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                           text=True, check=True)  # fmt: skip
    config = json.loads(shown.stdout)[0]["Config"]
    changes = [f"ENV {e.split('=', 1)[0]}={json.dumps(e.split('=', 1)[1])}" for e in config["Env"]]
    changes += [f"USER {config['User']}", f"WORKDIR {config['WorkingDir']}"]
    labels = {**(config.get("Labels") or {}), LIGHT_LABEL: "no TensorFlow"}
    changes += [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
    return changes
