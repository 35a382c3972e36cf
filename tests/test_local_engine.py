"""The local engine: pure translation tests, and real runs in a real virtual environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kit.cpus import format_cpu_list
from kit.engines.local import (
    LocalEngine,
    cache_root,
    flavor_of,
    local_environment,
    pins_digest,
)
from kit.engines.orphans import boot_id, end_orphaned_processes, owner
from kit.errors import ImageNotFound, UsageError
from kit.model.flavors import Flavor, resolve_image
from kit.model.profiles import Placement, load_profiles
from kit.model.spec import RunSpec
from kit.model.workload import Model, WorkloadSpec
from kit.store.folder import load_session
from kit.workload.provenance import settings
from tests.conftest import TINY, invoke, only_session

HOST = Placement(cores=2, threads=2, nodes=1, last_node=0)
PYTHON = Path("/cache/kit/envs/stock-abc/bin/python")


def spec(profile: str, cpus=(0, 1), mems=None) -> RunSpec:
    return RunSpec(
        index=1, image=resolve_image("stock"), profile=load_profiles()[profile].resolve(HOST),
        cpus=cpus, workload=WorkloadSpec(model=Model.tiny), mems=mems,
    )  # fmt: skip


def test_command_pins_with_taskset_then_numactl_then_the_envs_python():
    argv = list(spec("interleave", cpus=(1,)).host_command(str(PYTHON)))
    assert argv[:5] == ["taskset", "--cpu-list", "1", "numactl", "--interleave=all"]
    assert argv[5:8] == [str(PYTHON), "-m", "kit_workload"]
    assert "--num_intra_threads=2" in argv


def test_instances_bind_memory_to_their_nodes_without_a_container():
    argv = list(spec("tuned", cpus=(1,), mems=(0,)).host_command(str(PYTHON)))
    assert argv[3:5] == ["numactl", "--membind=0"]
    plain = list(spec("default").host_command(str(PYTHON)))
    assert "numactl" not in plain


def test_environment_is_the_profile_plus_what_python_needs():
    env = local_environment(spec("tuned"), Path("/w"), {"PATH": "/bin", "SECRET": "x"})
    assert env["OMP_NUM_THREADS"] == "2" and env["KMP_BLOCKTIME"] == "1"
    assert env["PYTHONPATH"] == "/w" and env["PATH"] == "/bin" and env["KIT_FLAVOR"] == "stock"
    assert "SECRET" not in env


def test_only_flavors_run_locally():
    assert flavor_of("kit/tensorflow:intel") is Flavor.intel
    assert flavor_of("latest") is Flavor.latest
    with pytest.raises(UsageError, match="runs kit's flavors only"):
        flavor_of("registry.example/other:1")


def test_environments_are_keyed_by_their_pins(tmp_path):
    assert len(pins_digest(Flavor.stock)) == 12
    assert pins_digest(Flavor.stock) != pins_digest(Flavor.intel)
    assert cache_root({"KIT_CACHE": str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/kit")
    engine = LocalEngine(tmp_path)
    assert engine.env_path(Flavor.stock).name == f"stock-{pins_digest(Flavor.stock)}"


def test_a_missing_environment_says_how_to_make_it(tmp_path):
    from kit.errors import ImageNotFound

    with pytest.raises(ImageNotFound, match="kit envs build stock"):
        LocalEngine(tmp_path).image_id("stock")


@pytest.mark.docker
def test_auto_picks_docker_when_it_answers(kit_images, kit_containers, tmp_path):
    code, text = invoke("run", "stock", *TINY, "--results", str(tmp_path))
    assert code == 0, text
    assert "engine: docker" in text


@pytest.mark.slow
def test_local_engine_compare_with_a_real_environment(monkeypatch, tmp_path):
    """A real venv from the stock image's pins (cached under KIT_CACHE between runs), pinned
    and bound by taskset and numactl, verified like a container run; and auto falls back to
    it when no Docker engine answers."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/kit-no-such.sock")
    code, text = invoke(
        "compare",
        "stock",
        "-p",
        "default",
        "-p",
        "interleave",
        *TINY,
        "--cpus",
        "1",
        "--repeats",
        "1",
        "--build-missing",
        "--results",
        str(tmp_path),
        "--format",
        "json",
    )
    assert code == 0, text
    assert "engine: local" in text
    results = {r.profile: r for r in load_session(only_session(tmp_path))}
    assert all(r.ok and r.images_per_sec > 0 for r in results.values())
    assert results["interleave"].memory_policy == "interleave 0"
    assert results["default"].provenance["cpus_allowed_list"] == "1"
    assert results["default"].tf_version == "2.14.1"
    assert results["default"].image_id.startswith("venv:stock-")
    rerun = results["default"].rerun  # the local engine's own line, not a `docker run`
    assert rerun.startswith("env ") and "taskset --cpu-list 1" in rerun, rerun


def test_the_workload_folder_holds_kits_workload(tmp_path):
    from kit.engines.local import LocalEngine

    folder = LocalEngine(root=tmp_path).workload_path()
    assert (folder / "kit_workload" / "__main__.py").is_file()


