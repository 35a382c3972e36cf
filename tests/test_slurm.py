"""The Slurm engine's pure parts: its options, the job scripts and sbatch lines it writes (golden
files), its shares of a plan, and what it reads from squeue, scontrol and the probe step
(captured from a real Slurm 22.05). tests/test_slurm_cluster.py runs it on a real cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit import __version__
from kit.campaign.placing import place
from kit.campaign.request import What
from kit.engines.slurm.commands import (
    check_nodes_up,
    ended_reason,
    job_script,
    parse_probe,
    parse_scontrol,
    parse_sinfo,
    parse_squeue,
    probe_argv,
    probe_code,
    probe_failure,
    probe_records,
    sbatch_argv,
)
from kit.engines.slurm.engine import _Follower
from kit.engines.slurm.options import NodeEngine, SlurmOptions
from kit.engines.slurm.share import read_share, share_record
from kit.errors import KitError, UsageError
from kit.model.workload import Model, WorkloadSpec
from tests.conftest import DATA, REPO, invoke_with
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
    argv = probe_argv(OPTIONS, Path("/shared/results"), "t0k3n", "/opt/kit/.venv/bin/python")
    head = argv[: argv.index("/opt/kit/.venv/bin/python")]
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
    return "\n".join(_parts(raw))


def _parts(raw: dict, size: int = 700) -> list[str]:
    """A node's facts as the probe prints them: short numbered parts."""
    text = json.dumps(raw)
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    node = raw["node"]
    return [f"kit-probe-part: {node} {i + 1}/{len(chunks)} {c}" for i, c in enumerate(chunks)]


def _parse(text: str, python: str = "/opt/py", version: str = "0.1.0"):
    return parse_probe(text, Path("/r"), python, version)


def test_the_probe_says_when_the_results_folder_is_not_shared_or_writable():
    (node,) = _parse(_probe_line(images={"kit/tensorflow:stock": "sha256:ab"}))
    assert node.node == "c5-1" and len(node.facts.topology.cpus) == 2
    assert node.images == {"kit/tensorflow:stock": "sha256:ab"}
    with pytest.raises(UsageError, match="does not see this host's results folder /r"):
        _parse(_probe_line(shared=False))
    with pytest.raises(UsageError, match="cannot write the results folder /r: Read-only"):
        _parse(_probe_line(unwritable="Read-only file system (/r/x)"))


def test_the_parts_of_two_nodes_facts_come_together_however_they_interleave():
    raw = json.loads((DATA / "probe" / "epyc-2cpu-container.txt").read_text().split(": ", 1)[1])
    a = _parts({**raw, "node": "n1", "shared": True, "images": {}}, size=300)
    b = _parts({**raw, "node": "n2", "shared": True, "images": {}}, size=300)
    assert len(a) > 3
    mixed = [line for pair in zip(a, reversed(b), strict=True) for line in pair]
    found = _parse("srun: a line of Slurm's own\n" + "\n".join(mixed))
    assert [n.node for n in found] == ["n1", "n2"]
    assert all(len(n.facts.topology.cpus) == 2 for n in found)
    with pytest.raises(KitError, match="output from node n1 is incomplete"):
        _parse("\n".join(a[:-1]))


def test_a_node_whose_python_lacks_kit_or_has_another_is_named_with_what_to_install():
    assert _parse(_probe_line(kit="0.1.0"))[0].node == "c5-1"
    with pytest.raises(UsageError, match="node c5-1 has no kit for /opt/py") as lacks:
        _parse(_probe_line(kit=None))
    assert "install kit 0.1.0 there" in lacks.value.hint and "--node-python" in lacks.value.hint
    with pytest.raises(UsageError, match=r"node c5-1 has kit 0\.0\.9 for /opt/py, this host kit"):
        _parse(_probe_line(kit="0.0.9"))


def test_the_probe_finds_kit_only_where_that_python_can_import_it(tmp_path):
    """The probe's own code, run here as srun runs it on a node: this venv's Python has kit,
    the system's does not, even from a working directory that holds kit's source."""
    (tmp_path / ".kit-shared").write_text("t0k3n")

    def probed(python: str) -> dict:
        argv = [python, "-c", probe_code(), str(tmp_path), "t0k3n", "local"]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=True)
        assert all(len(line) < 1000 for line in done.stdout.splitlines())
        (record,) = probe_records(done.stdout)
        return record

    assert probed(sys.executable)["kit"] == __version__
    system = shutil.which("python3", path="/usr/bin")
    assert system is not None
    assert probed(system)["kit"] is None


