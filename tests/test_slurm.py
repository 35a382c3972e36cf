"""The Slurm engine's pure parts: its options, the job scripts and sbatch lines it writes (golden
files), its shares of a plan, and what it reads from squeue, scontrol and the probe step
(captured from a real Slurm 22.05). tests/test_slurm_cluster.py runs it on a real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.campaign.placing import place
from kit.campaign.request import What
from kit.engines.slurm.commands import (
    ended_reason,
    job_script,
    parse_probe,
    parse_scontrol,
    parse_squeue,
    probe_argv,
    sbatch_argv,
)
from kit.engines.slurm.options import NodeEngine, SlurmOptions
from kit.engines.slurm.share import read_share, share_record
from kit.errors import UsageError
from kit.model.workload import Model, WorkloadSpec
from tests.conftest import DATA, invoke_with
from tests.fakes import C4, FakeEngine

SLURM = DATA / "slurm"
TINY_W = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)
OPTIONS = SlurmOptions(partition="cpu", nodelist=("c5-1",), account="ml", time="1:00:00",
                       constraint="c5|m7i", extra=("--qos=high",))  # fmt: skip


def _plan():
    what = What(("stock", "intel"), ("default", "tuned"), workload=TINY_W, repeats=2)
    return place(what, C4, ["c5-1"])


def test_a_nodes_job_is_its_sbatch_line_and_script():
    folder = Path("/shared/results/20261201T120000Z/slurm/c5-1/batch-0001")
    argv = sbatch_argv(OPTIONS, "c5-1", 36, folder, folder / "job.sh", "20261201T120000Z")
    assert "\n".join(argv) + "\n" == (SLURM / "sbatch-c5-1.txt").read_text()
    plan = _plan()
    script = job_script("/opt/kit/.venv/bin/python", folder / "share.json", "20261201T120000Z",
                        "c5-1", [s.index for s in plan])  # fmt: skip
    assert script == (SLURM / "job-c5-1.sh").read_text()


def test_the_probe_step_runs_one_task_on_each_node():
    argv = probe_argv(OPTIONS, Path("/shared/results"), "t0k3n")
    head = argv[: argv.index("python3")]
    assert head == ["srun", "--nodes=1", "--nodelist=c5-1", "--ntasks-per-node=1",
                    "--exclusive", "--job-name=kit-probe", "--partition=cpu", "--account=ml",
                    "--time=1:00:00", "--constraint=c5|m7i", "--qos=high"]  # fmt: skip
    assert argv[-3:] == ["/shared/results", "t0k3n", "docker"]
    compile(argv[argv.index("-c") + 1], "probe", "exec")  # the code it runs there is Python


def test_a_share_holds_the_plan_exactly(tmp_path):
    plan = _plan()
    path = tmp_path / "share.json"
    path.write_text(json.dumps(share_record(plan, "S", "c5-1", NodeEngine.podman, {"h": 1})))
    data, specs = read_share(path)
    assert specs == plan
    assert data["node_engine"] == "podman" and data["host"] == {"h": 1}


def test_squeue_and_scontrol_are_read_as_slurm_prints_them():
    queued = parse_squeue((SLURM / "squeue.txt").read_text())
    assert queued["1"] == ("RUNNING", "None")
    assert queued["2"] == ("PENDING", "Resources")
    cancelled = parse_scontrol((SLURM / "scontrol-cancelled.txt").read_text())
    assert cancelled["JobState"] == "CANCELLED"
    assert cancelled["JobName"].startswith("kit-")
    assert ended_reason(cancelled).startswith("CANCELLED")
    done = parse_scontrol((SLURM / "scontrol-completed.txt").read_text())
    assert done["JobState"] == "COMPLETED" and ended_reason(done) == "COMPLETED"
    timeout = {"JobState": "TIMEOUT", "Reason": "TimeLimit", "ExitCode": "0:15"}
    assert ended_reason(timeout) == "TIMEOUT, reason TimeLimit, exit code 0:15"


def _probe_line(**over) -> str:
    raw = json.loads((DATA / "probe" / "epyc-2cpu-container.txt").read_text().split(": ", 1)[1])
    raw.update({"node": "c5-1", "shared": True, "unwritable": None, "images": {}}, **over)
    return "kit-probe: " + json.dumps(raw)


def test_the_probe_says_when_the_results_folder_is_not_shared_or_writable():
    (node,) = parse_probe(_probe_line(images={"kit/tensorflow:stock": "sha256:ab"}), Path("/r"))
    assert node.node == "c5-1" and len(node.facts.topology.cpus) == 2
    assert node.images == {"kit/tensorflow:stock": "sha256:ab"}
    with pytest.raises(UsageError, match="does not see this host's results folder /r"):
        parse_probe(_probe_line(shared=False), Path("/r"))
    with pytest.raises(UsageError, match="cannot write the results folder /r: Read-only"):
        parse_probe(_probe_line(unwritable="Read-only file system (/r/x)"), Path("/r"))


@pytest.mark.parametrize(
    "args, said",
    [
        (["--time", "soon"], "--time 'soon' is not a Slurm time limit"),
        (["--nodelist", "a b"], "is not a node name"),
        (["--slurm-nodes", "0"], "--slurm-nodes must be between 1 and 4096"),
        (["--nodelist", "a,b", "--slurm-nodes", "3"], "disagree"),
        (["--slurm-arg", "qos=high"], "is not a long sbatch option"),
        (["--partition", "cpu;rm"], "characters Slurm does not take"),
    ],
)
def test_bad_slurm_options_are_refused_before_anything_runs(args, said, tmp_path):
    engine = FakeEngine({})
    code, text = invoke_with(engine, "compare", "stock", "--engine", "slurm", *args,
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and said in text, text
    assert engine.ran == []


def test_slurm_options_need_the_slurm_engine(tmp_path):
    code, text = invoke_with(FakeEngine({}), "compare", "stock", "--partition", "cpu",
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and "go with --engine slurm" in text, text


def test_slurms_own_constraint_forms_are_taken_as_written():
    for constraint in ("c5|m7i", "[c5*1&m7i*1]", "avx512&(intel|amd)"):
        assert f"--constraint={constraint}" in SlurmOptions(constraint=constraint).common()
