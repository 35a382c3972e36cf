"""--engine podman for real: Debian's podman 4.3 serving its Docker-compatible API (rootful),
reached with the same SDK. kit's images loaded into it, a compare with a memory policy whose
placement is verified inside the container, the containers' posture as for Docker, the
ulimits kit sets (podman's defaults exceed what runc may set here), and `kit doctor`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest

from kit.engines.container import LABEL_MANAGED
from kit.store.folder import load_session
from tests.conftest import TINY, _require_docker, invoke, only_session
from tests.test_faults import host_config_during

pytestmark = pytest.mark.docker

STOCK = "kit/tensorflow:stock"


def _answers(url: str) -> bool:
    with contextlib.suppress(Exception):
        return docker.DockerClient(base_url=url, timeout=5).ping()
    return False


@pytest.fixture(scope="module")
def podman(kit_images, tmp_path_factory):
    """podman's API served here on storage of its own (a fresh --root and --runroot), so no test
    depends on what a podman of this machine held before; kit reaches it by CONTAINER_HOST."""
    if shutil.which("podman") is None:
        if _require_docker():
            pytest.fail("KIT_REQUIRE_DOCKER is set but podman is not installed")
        pytest.skip("podman is not installed")
    root = tmp_path_factory.mktemp("podman")
    url = f"unix://{root / 'podman.sock'}"
    storage = ["--root", str(root / "storage"), "--runroot", str(root / "run")]
    argv = ["podman", *storage, "system", "service", "--time=0", url]
    log = (root / "service.log").open("wb")
    service = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not _answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not _answers(url):
        service.terminate()
        pytest.fail(f"podman's service did not answer: {(root / 'service.log').read_text()[-500:]}")
    client = docker.DockerClient(base_url=url, timeout=900)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTAINER_HOST", url)
        yield client
    for container in client.containers.list(all=True, filters={"label": LABEL_MANAGED}):
        container.remove(force=True)
    service.terminate()
    service.wait(30)
    # its storage's images (not `system reset` or `prune`: they reach this machine's podman
    # networks too); pytest removes the folder with its older temporary folders
    subprocess.run(["podman", *storage, "rmi", "--all", "--force"], capture_output=True,
                   check=False, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def podman_stock(podman, docker_client):
    """The podman service above, holding kit's stock image (taken from Docker's)."""
    with contextlib.suppress(docker.errors.NotFound, docker.errors.ImageNotFound):
        podman.images.get(STOCK)
        return podman
    podman.images.load(docker_client.images.get(STOCK).save())
    return podman


def _kit_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": LABEL_MANAGED})


def test_kit_loads_its_images_into_podman(podman, docker_client, tmp_path):
    # the service's own storage: it holds only what this module gave it; another test may
    # have given it stock already
    with contextlib.suppress(docker.errors.NotFound, docker.errors.ImageNotFound):
        podman.images.remove(STOCK, force=True)
    assert not [i for i in podman.images.list() if STOCK in i.tags]
    archive = tmp_path / "stock.tar"
    code, text = invoke("images", "save", "stock", "-o", str(archive))
    assert code == 0, text
    code, text = invoke("images", "load", str(archive), "--engine", "podman")
    assert code == 0, text
    assert "loaded" in text
    assert podman.images.get(STOCK).id == docker_client.images.get(STOCK).id
    code, text = invoke("images", "list", "--engine", "podman")
    assert code == 0 and "tensorflow-cpu==2.14.1" in text, text


def test_a_compare_on_podman_verifies_a_memory_policy_inside(podman_stock, tmp_path):
    code, text = invoke("compare", "stock", "-p", "default", "-p", "interleave", *TINY, "--repeats",
                        "1", "--engine", "podman", "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    assert "podman runs podman: its containers get --ulimit nofile=" in text
    runs = load_session(only_session(tmp_path))
    assert [r.status.value for r in runs] == ["ok", "ok"]
    assert {r.engine for r in runs} == {"podman"}
    interleaved = next(r for r in runs if r.profile == "interleave")
    assert interleaved.memory_policy.startswith("interleave")
    assert interleaved.provenance["cpus_allowed_list"] == "0-1"
    assert _kit_containers(podman_stock) == []


def test_podman_containers_have_the_same_posture(podman_stock, tmp_path):
    host, config = host_config_during(
        ["run", "stock", "-p", "interleave", *TINY, "--engine", "podman", "--pids-limit", "512"],
        podman_stock, tmp_path,
    )  # fmt: skip
    print(json.dumps({k: host.get(k) for k in ("Privileged", "CapAdd", "CapDrop", "SecurityOpt",
                      "NetworkMode", "ReadonlyRootfs", "Binds", "Ulimits")}))  # fmt: skip
    assert host["Privileged"] is False
    assert [c.upper().removeprefix("CAP_") for c in host["CapAdd"]] == ["SYS_NICE"]
    # podman lists what it drops of its defaults: every one of them
    dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"]}
    assert {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_RAW", "SETGID", "SETUID"} <= dropped
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert not host.get("Binds")
    assert host["PidsLimit"] == 512
    assert any("no-new-privileges" in o for o in host["SecurityOpt"] or [])
    limits = {u["Name"].lower().removeprefix("rlimit_"): u["Hard"] for u in host["Ulimits"]}
    assert limits["nofile"] > 0 and limits["nproc"] > 0
    assert config["User"] in ("kit", "10001")
    assert "docker.sock" not in json.dumps(host) and "podman.sock" not in json.dumps(host)


def test_doctor_checks_podman(podman_stock):
    code, text = invoke("doctor", "--engine", "podman")
    assert code == 0, text
    assert "engine: podman 4" in text
    assert "ulimits: containers get --ulimit nofile=" in text
    assert "numactl -i all with SYS_NICE: applies" in text


ROOTLESS_USER = "kit-rootless"


@pytest.fixture(scope="module")
def rootless(kit_images):
    """podman's API served by an unprivileged user (created if missing, with subordinate ids)."""
    import pwd

    try:
        pwd.getpwnam(ROOTLESS_USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", ROOTLESS_USER], check=True)
        created = True
    uid = pwd.getpwnam(ROOTLESS_USER).pw_uid
    runtime = Path(f"/run/user/{uid}")
    made_runtime = not runtime.exists()
    (runtime / "podman").mkdir(parents=True, exist_ok=True)
    shutil.chown(runtime, ROOTLESS_USER, ROOTLESS_USER)
    shutil.chown(runtime / "podman", ROOTLESS_USER, ROOTLESS_USER)
    runtime.chmod(0o700)
    url = f"unix://{runtime}/podman/podman.sock"
    # without CONTAINER_HOST (the rootful fixture's): with it, podman would act as a client
    argv = ["runuser", "-u", ROOTLESS_USER, "--", "env", "-u", "CONTAINER_HOST",
            f"XDG_RUNTIME_DIR={runtime}",
            "podman", "system", "service", "--time=0", url]  # fmt: skip
    service = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while not _answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    yield url
    os.killpg(service.pid, signal.SIGTERM)  # runuser does not pass SIGTERM on to podman
    service.wait(30)
    # Rootless podman leaves a pause process holding the user's namespace: end it too.
    pause = runtime / "libpod" / "tmp" / "pause.pid"
    if pause.is_file() and (pid := pause.read_text().strip()).isdigit():
        subprocess.run(["kill", pid], check=False)
    if made_runtime:
        shutil.rmtree(runtime, ignore_errors=True)
    if created:  # the user this fixture added goes, with its home (rootless podman's storage)
        _remove_user(ROOTLESS_USER)


def _remove_user(name: str) -> None:
    """userdel, once the user's last process (podman's pause process) has ended."""
    for _ in range(50):
        done = subprocess.run(["userdel", "-r", name], check=False, capture_output=True, text=True)
        if done.returncode in (0, 6):  # 6: no such user
            return
        time.sleep(0.2)
    pytest.fail(f"could not remove the user {name}: {done.stderr.strip()}")


def test_rootless_podman_is_used_only_where_it_can_pin_cpus(rootless, tmp_path):
    """Rootless podman without the cpuset controller ignores a container's cpuset (on cgroup
    v1 it says so and runs on every CPU): kit refuses it, saying why, before anything runs."""
    from kit.engines.podman import libpod_info

    host = libpod_info(docker.DockerClient(base_url=rootless))["host"]
    assert host["security"]["rootless"] is True
    code, text = invoke("run", "stock", *TINY, "--host", f"mine={rootless}",
                        "--results", str(tmp_path))  # fmt: skip
    if "cpuset" in (host.get("cgroupControllers") or []):
        assert "rootless podman" not in text, text  # it can pin CPUs: no refusal
        return
    assert code == 2, text
    assert f"engine mine ({rootless}) is rootless podman without the cpuset cgroup" in text
    assert "use rootful podman" in text
    assert not (tmp_path.exists() and any(tmp_path.iterdir()))
