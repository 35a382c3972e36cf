"""--engine slurm on a real two-node Slurm cluster (tests/cluster.py): slurmctld on this host,
each node a container of kit's stock image with slurmd and munge, its own hostname and CPU, the
local engine on the image's own TensorFlow. The nodes' runs happen at the same time, each
placed on the node's own CPU."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime

import pytest

from tests.cluster import start_cluster
from tests.conftest import _require_docker, invoke, only_session

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, kit_images):
    try:
        made = start_cluster(tmp_path_factory.mktemp("cluster"), 2, say=lambda _: None)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        if _require_docker():
            pytest.fail(f"KIT_REQUIRE_DOCKER is set but the cluster cannot start: {exc}")
        pytest.skip(f"cannot start the cluster: {exc}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(made.conf)
    yield made
    if previous is None:
        del os.environ["SLURM_CONF"]
    else:
        os.environ["SLURM_CONF"] = previous
    made.stop()


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
