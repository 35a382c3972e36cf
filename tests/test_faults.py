"""Faults survived with nothing lost, against the real engine: every test also checks (through
``kit_containers``) that no container with kit's labels is left behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import docker.errors
import pytest

from kit.engines.container import LABEL_MANAGED, LABEL_RUN, LABEL_SESSION
from kit.store.folder import load_session
from tests.conftest import TINY, _require_docker, only_session, session_dirs
from tests.conftest import invoke as kit
from tests.engines import another_engine

pytestmark = pytest.mark.docker
STAND_INS = Path(__file__).resolve().parent / "data" / "stand-ins"


@pytest.fixture
def as_root():
    """The test mounts or restarts the engine: root only. Skipped elsewhere, but never where
    the real-engine tests are required (CI runs as root)."""
    if os.geteuid() != 0:
        if _require_docker():
            pytest.fail("KIT_REQUIRE_DOCKER is set but this test needs root (a mount, a restart)")
        pytest.skip("needs root")


def test_engine_not_reachable_names_the_socket_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/kit-no-such.sock")
    code, text = kit("compare", "stock", *TINY, "--engine", "docker", "--results", str(tmp_path))
    assert code == 2
    assert "unix:///tmp/kit-no-such.sock" in text and "make engine" in text
    assert not any(tmp_path.iterdir())


def test_missing_image_says_how_to_get_it(kit_containers, tmp_path):
    code, text = kit("run", "kit/nothing:here", *TINY, "--results", str(tmp_path))
    assert code == 2
    assert "'kit/nothing:here' is not on this Docker engine" in text
    assert "kit images build" in text


def test_build_missing_builds_a_missing_flavor(kit_images, kit_containers, docker_client, tmp_path):
    # Only the tag goes: the layers stay (latest-2.21.0), so the rebuild comes from the cache,
    # and the same sources give the same image: a session beside the suite that runs latest
    # finds its image again under the tag (and keeps the id it pinned meanwhile).
    before = docker_client.images.get("kit/tensorflow:latest").id
    docker_client.images.remove("kit/tensorflow:latest", noprune=True)
    code, text = kit("run", "latest", *TINY, "--build-missing", "--results", str(tmp_path))
    assert code == 0, text
    assert docker_client.images.get("kit/tensorflow:latest").id == before


def test_out_of_memory_is_recorded_and_the_session_goes_on(kit_images, kit_containers, tmp_path):
    code, _ = kit(
        "compare",
        "stock",
        "-p",
        "default",
        "-p",
        "tuned",
        *TINY,
        "--memory",
        "64m",
        "--repeats",
        "1",
        "--results",
        str(tmp_path),
    )
    assert code == 1
    results = load_session(only_session(tmp_path))
    assert len(results) == 2  # the second cell ran after the first was OOM-killed
    assert all(r.status.value == "failed" and "out of memory" in r.error for r in results)


def test_a_container_killed_from_outside_is_recorded_with_its_status(
    kit_images, kit_containers, docker_client, tmp_path
):
    from kit.engines.orphans import LABEL_OWNER, owner

    mine = f"{LABEL_OWNER}={owner()}"  # this process's kit's runs, not a session's beside it

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for c in docker_client.containers.list(filters={"label": [LABEL_RUN, mine]}):
                if b"Running warm up" in c.logs():
                    c.kill()
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=killer)
    thread.start()
    code, _ = kit("run", "stock", "--model", "resnet50", "--results", str(tmp_path))
    thread.join()
    assert code == 1
    (result,) = load_session(only_session(tmp_path))
    assert result.status.value == "failed"
    assert "exit status 137" in result.error and "Running warm up" in result.error


@pytest.mark.parametrize(
    ("stand_in", "expected"),
    [
        ("garbage", ["no throughput in the output", "images per second: lots"]),
        ("failing", ["exit status 3", "ImportError: cannot import name 'convnet_builder'"]),
    ],
)
def test_workload_failures_quote_the_output(
    kit_images, kit_containers, tmp_path, stand_in, expected
):
    code, _ = kit(
        "run",
        "stock",
        "--workload",
        "tf_cnn_benchmarks",
        "--workload-dir",
        str(STAND_INS / stand_in),
        "--results",
        str(tmp_path),
    )
    assert code == 1
    (result,) = load_session(only_session(tmp_path))
    assert result.status.value == "failed"
    for text in expected:
        assert text in result.error


def two_cell_session(results: Path) -> list[str]:
    """A `kit compare` of two cells, each long enough (40 tiny batches) to be caught running."""
    return [sys.executable, "-m", "kit", "compare", "stock", "-p", "default", "-p", "tuned",
            "--model", "tiny", "--batch-size", "8", "--num-batches", "40",
            "--num-warmup-batches", "1", "--repeats", "1", "--results", str(results)]  # fmt: skip


def session_label(session: Path) -> str:
    """The label filter of one session's containers (not those of a session beside the suite)."""
    return f"{LABEL_SESSION}={session.name}"