def _fake_environment(prefix: Path, pins: dict[str, str]) -> Path:
    """A prefix whose bin/python reports ``pins`` as its installed distributions."""
    (prefix / "bin").mkdir(parents=True)
    python = prefix / "bin" / "python"
    listing = "\n".join(f"{name} {version}" for name, version in pins.items())
    python.write_text(f"#!/bin/sh\ncat <<'END'\n{listing}\nEND\n")
    python.chmod(0o755)
    return prefix


def test_an_environment_with_the_pins_is_adopted_and_used(tmp_path):
    from kit.engines.local import read_pins

    pins = read_pins(Flavor.stock)
    assert pins["tensorflow-cpu"] == "2.14.1" and "numpy" in pins
    prefix = _fake_environment(tmp_path / "opt-venv", {**pins, "extra-tool": "1.0"})
    engine = LocalEngine(tmp_path / "cache")
    with pytest.raises(ImageNotFound):
        engine.image_id("stock")
    path = engine.adopt(Flavor.stock, prefix)
    assert path.resolve() == prefix.resolve()
    assert engine.state(Flavor.stock) == f"adopted {prefix.resolve()}"
    assert engine.image_id("stock") == f"venv:{path.name}"
    assert engine.rerun_line(spec("default"), "s1").count(str(path / "bin" / "python")) == 1


def test_an_environment_otherwise_pinned_is_refused_naming_what_differs(tmp_path):
    from kit.engines.local import read_pins

    pins = read_pins(Flavor.stock)
    wrong = {**pins, "tensorflow-cpu": "2.15.0"}
    del wrong["numpy"]
    prefix = _fake_environment(tmp_path / "env", wrong)
    engine = LocalEngine(tmp_path / "cache")
    with pytest.raises(UsageError) as caught:
        engine.adopt(Flavor.stock, prefix)
    said = str(caught.value)
    assert "numpy missing (pinned 1.26.4)" in said
    assert "tensorflow-cpu 2.15.0 (pinned 2.14.1)" in said
    assert engine.state(Flavor.stock) is None
    with pytest.raises(UsageError, match="cannot run"):
        engine.adopt(Flavor.stock, tmp_path / "nowhere")


def test_a_run_carries_its_owner_and_a_killed_kits_runs_are_ended(tmp_path):
    """A local run's process carries its owner (this kit), session and run in its environment;
    the next kit ends the process groups whose kit is gone and says which, before its first run,
    and leaves those of a live kit or of another boot alone."""
    engine = LocalEngine(root=tmp_path)
    python = engine.env_path(Flavor.stock) / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nenv\n")  # an environment's python that shows what it got
    python.chmod(0o755)
    outcome = engine.run(spec("default", cpus=(0,)), "20261206T000000Z", tmp_path / "log",
                         lambda line: None)  # fmt: skip
    shown = dict(line.partition("=")[::2] for line in outcome.log_path.read_text().splitlines())
    assert shown["KIT_OWNER"] == owner() and shown["KIT_RUN"] == "1"
    assert shown["KIT_SESSION"] == "20261206T000000Z"
    # who started it is not how it ran: the workload's record of its settings leaves it out
    # (else every session's environment would differ in its history)
    assert settings(shown) == {"KIT_FLAVOR": "stock", "TF_CPP_MIN_LOG_LEVEL": "1"}

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid whose process ended: the killed kit
    tree = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    labels = {"KIT_SESSION": "20261206T000000Z", "KIT_RUN": "3"}
    runs = {
        who: subprocess.Popen(
            [sys.executable, "-c", tree], start_new_session=True, env={"KIT_OWNER": who, **labels}
        )
        for who in (f"{boot_id()}/{gone.pid}/1", owner(), "another-boot/1/1")
    }
    try:
        time.sleep(0.5)  # each has started its child
        killed, *left = runs.values()
        name = psutil.Process(killed.pid).name()
        # only this test's dead owner counts as gone: another kit's leftovers are not its own
        said = end_orphaned_processes(alive=lambda pid, start: (pid, start) != (gone.pid, "1"))
        cpus = format_cpu_list(os.sched_getaffinity(0))  # what the runs inherited
        assert said == [
            f"ended process {name} (pid {killed.pid}, CPUs {cpus}): run 3 of session "
            f"20261206T000000Z, whose kit (pid {gone.pid}) is gone"
        ]
        assert killed.wait(timeout=10) == -signal.SIGKILL
        assert all(p.poll() is None for p in left)
        assert _group_alive(killed.pid, wait_s=5) == []  # its child went with its group
        assert len(_group_alive(left[0].pid)) == 2
    finally:
        for proc in runs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _group_alive(group: int, wait_s: float = 0.0) -> list[int]:
    """The processes of a group that still run (a zombie, ended and not yet reaped, does not),
    once none does or after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        running = [p for p in psutil.process_iter(["status"]) if p.info["status"] != "zombie"]
        alive = [p.pid for p in running if _group_of(p.pid) == group]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
