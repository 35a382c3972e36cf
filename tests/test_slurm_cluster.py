"""--engine slurm on a real one-node Slurm 22.05 cluster of this machine (slurmctld, slurmd,
munge), with Docker on the node and the tiny model: a compare through sbatch, an interrupt
that cancels its job, a job cancelled from outside, --resume, and the probe's refusal of a
results folder the job cannot write."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.store.folder import load_session
from tests.conftest import TINY, invoke, only_session, session_dirs
from tests.engines import start_slurm, using_slurm
from tests.test_faults import session_label, start_kit

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def slurm(tmp_path_factory, kit_images):
    with using_slurm(lambda: start_slurm(tmp_path_factory.mktemp("slurm")), "Slurm") as cluster:
        yield cluster


def _queue() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return [line for line in out.stdout.splitlines() if " kit-" in line]


def _long(results: Path, *more: str) -> list[str]:
    """Two cells, two repeats, each run long enough (40 tiny batches) to be caught running."""
    return [sys.executable, "-m", "kit", "compare", "stock", "-p", "default", "-p", "tuned",
            "--engine", "slurm", "--model", "tiny", "--batch-size", "8", "--num-batches", "40",
            "--num-warmup-batches", "1", "--repeats", "2", "--results", str(results),
            *more]  # fmt: skip


def _after_first_run(proc: subprocess.Popen, results: Path) -> Path:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        sessions = session_dirs(results)
        if sessions and load_session(sessions[0]):
            return sessions[0]
        if proc.poll() is not None:
            pytest.fail(f"kit ended early: {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the session never finished its first run")


def test_compare_through_sbatch(slurm, docker_client, kit_containers, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --results: the job starts elsewhere on the node
    code, text = invoke("compare", "stock", "-p", "default", "-p", "tuned", *TINY, "--repeats",
                        "2", "--engine", "slurm", "--results", "results")  # fmt: skip
    assert code == 0, text
    assert f"engine: slurm, node(s) {slurm.node}" in text
    header = next(line for line in text.splitlines() if line.startswith("image "))
    assert "images/sec" in header and "speedup" in header
    session = only_session(tmp_path / "results")
    runs = load_session(session)
    assert len(runs) == 4 and all(r.ok and r.images_per_sec for r in runs)
    assert {r.engine for r in runs} == {slurm.node}
    assert all(r.host["hostname"] == slurm.node for r in runs)
    assert all(r.rerun.startswith("srun ") for r in runs), runs[0].rerun  # Slurm's own line
    batch = session / "slurm" / slurm.node / "batch-0001"
    assert "-m kit _worker" in (batch / "job.sh").read_text()
    assert len(json.loads((batch / "share.json").read_text())["runs"]) == 4
    assert (session / "01-stock_default.log").read_text().count("images/sec") > 1
    code, text = invoke("report", "latest", "--results", "results")
    assert code == 0 and "tuned" in text
    assert _queue() == []


def test_an_interrupt_cancels_the_job_and_resume_submits_only_whats_missing(
    slurm, docker_client, kit_containers, tmp_path
):
    proc = start_kit(_long(tmp_path))
    session = _after_first_run(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"--resume {session.name}" in err
    assert _queue() == []
    assert not docker_client.containers.list(all=True, filters={"label": session_label(session)})
    kept = {r.index for r in load_session(session)}
    assert kept and len(kept) < 4
    again = _long(tmp_path, "--resume", session.name)
    done = subprocess.run(again, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(r.index for r in load_session(session)) == [1, 2, 3, 4]
    batches = sorted((session / "slurm" / slurm.node).iterdir())
    assert len(batches) == 2
    share = json.loads((batches[1] / "share.json").read_text())
    assert sorted(r["index"] for r in share["runs"]) == sorted({1, 2, 3, 4} - kept)


def test_a_job_cancelled_from_outside_fails_its_missing_runs_with_slurms_reason(
    slurm, docker_client, kit_containers, tmp_path
):
    proc = start_kit(_long(tmp_path))
    session = _after_first_run(proc, tmp_path)
    (job,) = (line.split()[0] for line in _queue())
    subprocess.run(["scancel", job], check=True)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    runs = load_session(session)
    assert len(runs) == 4
    failed = [r for r in runs if not r.ok]
    assert failed and all(f"Slurm job {job} ended" in r.error and "CANCELLED" in r.error
                          for r in failed)  # fmt: skip
    assert any(r.ok for r in runs)
    assert _queue() == []
    assert not docker_client.containers.list(all=True, filters={"label": session_label(session)})


def test_the_probe_refuses_a_results_folder_the_job_cannot_write(slurm, tmp_path):
    results = tmp_path / "results"
    results.mkdir(mode=0o700)
    # The job's user (nobody) may not run every Python (this venv's may live in root's home):
    # Debian's runs the probe, and the folder is refused before kit's absence there.
    code, text = invoke("compare", "stock", *TINY, "--engine", "slurm", "--slurm-arg=--uid=nobody",
                        "--node-python", "/usr/bin/python3", "--results", str(results))  # fmt: skip
    assert code == 2, text
    assert f"node {slurm.node} cannot write the results folder {results}" in text
    assert "shares" in text
    assert session_dirs(results) == []


@pytest.mark.parametrize(
    "python, said",
    [("/usr/bin/python3", "has no kit for /usr/bin/python3"),  # Debian's: no kit installed
     ("/opt/nowhere/bin/python", "has no /opt/nowhere/bin/python")],
)  # fmt: skip
def test_a_node_without_kits_python_is_named_before_any_job(slurm, python, said, tmp_path):
    code, text = invoke("compare", "stock", *TINY, "--engine", "slurm", "--node-python", python,
                        "--results", str(tmp_path))  # fmt: skip
    assert code == 2, text
    assert f"node {slurm.node} {said}" in text and "--node-python" in text
    assert session_dirs(tmp_path) == [] and _queue() == []


def test_the_nodes_run_kit_with_the_python_given(slurm, kit_containers, tmp_path):
    """--node-python names kit's Python on the nodes: here this venv's, by a path of its own."""
    link = tmp_path / "node-python"
    link.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    link.chmod(0o755)
    results = tmp_path / "results"
    code, text = invoke("compare", "stock", "-p", "default", *TINY, "--repeats", "1", "--engine",
                        "slurm", "--node-python", str(link), "--results", str(results))  # fmt: skip
    assert code == 0, text
    (job,) = (only_session(results) / "slurm" / slurm.node).glob("batch-*/job.sh")
    assert f"exec {link} -m kit _worker" in job.read_text()
    assert all(r.ok for r in load_session(only_session(results)))


def test_slurm_and_docker_on_one_machine_take_turns(slurm, docker_client, kit_containers, tmp_path):
    """The node's job holds its runs until their turn: one table, the scheduler's cost."""
    code, text = invoke("compare", "stock", "-p", "default", *TINY, "--repeats", "2", "--engine",
                        "slurm", "--engine", "docker", "--results", str(tmp_path))  # fmt: skip
    assert code == 0, text
    assert f"{slurm.node} and docker run on one machine" in text
    runs = sorted(load_session(only_session(tmp_path)), key=lambda r: r.started)
    assert sorted(r.engine for r in runs) == sorted([slurm.node, slurm.node, "docker", "docker"])
    assert all(r.ok for r in runs)
    for before, after in itertools.pairwise(runs):
        assert before.ended <= after.started, (before.engine, after.engine)


def test_clean_cancels_kits_jobs_left_in_the_queue(slurm):
    mine = subprocess.run(["sbatch", "--parsable", "--job-name=kit-stray", "--wrap", "sleep 300"],
                          capture_output=True, text=True, check=True, cwd="/tmp")  # fmt: skip
    other = subprocess.run(["sbatch", "--parsable", "--job-name=not-kit", "--wrap", "sleep 300"],
                           capture_output=True, text=True, check=True, cwd="/tmp")  # fmt: skip
    try:
        code, text = invoke("clean", "--slurm")
        assert code == 0 and "cancelled 1 Slurm job(s) left by kit" in text, text
        assert _queue() == []
        argv = ["squeue", "-h", "-o", "%i"]
        left = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert other.stdout.strip().split(";")[0] in left.stdout.split()
        assert mine.stdout.strip().split(";")[0] not in left.stdout.split()
    finally:
        subprocess.run(["scancel", other.stdout.strip().split(";")[0]], check=False)
