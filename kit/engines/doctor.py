"""``kit doctor``: is this host ready, and what may kit's containers do? Each check is a line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from kit.engines.container import SCRATCH
from kit.engines.podman import describe
from kit.errors import KitError
from kit.host.facts import describe_system, local_facts
from kit.lazy import lazy_module
from kit.model.flavors import Flavor, image_tag

docker = lazy_module("docker")


@dataclass(frozen=True)
class Check:
    status: str  # ok, warn or FAIL
    name: str
    detail: str


POSTURE = (
    "containers: not privileged; all capabilities dropped, SYS_NICE added back only for "
    "numactl memory policies; no-new-privileges; no network; read-only root filesystem "
    f"(scratch tmpfs at {', '.join(SCRATCH)}); non-root user; no host path mounted except a "
    "--workload-dir, read-only; never the Docker socket"
)


def run_checks(engine) -> Iterator[Check]:
    """Each check of a Docker engine (or podman behind its Docker-compatible API)."""
    try:
        client = engine.client
        info = client.info()
        version = client.version()
    except (KitError, docker.errors.DockerException) as exc:
        yield Check("FAIL", "engine", str(exc))
        return
    product = "podman" if engine.podman is not None else "Docker"
    yield Check(
        "ok",
        "engine",
        f"{product} {version.get('Version')} (API {version.get('ApiVersion')}), "
        f"cgroup v{info.get('CgroupVersion', '?')} ({info.get('CgroupDriver', '?')}), "
        f"{info.get('NCPU')} CPUs",
    )
    yield _system_check()
    seccomp = any("seccomp" in opt for opt in info.get("SecurityOptions", []))
    yield Check(
        "ok" if seccomp else "warn",
        "seccomp",
        "default profile on: memory policies need SYS_NICE, which kit adds only for them"
        if seccomp
        else "no seccomp profile: containers are less confined than kit assumes",
    )
    images = {}
    for flavor in Flavor:
        try:
            image = client.images.get(image_tag(flavor))
        except docker.errors.NotFound:
            yield Check(
                "warn", f"image {flavor.value}", f"missing: `kit images build {flavor.value}`"
            )
            continue
        images[flavor] = image
        user = image.attrs.get("Config", {}).get("User") or "root"
        yield Check(
            "ok" if user not in ("", "root", "0") else "warn",
            f"image {flavor.value}",
            f"{image.short_id}, {image.labels.get('kit.tf-package', '?')}, user {user}",
        )
    if images:
        image = next(iter(images.values()))
        if engine.podman is not None:
            yield _ulimits_check(engine, image.id)
        extra = engine.extra_kwargs()
        yield _numactl_check(client, image.id, ["SYS_NICE"], expect_ok=True, extra=extra)
        yield _numactl_check(client, image.id, None, expect_ok=False, extra=extra)
    yield Check("ok", "posture", POSTURE)


def _ulimits_check(engine, image_id: str) -> Check:
    """podman: the ulimits its containers can be given (settled by starting kit's probe)."""
    try:
        engine.host_facts(image_id)
    except KitError as exc:
        return Check("FAIL", "ulimits", f"no container starts: {exc}")
    return Check("ok", "ulimits", f"containers get {describe(engine.podman)} (podman's defaults "
                 "exceed what this engine may set)")  # fmt: skip


def _numactl_check(client, image_id: str, cap_add, expect_ok: bool, extra=None) -> Check:
    name = "numactl -i all" + (" with SYS_NICE" if cap_add else " without SYS_NICE")
    container = None
    try:
        container = client.containers.create(
            image_id,
            ["numactl", "--interleave=all", "true"],
            cap_drop=["ALL"],
            cap_add=cap_add,
            network_mode="none",
            security_opt=["no-new-privileges"],
            labels={"kit.managed": "1"},
            **(extra or {}),
        )
        container.start()
        code = container.wait(timeout=60).get("StatusCode")
        output = " | ".join(container.logs().decode(errors="replace").split("\n")).strip(" |")
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    worked = code == 0
    if worked == expect_ok:
        detail = "applies" if worked else f"refused as expected ({output or code})"
        return Check("ok", name, detail)
    if expect_ok:
        return Check("FAIL", name, f"refused ({output}): memory-policy profiles will be INVALID")
    return Check("warn", name, "applies without the capability: seccomp is not confining")


def _system_check() -> Check:
    """This host's state that moves numbers (recorded with every run): a warning where it may
    add noise, a line either way."""
    record = local_facts().record
    load = str(record.get("load", "")).split()
    cpus = int(record.get("logical_cpus") or 1)
    busy = bool(load) and load[0].replace(".", "", 1).isdigit() and float(load[0]) > cpus / 2
    saving = str(record.get("governor")) in ("powersave", "conservative")
    status = "warn" if busy or saving else "ok"
    return Check(status, "system", describe_system(record))
