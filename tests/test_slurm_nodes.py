"""--engine slurm on a real two-node Slurm cluster (tests/cluster.py): slurmctld on this host,
each node a container of kit's stock image with slurmd and munge, its own hostname and CPU, the
local engine on the image's own TensorFlow. The nodes' runs happen at the same time, each
placed on the node's own CPU; and the faults a cluster has: a node lost, the controller
restarted, a job requeued, Ctrl-C with jobs on both nodes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.cluster import _client, start_cluster
from tests.conftest import invoke, only_session, session_dirs
from tests.engines import _wait_for, using_slurm
from tests.test_faults import start_kit

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, kit_images):
    def start():
        return start_cluster(tmp_path_factory.mktemp("cluster"), 2, say=lambda _: None)

    with using_slurm(start, "the cluster") as made:
        yield made


def _runs(session) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(session.glob("[0-9]*.json"))]


def test_two_nodes_run_at_once_each_on_its_own_cpu(cluster):
    results = cluster.root / "results-two"
    code, text = invoke("compare", "stock", "-p", "default", "-p", "tuned", "--engine", "slurm",
                        "--node-engine", "local", "--slurm-nodes", "2", "--model", "tiny",
                        "--batch-size", "8", "--num-batches", "12", "--num-warmup-batches", "1",
                        "--repeats", "2", "--results", str(results))  # fmt: skip
    assert code == 0, text
    assert "share one kernel on CPUs apart: they run at once" in text, text
    runs = _runs(only_session(results))
    assert {r["engine"] for r in runs} == {"n1", "n2"} and len(runs) == 8
    for run in runs:
        cpu = str(cluster.node(run["engine"]).cpu)
        assert run["status"] == "ok", run.get("error")
        assert run["host"]["usable_cpus"] == cpu  # the node's own CPU, not the host's
        assert run["cpus"] == cpu and run["effective_cpus"] == cpu, run["cpus"]
    spans = {
        name: [(datetime.fromisoformat(r["started"]), datetime.fromisoformat(r["ended"]))
               for r in runs if r["engine"] == name]
        for name in ("n1", "n2")
    }  # fmt: skip
    overlap = [(a, b) for a in spans["n1"] for b in spans["n2"] if a[0] < b[1] and b[0] < a[1]]
    assert overlap, f"the nodes took turns: {spans}"
    assert "runs on CPU" in text  # each node's host line says which CPU its runs have
    assert (
        subprocess.run(["squeue", "-h"], capture_output=True, text=True, check=False).stdout.strip()
        == ""
    )


def test_a_campaign_spread_over_the_nodes_deals_each_cells_repeats_over_both(cluster):
    results = cluster.root / "results-spread"
    code, text = invoke("compare", "stock", "-p", "default", "-p", "tuned", "--engine", "slurm",
                        "--node-engine", "local", "--slurm-nodes", "2", "--spread", "--model",
                        "tiny", "--batch-size", "8", "--num-batches", "12",
                        "--num-warmup-batches", "1", "--repeats", "4", "--keep-equivalent",
                        "--results", str(results))  # fmt: skip
    assert code == 0, text
    runs = _runs(only_session(results))
    assert len(runs) == 8 and all(r["status"] == "ok" for r in runs)
    for profile in ("default", "tuned"):
        on = sorted(r["engine"] for r in runs if r["profile"] == profile)
        assert on == ["n1", "n1", "n2", "n2"], on  # a balanced share of every cell on each
    for run in runs:
        assert run["cpus"] == str(cluster.node(run["engine"]).cpu)  # placed on its own node
    assert "spread over alike machines n1, n2: one row per cell" in text
    table = text[text.rindex("spread over alike machines") :].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in table[3:]] == ["stock", "stock"], table  # a row a cell
    assert all("n1:0 n2:1" in line for line in table[3:]), table  # each node on its own CPU


def _long(results: Path, *more: str) -> list[str]:
    """Two cells, two repeats on each node, each run long enough to be caught running."""
    return [sys.executable, "-m", "kit", "compare", "stock", "-p", "default", "-p", "tuned",
            "--engine", "slurm", "--node-engine", "local", "--slurm-nodes", "2", "--model",
            "tiny", "--batch-size", "8", "--num-batches", "60", "--num-warmup-batches", "1",
            "--repeats", "2", "--results", str(results), *more]  # fmt: skip


def _once(proc: subprocess.Popen, results: Path, done, what: str, wait_s: float = 240) -> Path:
    """The session's folder once ``done(runs)`` holds for the runs it has recorded."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        sessions = session_dirs(results)
        if sessions and done(_runs(sessions[0])):
            return sessions[0]
        if proc.poll() is not None:
            pytest.fail(f"kit ended before {what}: {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"waited {wait_s:g}s for {what}")


def _queue() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout.splitlines()


def _shared(cluster, request) -> Path:
    """A results folder the nodes share (the cluster's folder is mounted on every node)."""
    folder = cluster.root / request.node.name[:60]
    folder.mkdir()
    return folder


def _on(runs: list[dict], node: str) -> list[dict]:
    return [r for r in runs if r["engine"] == node]


def _running_log(session: Path, node: str) -> bool:
    """A run of the node has started and written to its log, and is not over."""
    plan = json.loads((session / "session.json").read_text())["plan"]
    over = {r["index"] for r in _runs(session)}
    for entry in plan:
        if entry["engine"] == node and entry["index"] not in over:
            logs = list(session.glob(f"{entry['index']:02d}-*.log"))
            return bool(logs) and logs[0].stat().st_size > 0
    return False


def _state(job: str) -> str:
    argv = ["squeue", "-h", "-j", job, "-o", "%T"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()


def _jobs_by_node() -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %N"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return {line.split()[1]: line.split()[0] for line in out.stdout.splitlines()
            if len(line.split()) == 2}  # fmt: skip


def test_a_node_lost_fails_its_unfinished_runs_and_resume_finishes_them(cluster, request):
    results = _shared(cluster, request)
    proc = start_kit(_long(results))
    session = _once(proc, results, lambda runs: _on(runs, "n2"), "a run finished on n2")
    cluster.kill_node("n2")
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, err
    runs = _runs(session)
    assert len(runs) == 8
    assert all(r["status"] == "ok" for r in _on(runs, "n1")), "the other node went on"
    kept = [r for r in _on(runs, "n2") if r["status"] == "ok"]
    lost = [r for r in _on(runs, "n2") if r["status"] != "ok"]
    assert kept and lost, [r["status"] for r in _on(runs, "n2")]
    assert all("NODE_FAIL" in r["error"] for r in lost), [r["error"] for r in lost]
    assert f"--resume {session.name}" in err
    # While n2 is down, the resume is refused before anything is submitted, saying so.
    refused = subprocess.run(_long(results, "--resume", session.name), capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "--slurm-nodes 2, but 1 of the cluster's nodes are up (n1)" in refused.stderr
    cluster.start_node("n2")
    again = subprocess.run(_long(results, "--resume", session.name), capture_output=True,
                           text=True, timeout=300, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    runs = _runs(session)
    assert len(runs) == 8 and all(r["status"] == "ok" for r in runs)
    assert {r["started"] for r in kept} <= {r["started"] for r in runs}, "kept, not run again"
    assert _queue() == []


def test_kit_keeps_following_its_jobs_while_the_controller_restarts(cluster, request):
    results = _shared(cluster, request)
    proc = start_kit(_long(results))
    session = _once(proc, results, lambda runs: len(runs) >= 1, "a first run")
    cluster.stop_controller()
    time.sleep(8)  # several of kit's state checks find no controller; the nodes go on
    cluster.start_controller()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    runs = _runs(session)
    assert sorted(r["index"] for r in runs) == list(range(1, 9))
    assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]
    assert _queue() == []


def test_a_requeued_job_counts_each_run_once_and_loses_none(cluster, request):
    results = _shared(cluster, request)
    proc = start_kit(_long(results))
    session = _once(proc, results, lambda runs: _on(runs, "n1"), "a run finished on n1")
    job = _jobs_by_node()["n1"]
    _wait_for(lambda: _running_log(session, "n1"), 60, "n1's next run to write its log")
    # kit's jobs are not requeued by Slurm itself (a node failure, a preemption) ...
    refused = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert refused.returncode != 0, refused
    # ... but an administrator may allow it and requeue the job by hand (and let it start at
    # once: Slurm holds a requeued job for two minutes).
    subprocess.run(["scontrol", "update", f"JobId={job}", "Requeue=1"], check=True)
    subprocess.run(["scontrol", "requeue", job], check=True)
    _wait_for(lambda: _state(job) == "PENDING", 60, f"job {job} to be pending again")
    # slurmd revoked the job's credential when it killed it, and takes a new one for the same
    # job only if it was made in a later second: a relaunch in the second of the kill is
    # refused ("Job N already killed, do not launch batch job"; seen once in CI).
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err
    assert "the run started again on its node (its Slurm job was requeued)" in out + err
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                           check=True)  # fmt: skip
    assert "Restarts=1" in shown.stdout, "the job ran its share again"
    runs = _runs(session)
    assert sorted(r["index"] for r in runs) == list(range(1, 9))
    assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]
    lines = (session / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8, "each run recorded once"
    for run in runs:  # each log is one run's 60 steps and total: a run started again replaced it
        assert Path(run["log_path"]).read_text().count("images/sec") == 61, run["log_path"]
    assert _queue() == []


def test_ctrl_c_cancels_the_jobs_on_both_nodes_and_leaves_no_process(cluster, request):
    results = _shared(cluster, request)
    proc = start_kit(_long(results))
    session = _once(proc, results, lambda runs: _on(runs, "n1") and _on(runs, "n2"),
                    "a run finished on each node")  # fmt: skip
    assert len(_jobs_by_node()) == 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert f"--resume {session.name}" in err
    assert _queue() == []
    for node in cluster.nodes:
        top = _client().containers.get(node.container).top(ps_args="-eo pid,args")
        left = [p[-1] for p in top["Processes"] if "python" in p[-1] or "kit" in p[-1]]
        assert left == [], f"{node.name} still runs {left}"