def test_a_node_without_the_python_is_named_from_sruns_error():
    stderr = (SLURM / "probe-no-python.txt").read_text()
    failure = probe_failure(stderr, 2, "/opt/kit/bin/python")
    assert isinstance(failure, UsageError)
    assert str(failure).startswith("node c5-1 has no")
    assert "has no /opt/kit/bin/python" in str(failure) and "--node-python" in failure.hint
    denied = probe_failure((SLURM / "probe-python-denied.txt").read_text(), 13, "/home/me/py")
    assert str(denied).startswith("node c5-1 cannot run /home/me/py: Permission denied")
    other = probe_failure("srun: error: Unable to allocate resources: Invalid partition\n", 1, "p")
    assert "probe step failed (exit 1): srun: error: Unable to allocate" in str(other)


@pytest.mark.parametrize(
    "args, said",
    [
        (["--time", "soon"], "--time 'soon' is not a Slurm time limit"),
        (["--nodelist", "a b"], "is not a node name"),
        (["--slurm-nodes", "0"], "--slurm-nodes must be between 1 and 4096"),
        (["--nodelist", "a,b", "--slurm-nodes", "3"], "disagree"),
        (["--slurm-arg", "qos=high"], "is not a long sbatch option"),
        (["--partition", "cpu;rm"], "characters Slurm does not take"),
        (["--node-python", "venv/bin/python"], "--node-python 'venv/bin/python' is not a path"),
        (["--node-python", ""], "is not a path on the nodes"),
    ],
)
def test_bad_slurm_options_are_refused_before_anything_runs(args, said, tmp_path):
    engine = FakeEngine({})
    code, text = invoke_with(engine, "compare", "stock", "--engine", "slurm", *args,
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and said in text, text
    assert engine.ran == []


@pytest.mark.parametrize("option", [["--partition", "cpu"], ["--node-python", "/opt/py"]])
def test_slurm_options_need_the_slurm_engine(option, tmp_path):
    code, text = invoke_with(FakeEngine({}), "compare", "stock", *option,
                             "--results", str(tmp_path))  # fmt: skip
    assert code == 2 and "go with --engine slurm" in text, text


def test_slurms_own_constraint_forms_are_taken_as_written():
    for constraint in ("c5|m7i", "[c5*1&m7i*1]", "avx512&(intel|amd)"):
        assert f"--constraint={constraint}" in SlurmOptions(constraint=constraint).common()


SINFO = "n1 idle\nn2 down*\nn3 drained\nn4 mixed\nn5 allocated\nn6 idle*\nn7 draining\n"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (SlurmOptions(nodelist=("n1", "n2")), "node n2 is down* (sinfo)"),
        (SlurmOptions(nodelist=("n3", "n6")), "node n3 is drained, n6 is idle* (sinfo)"),
        (SlurmOptions(nodelist=("n9",)), "--nodelist n9: no such node in the cluster"),
        (SlurmOptions(nodes=4), "--slurm-nodes 4, but 3 of the cluster's nodes are up (n1, n4, n5"),
        (SlurmOptions(nodes=4, partition="cpu"), "3 of partition cpu's nodes are up"),
    ],
)
def test_nodes_that_are_down_are_refused_before_anything_is_submitted(options, said):
    with pytest.raises(UsageError) as caught:
        check_nodes_up(parse_sinfo(SINFO), options)
    assert said in str(caught.value)


def test_nodes_that_are_up_pass_busy_or_not():
    states = parse_sinfo(SINFO)
    check_nodes_up(states, SlurmOptions(nodelist=("n1", "n4", "n5")))
    check_nodes_up(states, SlurmOptions(nodes=3))


def test_a_log_the_node_starts_again_starts_again_in_the_session(tmp_path):
    source, target, said = tmp_path / "node.log", tmp_path / "session.log", []
    follower = _Follower(source, target, said.append)
    source.write_text("step 1\nstep 2\nstep 3\n")
    follower.poll()
    source.write_text("step 1\n")  # the job was requeued: the run starts again
    follower.poll()
    follower.poll()
    source.write_text("step 1\nstep 2\ntotal 9.5\n")
    follower.poll()
    assert target.read_text() == "step 1\nstep 2\ntotal 9.5\n"
    assert any("started again" in line for line in said)


def test_each_nodes_rerun_line_names_that_node_alone_whatever_the_session_spans():
    """A run recorded on one node of a --slurm-nodes 2 session reruns on that node: its line
    is one srun there (kit asked every engine for its run's line, and this one refused)."""
    from kit.engines.slurm.commands import NodeProbe
    from kit.engines.slurm.engine import SlurmEngine
    from tests.fakes import facts_for

    probe = NodeProbe("c5-1", facts_for(C4, "c5-1"), None, None)
    engine = SlurmEngine(probe, SlurmOptions(partition="cpu", nodes=2))
    line = engine.rerun_line(_plan()[0], "s1")
    assert line.startswith("srun --nodes=1 --ntasks=1 --exclusive --nodelist=c5-1 ")
