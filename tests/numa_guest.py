"""A real multi-node NUMA machine on this one: a QEMU guest (TCG: nested KVM does not work on
these hosts) with Debian's kernel, a busybox initramfs, and kit's stock image as its root file
system (virtio-9p, a copy of `docker export`). This repository and the Python that runs kit
are shared at the same paths, so kit runs inside the guest as on any host: its own topology,
its local engine on the image's TensorFlow environment (adopted), numactl on a kernel with
several nodes. A boot runs one script and powers off; what it writes lands in a shared job
folder on this host.

Shapes (``SHAPES``): the seed's 2 sockets / 2 nodes at distance 21, and today's 2 sockets whose
memory has a third, CPU-less node (CXL memory, or HBM in flat mode). Everything emulated runs
~100x slower than here: keep TensorFlow out, use the bandwidth workload.

By hand::

    python -m tests.numa_guest seed 'numactl -H'
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.guest_docker import guest_docker

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KIT_GUEST_CACHE", "/var/cache/kit-test/numa-guest"))
KERNEL_PACKAGE = "linux-image-6.1.0-*-amd64-unsigned"
# Loaded in this order: the kernel has virtio and 9p as modules.
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay")  # fmt: skip
ROOT_IMAGE = "kit/tensorflow:stock"
DOCKER_AT = "/opt/guest-docker"  # where the guest sees this host's Docker and the light image


@dataclass(frozen=True)
class Shape:
    """A guest machine: its CPUs per node (empty: a memory-only node), memory per node (MB),
    sockets, and the distances between nodes."""

    name: str
    cpus: tuple[tuple[int, ...], ...]
    memory_mb: tuple[int, ...]
    sockets: int
    distances: tuple[tuple[int, int, int], ...]

    def argv(self) -> list[str]:
        count = sum(len(c) for c in self.cpus)
        smp = f"{count},sockets={self.sockets},cores={count // self.sockets},threads=1"
        argv = ["-m", f"{sum(self.memory_mb)}M", "-smp", smp]
        for node, (cpus, mb) in enumerate(zip(self.cpus, self.memory_mb, strict=True)):
            argv += ["-object", f"memory-backend-ram,size={mb}M,id=m{node}"]
            spec = f"node,nodeid={node},memdev=m{node}"
            spec += "".join(f",cpus={c}" for c in cpus)
            argv += ["-numa", spec]
        for src, dst, val in self.distances:
            argv += ["-numa", f"dist,src={src},dst={dst},val={val}"]
        return argv


SHAPES = {
    # The experiment's machine in small: 2 sockets, a node each, remote memory at distance 21.
    "seed": Shape("seed", ((0,), (1,)), (1536, 1536), 2, ((0, 1, 21),)),
    # Today's: the same 2 sockets with a third node of memory and no CPUs (CXL, HBM flat mode).
    "cxl": Shape(
        "cxl", ((0,), (1,), ()), (1536, 1536, 1024), 2, ((0, 1, 21), (0, 2, 30), (1, 2, 30))
    ),
}


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def kernel() -> tuple[Path, Path]:
    """Debian's kernel and its modules folder, unpacked from the package (cached)."""
    folder = CACHE / "kernel"
    found = sorted(folder.glob("boot/vmlinuz-*"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        names = _run(["apt-cache", "pkgnames", "linux-image-6.1.0-"]).stdout.split()
        wanted = sorted(n for n in names if n.endswith("-amd64-unsigned") and "cloud" not in n
                        and "-rt-" not in n)  # fmt: skip
        if not wanted:
            raise RuntimeError(f"no {KERNEL_PACKAGE} package known to apt: run apt-get update")
        _run(["apt-get", "download", wanted[-1]], cwd=folder)
        (deb,) = folder.glob("*.deb")
        _run(["dpkg-deb", "-x", str(deb), str(folder)])
        deb.unlink()
        found = sorted(folder.glob("boot/vmlinuz-*"))
    vmlinuz = found[-1]
    version = vmlinuz.name.removeprefix("vmlinuz-")
    return vmlinuz, folder / "lib" / "modules" / version


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m.ko || echo "guest: insmod $m failed"; done
# Nothing changes the shares on this side while the guest runs, so the guest caches what it
# reads of them (every Python start reads thousands of files; uncached, each is a round trip
# through emulated virtio). The job folder, which this side reads afterwards, is not cached.
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o,cache=loose root /newroot
mount -t proc proc /newroot/proc; mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev; mount -t tmpfs tmp /newroot/tmp
# the shares after /tmp's tmpfs: a checkout under /tmp stays visible
for share in {shares}; do
    tag=${{share%%=*}}; path=${{share#*=}}; cache=loose; [ $tag = job ] && cache=none
    mkdir -p /newroot$path && mount -t 9p -o $o,cache=$cache $tag /newroot$path
done
chroot /newroot /bin/sh /job/run.sh > /newroot/job/out.log 2>&1
echo "guest: exit $?" >> /newroot/job/out.log
sync; poweroff -f
"""


def _cpio_newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A newc cpio archive of ``files`` (path -> (mode, data)): the initramfs format."""
    out = io.BytesIO()
    for ino, (path, (mode, data)) in enumerate([*files.items(), ("TRAILER!!!", (0, b""))], 1):
        name = path.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))  # fmt: skip
        out.write(header.encode() + name)
        out.write(b"\0" * (-(110 + len(name)) % 4) + data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def initramfs(modules: Path, shares: dict[str, str], job: Path) -> Path:
    """busybox, the 9p modules and an init that mounts the shares and runs /job/run.sh; written
    in the job's folder (each boot has its own shares)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is missing: apt-get install busybox-static")
    files: dict[str, tuple[int, bytes]] = {}
    for folder in ("bin", "proc", "sys", "dev", "newroot", "lib", "lib/modules"):
        files[folder] = (0o40755, b"")
    files["bin/busybox"] = (0o100755, Path(busybox).read_bytes())
    for name in MODULES:
        (found,) = modules.rglob(f"{name}.ko")
        files[f"lib/modules/{name}.ko"] = (0o100644, found.read_bytes())
    listed = " ".join(f"{tag}={path}" for tag, path in shares.items())
    files["init"] = (0o100755, INIT.format(modules=" ".join(MODULES), shares=listed).encode())
    path = job / "initramfs.gz"
    path.write_bytes(gzip.compress(_cpio_newc(files), compresslevel=1))
    return path


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def root_fs(image: str = ROOT_IMAGE) -> Path:
    """The image's file system, exported into a folder once per image id (the folder of the
    tag's earlier id removed)."""
    import docker

    client = docker.from_env()
    image_id = client.images.get(image).id.split(":")[-1][:12]
    tag = image.rpartition(":")[2]
    folder = CACHE / f"root-{tag}-{image_id}"
    if (folder / ".complete").exists():
        return folder
    for old in CACHE.glob(f"root-{tag}-*"):  # an earlier build's: 1.5 GB each, never used again
        shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True)
    container = client.containers.create(image, labels={"kit.test": "numa-guest"})
    try:
        stream = io.BufferedReader(_Chunks(container.export()), buffer_size=1 << 20)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(folder, filter="fully_trusted")
    finally:
        container.remove(force=True)
    (folder / ".complete").touch()
    return folder


def image_root(image: str) -> str:
    """Where the guest sees another image's root (``boot(images=...)``): /opt/kit-TAG."""
    return f"/opt/kit-{image.rpartition(':')[2]}"


class _Chunks(io.RawIOBase):
    """An iterator of byte chunks as a readable stream."""

    def __init__(self, chunks) -> None:
        self.chunks, self.left = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.left:
            self.left = next(self.chunks, b"")
            if not self.left:
                return 0
        n = min(len(buffer), len(self.left))
        buffer[:n], self.left = self.left[:n], self.left[n:]
        return n


def shared_paths() -> dict[str, str]:
    """Folders of this host the guest mounts at the same paths: this repository (with its
    .venv) and the Python installation the .venv runs on."""
    return {"repo": str(REPO), "python": sys.base_prefix}


def boot(shape: Shape, script: str, job: Path, timeout: float = 900.0, *,
         docker: bool = False, images: tuple[str, ...] = ()) -> str:  # fmt: skip
    """Boot the guest, run ``script`` (sh) in its root, power off; its output, from the job
    folder (the script sees it as /job). With ``docker``, the guest also gets this host's
    Docker at DOCKER_AT, and ``sh $DOCKER_AT/start.sh`` starts it there (guest_docker);
    ``images``' roots are at ``image_root(image)``, for `kit envs adopt`."""
    with _cache_lock():  # guests booted at once share the cache: one fills it
        vmlinuz, modules = kernel()
        root = root_fs()
        mounts = {t: (Path(p), p) for t, p in shared_paths().items()} | {"job": (job, "/job")}
        if docker:
            mounts["docker"] = (guest_docker(root, ROOT_IMAGE, DOCKER_AT), DOCKER_AT)
        for n, image in enumerate(images):
            mounts[f"image{n}"] = (root_fs(image), image_root(image))
    job.mkdir(parents=True, exist_ok=True)
    (job / "run.sh").write_text(script)
    (job / "out.log").unlink(missing_ok=True)
    shares = {tag: guest for tag, (_, guest) in mounts.items()}
    argv = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "Haswell-v4",
            *shape.argv(), "-kernel", str(vmlinuz), "-initrd", str(initramfs(modules, shares, job)),
            "-append", "console=ttyS0 quiet panic=-1", "-nographic", "-no-reboot",
            "-nodefaults", "-serial", "stdio", "-net", "none"]  # fmt: skip
    hosts = {"root": root, **{tag: host for tag, (host, _) in mounts.items()}}
    for n, (tag, path) in enumerate(hosts.items()):
        argv += ["-fsdev", f"local,id=fs{n},path={path},security_model=none",
                 "-device", f"virtio-9p-pci,fsdev=fs{n},mount_tag={tag}"]  # fmt: skip
    console = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    log = job / "out.log"
    if not log.exists():
        raise RuntimeError(f"the guest ran nothing; its console ended: {console.stdout[-2000:]}")
    return log.read_text()


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("shape", choices=sorted(SHAPES))
    args.add_argument("script", help="sh commands to run in the guest")
    args.add_argument("--job", type=Path, default=CACHE / "job")
    args.add_argument("--docker", action="store_true", help=f"Docker at {DOCKER_AT}")
    args.add_argument("--image", action="append", default=[], help="its root at /opt/kit-TAG")
    given = args.parse_args()
    print(boot(SHAPES[given.shape], given.script, given.job, docker=given.docker,
               images=tuple(given.image)))  # fmt: skip


if __name__ == "__main__":
    main()
