"""How long a new host takes to get ready to measure: the flavors' images through a registry
(pull), through an archive (save here, load there), streamed from this host's engine (what
`kit compare --host` does), or built there from scratch.

Each way starts from an empty Docker engine (a fresh dockerd with its own data-root, started
here and removed after), with a registry on loopback (Debian's docker-registry) pushed to
once beforehand. Prints seconds per way, and the archive's size.

    .venv/bin/python benchmarks/new_host.py [--flavor stock --flavor intel] [--skip build]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from kit.images.distribution import send
from kit.model.flavors import Flavor, image_tag
from tests.engines import start_dockerd, start_registry

WAYS = ("pull", "archive", "send", "build")


def kit(*args: str, docker_host: str | None = None) -> float:
    """Run the kit CLI (against ``docker_host`` if given); returns its wall time."""
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kit", *args], check=True, env=env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavor", action="append", default=None)
    parser.add_argument("--skip", action="append", default=[], choices=WAYS)
    args = parser.parse_args()
    flavors = args.flavor or ["stock", "intel"]
    tags = [image_tag(Flavor(f)) for f in flavors]
    here = docker.from_env(timeout=1800)
    ids = {tag: here.images.get(tag).id for tag in tags}
    figures: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="kit-newhost-") as tmp:
        tmpdir = Path(tmp)
        registry, address = start_registry(tmpdir / "registry")
        try:
            push_s = kit("images", "push", *flavors, "--registry", address)
            figures.append(("push (once, on the build host)", push_s, address))
            archive = tmpdir / "kit-images.tar.zst"
            save_s = kit("images", "save", *flavors, "-o", str(archive))
            size = f"{archive.stat().st_size / 2**30:.2f} GiB zstd"
            figures.append(("save (once, on the build host)", save_s, size))
            for way in (w for w in WAYS if w not in args.skip):
                fresh = start_dockerd("kit-newhost", 253)
                try:
                    if way == "pull":
                        seconds = kit(
                            "images", "pull", *flavors, "--registry", address,
                            docker_host=fresh.socket_url,
                        )  # fmt: skip
                        note = "digest checked"
                    elif way == "archive":
                        seconds = kit("images", "load", str(archive), docker_host=fresh.socket_url)
                        note = f"load of the {size} archive"
                    elif way == "send":
                        started = time.perf_counter()
                        send(here, fresh.client(), tags, lambda n: None)
                        seconds = time.perf_counter() - started
                        note = "docker save | docker load between engines, ids checked"
                    else:
                        # The fresh engine's bridge has no NAT (it leaves this host's iptables
                        # alone), so the build's steps use the host's network.
                        seconds = kit(
                            "images", "build", *flavors, "--network", "host",
                            docker_host=fresh.socket_url,
                        )  # fmt: skip
                        note = "local base (mmdebstrap) + pip from PyPI, no layer cache"
                    got = {tag: fresh.client().images.get(tag).id for tag in tags}
                    if way != "build" and got != ids:
                        note += " -- IDS DIFFER"
                    figures.append((way, seconds, note))
                finally:
                    fresh.remove()
                print(f"{way}: {seconds:.1f} s ({note})", flush=True)
        finally:
            registry.terminate()
            registry.wait(30)
    print(f"\nnew host ready with {', '.join(flavors)} (2 vCPUs, registry on loopback):")
    for way, seconds, note in figures:
        print(f"  {way:32} {seconds:7.1f} s  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
