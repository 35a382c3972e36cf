"""Several Docker engines at once, for real: a second dockerd on this machine (own socket,
data-root, bridge and a loopback TCP port) that starts with no images, so kit must send them;
reached by socket, by tcp:// and through a Docker context; and a third that goes away in the
middle of a session."""

import contextlib
import itertools
import json
import os
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import docker.errors
import pytest

from kit.engines import docker as docker_engine
from kit.engines.container import LABEL_MANAGED, LABEL_RUN
from kit.engines.reach import close_ssh_clients
from kit.store.folder import load_session
from tests.conftest import TINY, _require_docker, invoke, session_dirs
from tests.engines import another_engine, start_sshd

pytestmark = pytest.mark.docker

THIS = "unix:///var/run/docker.sock"
STOCK = "kit/tensorflow:stock"


@pytest.fixture(scope="module")
def second(kit_images):
    engine = another_engine("kit-second", 251)
    yield engine
    engine.remove()


def _kit_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": LABEL_MANAGED})


def _runs_there(host: str, docker_client, tmp_path) -> None:
    """`kit run` on the host NAME=URL: the run is ok, named NAME, and its host record is the
    engine's host."""
    code, text = invoke("run", "stock", *TINY, "--host", host, "--results", str(tmp_path))
    assert code == 0, text
    (result,) = load_session(session_dirs(tmp_path)[0])
    assert result.ok and result.engine == host.partition("=")[0]
    assert result.host["hostname"] == docker_client.info()["Name"]


def test_two_engines_one_table_and_the_second_receives_the_image(
    second, kit_images, docker_client, kit_containers, tmp_path
):
    client = second.client()
    with contextlib.suppress(docker.errors.ImageNotFound):  # sent by another test of the module
        client.images.remove(STOCK, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(STOCK)
    code, text = invoke(
        "compare", "stock", "-p", "default", "-p", "tuned", *TINY, "--repeats", "1",
        "--host", THIS, "--host", f"second={second.socket_url}", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    assert f"sent {STOCK} from this host to second" in text
    assert client.images.get(STOCK).id == docker_client.images.get(STOCK).id
    # one machine (one kernel) behind both: kit says so, and their runs take turns
    assert "docker and second run on one machine" in text
    header = next(line for line in text.splitlines() if line.startswith("engine "))
    assert header.split()[:2] == ["engine", "image"]
    assert "Best per engine:" in text
    (session,) = session_dirs(tmp_path)
    results = load_session(session)
    assert sorted(r.engine for r in results) == ["docker", "docker", "second", "second"]
    assert all(r.ok for r in results), [r.error for r in results]
    runs = sorted(results, key=lambda r: r.started)
    assert all(a.ended <= b.started for a, b in itertools.pairwise(runs))
    meta = json.loads((session / "session.json").read_text())
    name = docker_client.info()["Name"]
    assert {h["hostname"] for h in meta["hosts"].values()} == {name}
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert {r.host["boot_id"] for r in results} == {boot_id}
    assert _kit_containers(client) == []


def test_a_context_and_a_tcp_url_reach_ananother_engine(
    second, kit_images, docker_client, tmp_path, monkeypatch
):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    subprocess.run(
        ["docker", "context", "create", "kit-second", "--docker", f"host={second.socket_url}"],
        check=True,
        capture_output=True,
    )
    _runs_there(f"viatcp={second.tcp_url}", docker_client, tmp_path)
    code, text = invoke("topology", "--host", "kit-second", "--format", "json")
    assert code == 0, text
    shown = json.loads(text)
    assert shown["host"]["hostname"] == docker_client.info()["Name"]
    assert shown["logical_cpus"] == os.cpu_count()
    code, text = invoke("topology", "--host", "no-such-context")
    assert code == 2 and "no Docker context named 'no-such-context'" in text
    assert _kit_containers(second.client()) == []


def test_a_host_that_goes_away_loses_nothing_of_the_others(
    kit_images, docker_client, kit_containers, tmp_path, monkeypatch
):
    third = another_engine("kit-third", 252)
    monkeypatch.setattr(docker_engine, "RECONNECT_S", 3.0)
    stopped_at: list[float] = []

    def stop_during_its_first_run() -> None:
        client = third.client()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                if client.containers.list(filters={"label": LABEL_RUN}):  # running now
                    time.sleep(0.5)  # inside the run: a tiny one lasts about 2 s
                    stopped_at.append(time.time())
                    third.stop()
                    return
            except Exception:
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=stop_during_its_first_run, daemon=True)
    watcher.start()
    try:
        code, text = invoke(
            "compare", "stock", "-p", "default", "-p", "tuned", *TINY, "--repeats", "2",
            "--host", THIS, "--host", f"third={third.socket_url}", "--results", str(tmp_path),
        )  # fmt: skip
    finally:
        watcher.join(60)
        third.remove()
    assert stopped_at, "the third engine never started a run"
    assert code == 1 and "runs were not ok" in text, text
    results = load_session(session_dirs(tmp_path)[0])
    mine = [r for r in results if r.engine == "docker"]
    theirs = [r for r in results if r.engine == "third"]
    assert len(mine) == 4 and all(r.ok for r in mine), [r.error for r in mine]
    assert len(theirs) == 4 and not any(r.ok for r in theirs)
    assert all("Docker engine" in (r.error or "") for r in theirs), [r.error for r in theirs]
    # the host that stayed away cost each later run one ping, not a long wait
    later = sorted(theirs, key=lambda r: r.started)[1:]
    waits = [(datetime.fromisoformat(r.ended) - datetime.fromisoformat(r.started)) for r in later]
    assert all(w.total_seconds() < 10 for w in waits), waits


def test_an_ssh_host(kit_images, docker_client, kit_containers, tmp_path, monkeypatch):
    """ssh://: docker-py runs `ssh HOST docker system dial-stdio`; here the host is this one,
    behind an sshd on loopback."""
    try:
        sshd = start_sshd(tmp_path / "ssh")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        if _require_docker():
            pytest.fail(f"KIT_REQUIRE_DOCKER is set but no sshd can start: {exc}")
        pytest.skip(f"no sshd: {exc}")
    monkeypatch.setenv("PATH", f"{sshd.bin_dir}:{os.environ['PATH']}")
    try:
        _runs_there(f"viassh={sshd.url}", docker_client, tmp_path)
        code, text = invoke("topology", "--host", sshd.url)
        assert code == 0 and "host:" in text, text
    finally:
        close_ssh_clients()  # as kit does at exit: while their ssh peer is still there
        sshd.stop()