def start_kit(args: list[str]) -> subprocess.Popen:
    """kit in the background, with SIGINT at its default as from a terminal: a test run started
    in the background (nohup, `&` without job control) ignores SIGINT, and an ignored SIGINT is
    inherited through exec and never reaches kit. A handler is reset to the default by exec."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_what_finished_and_resume_runs_the_rest(
    kit_images, kit_containers, docker_client, tmp_path, sig
):
    args = two_cell_session(tmp_path)
    proc = start_kit(args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for run 1 on disk and run 2 running
        sessions = session_dirs(tmp_path)
        running = sessions and docker_client.containers.list(
            filters={"label": ["kit.run=2", session_label(sessions[0])]}
        )
        if sessions and load_session(sessions[0]) and running:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the session never reached its second run")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    session = only_session(tmp_path)
    assert not docker_client.containers.list(all=True, filters={"label": session_label(session)})
    assert [r.index for r in load_session(session)] == [1]

    done = subprocess.run(
        [*args, "--resume", session.name], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "1 run(s)" in done.stderr
    assert [r.index for r in load_session(session)] == [1, 2]
    assert "stock" in done.stdout and "tuned" in done.stdout


def test_a_second_session_is_refused_while_one_runs(kit_images, kit_containers, tmp_path):
    from kit.campaign.lock import session_lock

    with session_lock():
        code, text = kit("run", "stock", *TINY, "--results", str(tmp_path))
        assert code == 2
        assert "another kit session is running" in text and "--allow-concurrent" in text
        code, text = kit("run", "stock", *TINY, "--allow-concurrent", "--results", str(tmp_path))
        assert code == 0, text


@pytest.mark.usefixtures("as_root")
def test_a_full_results_disk_is_refused_before_anything_runs(kit_containers, tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        code, text = kit("run", "stock", *TINY, "--results", str(mount))
        assert code == 2
        assert "MB free" in text
        assert not any(mount.iterdir())
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def clean_engine(kit_images):
    """An engine of the test's own, with one image: `kit clean` there cannot touch the strays
    of anything beside the suite. The image is an empty root, enough to create containers."""
    engine = another_engine("kit-clean", 250)
    try:
        client = engine.client()
        tar = io.BytesIO()
        tarfile.open(fileobj=tar, mode="w").close()
        client.api.import_image_from_data(tar.getvalue(), repository="kit-test/empty", tag="1")
        yield engine
    finally:
        engine.remove()


def test_clean_removes_only_what_kit_left(clean_engine):
    """A container kit left is removed; one that is not kit's, and one a live kit still runs
    (a session beside this one), stay."""
    from kit.engines.orphans import LABEL_OWNER, owner

    client = clean_engine.client()

    def create(**labels):
        return client.containers.create("kit-test/empty:1", ["sleep", "60"], labels=labels)

    stray, other = create(**{LABEL_MANAGED: "1"}), create()
    live = create(**{LABEL_MANAGED: "1", LABEL_OWNER: owner()})
    code, text = kit("clean", "--host", clean_engine.socket_url)
    assert code == 0 and "removed 1 container" in text, text
    names = [c.id for c in client.containers.list(all=True)]
    assert stray.id not in names and other.id in names and live.id in names


def host_config_during(kit_args, client, tmp_path):
    """HostConfig and Config of the container kit starts, read while it runs (from this
    engine's client: Docker's or podman's, whose listing holds less until reloaded)."""
    from kit.engines.orphans import LABEL_OWNER, owner

    mine = f"{LABEL_OWNER}={owner()}"  # kit runs in this process
    seen = {}

    def watch():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not seen:
            for c in client.containers.list(filters={"label": [LABEL_RUN, mine]}):
                with contextlib.suppress(docker.errors.NotFound):  # it ended meanwhile
                    c.reload()
                    seen.update(host=c.attrs["HostConfig"], config=c.attrs["Config"])
            time.sleep(0.1)

    thread = threading.Thread(target=watch)
    thread.start()
    code, text = kit(*kit_args, "--results", str(tmp_path))
    thread.join()
    assert code == 0, text
    return seen["host"], seen["config"]


@pytest.mark.parametrize("profile", ["tuned", "interleave"])
def test_containers_run_with_least_privilege(
    kit_images, kit_containers, docker_client, tmp_path, profile
):
    host, config = host_config_during(
        ["run", "stock", "-p", profile, *TINY, "--memory", "4g", "--pids-limit", "512"],
        docker_client,
        tmp_path,
    )
    print(
        json.dumps(
            {
                k: host[k]
                for k in (
                    "Privileged",
                    "CapAdd",
                    "CapDrop",
                    "SecurityOpt",
                    "NetworkMode",
                    "ReadonlyRootfs",
                    "Binds",
                    "CpusetCpus",
                    "Memory",
                    "PidsLimit",
                    "Tmpfs",
                )
            }
        )
    )
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == (["SYS_NICE"] if profile == "interleave" else None)
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert not host["Binds"]
    assert host["Memory"] == 4 * 2**30 and host["PidsLimit"] == 512
    assert config["User"] in ("kit", "10001")
    assert "docker.sock" not in json.dumps(host)


def test_doctor_checks_engine_images_and_numactl(kit_images):
    code, text = kit("doctor")
    assert code == 0, text
    assert "numactl -i all with SYS_NICE: applies" in text
    assert "numactl -i all without SYS_NICE: refused as expected" in text
    assert "image stock" in text and "user kit" in text
    assert "system: governor" in text and ", SMT " in text and ", load " in text


@pytest.fixture
def restarted_engine(kit_images):
    """An engine of the test's own to restart: restarting this host's would stop every
    container on it, a session's beside the suite included."""
    engine = another_engine("kit-restart", 249)
    yield engine
    engine.remove()


@pytest.mark.usefixtures("as_root")
def test_engine_restart_mid_session_fails_that_run_and_the_next_one_runs(
    restarted_engine, tmp_path
):
    args = [*two_cell_session(tmp_path), "--host", f"own={restarted_engine.socket_url}"]
    proc = start_kit(args)  # kit sends stock to the new engine first
    client = restarted_engine.client()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = client.containers.list(filters={"label": "kit.run=1"})
        if running and b"Running warm up" in running[0].logs():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the first run never started")
    restarted_engine.restart()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    first, second = load_session(session_dirs(tmp_path)[0])
    assert first.status.value == "failed"
    assert second.ok and second.images_per_sec > 0, (first.error, second.error)
    assert "tuned" in out
    assert not restarted_engine.client().containers.list(all=True)  # nothing left there
