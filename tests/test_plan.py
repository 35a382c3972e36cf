"""`kit plan`: what compare would run, on the seed's 2-socket topology, as golden output. The
docker run line of a plan is executed for real in tests/test_docker.py."""

import json
import os
import re
from pathlib import Path

import pytest

from kit import __version__
from kit.host.topology_file import parse_topology_text, to_json
from tests.conftest import DATA, invoke, invoke_with
from tests.fakes import C4, FakeEngine

SEED = str(DATA / "topology" / "c4.8xlarge.lscpu")
PROFILES = ("default", "tuned", "interleave", "node0", "one-per-core", "membind")
GOLDEN = DATA / "plan"


def _golden(name: str, text: str) -> None:
    """Compare with tests/data/plan/NAME (KIT_UPDATE_GOLDEN=1 rewrites it); kit's version is
    a placeholder there."""
    text = text.replace(f"kit.version={__version__}", "kit.version=VERSION")
    text = text.replace(str(DATA), "DATA")
    path = GOLDEN / name
    if os.environ.get("KIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def _plan(*args: str) -> str:
    code, text = invoke("plan", "intel", *args, "--repeats", "1", "--topology", SEED)
    assert code == 0, text
    return text


def test_plan_of_the_seed_profiles():
    _golden("seed-profiles.txt", _plan(*(a for p in PROFILES for a in ("-p", p))))


@pytest.mark.parametrize("instances", ["2", "4", "per-node"])
def test_plan_of_instances_on_the_seed_host(instances):
    text = _plan("-p", "tuned", "-p", "node0", "--instances", instances)
    _golden(f"seed-instances-{instances}.txt", text)


def test_plan_as_json_is_versioned_and_complete():
    runs = json.loads(_plan("-p", "interleave", "--format", "json"))
    assert runs["schema"] == 3
    (run,) = runs["runs"]
    assert run["cpuset"] == "0-35" and run["numactl"] == ["numactl", "--interleave=all"]
    assert run["capabilities"] == ["SYS_NICE"] and run["env"]["OMP_NUM_THREADS"] == "18"
    assert run["rerun"].startswith("docker run --rm --cpuset-cpus 0-35 ")


def test_plan_starts_nothing_and_needs_no_image():
    engine = FakeEngine({}, name="docker", images=set())
    code, text = invoke_with(engine, "plan", "kit/never-built:x", "-p", "tuned", "--cpus", "1")
    assert code == 0, text
    assert engine.ran == []
    assert "# kit/never-built:x:tuned on docker" in text  # as typed (no emoji for ":x:")
    assert "fake-engine run kit/never-built:x cpus=1" in text  # the engine's own rerun line


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"\xff\xfe\x00garbage", "not UTF-8"), (b"hello world\n", "not a topology")],
)
def test_a_topology_file_that_is_none_is_refused(tmp_path, content, match):
    path = tmp_path / "topo"
    path.write_bytes(content)
    code, text = invoke("plan", "stock", "--topology", str(path))
    assert code == 2 and match in text and "lscpu -p" in text


@pytest.mark.parametrize("command", ["compare", "run", "verify", "plan"])
@pytest.mark.parametrize(
    "reference",
    ["UPPER/Case:bad", "kit/tensorflow:stock;x", "kit/tensorflow:", "x@sha256:abc", "",
     "a" * 300, "tëst", "has space"],
)  # fmt: skip
def test_malformed_image_references_are_refused_before_any_engine(tmp_path, command, reference):
    class Refusing:
        def engine(self, kind, endpoint=None):
            raise AssertionError("an engine was asked for")

        def this_host(self):
            from tests.fakes import EPYC

            return EPYC

    code, text = invoke_with(Refusing(), command, reference, "--results", str(tmp_path)) if (
        command != "plan") else invoke_with(Refusing(), command, reference)  # fmt: skip
    assert code == 2, text
    assert "neither a flavor" in text and "Traceback" not in text


def test_a_profiles_run_settings_override_the_command_line_for_its_cells():
    from dataclasses import replace

    from kit.model.profiles import load_profiles
    from kit.model.workload import WorkloadSpec
    from kit.planning.plan import build_plan
    from tests.fakes import C4

    tuned = load_profiles()["tuned"]
    wide = replace(tuned, name="wide", instances=2, batch_size=64)
    plan = build_plan(["intel"], [tuned, wide], WorkloadSpec(batch_size=8), C4, repeats=1)
    by_profile = {}
    for spec in plan:
        by_profile.setdefault(spec.profile.name, []).append(spec)
    assert [s.workload.batch_size for s in by_profile["tuned"]] == [8]
    assert [s.workload.batch_size for s in by_profile["wide"]] == [64, 64]
    assert [s.instances for s in by_profile["wide"]] == [2, 2]


MACHINES = ("c4.8xlarge", "c5.18xlarge")  # 2 sockets, SMT siblings n and n + CPUs/2
PLANNED = ("-p", "tuned", "-p", "one-per-core", "-p", "node0", "-p", "interleave", "-p", "membind")


def _plan_json(topology: Path, *extra: str) -> str:
    code, text = invoke(
        "plan", "intel", *PLANNED, "--topology", str(topology), "-f", "json", *extra
    )
    assert code == 0, text
    return text


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("instances", ["1", "per-node"])
def test_every_topology_input_of_a_machine_gives_the_same_plan(tmp_path, machine, instances):
    lscpu = DATA / "topology" / f"{machine}.lscpu"
    numactl = DATA / "topology" / f"{machine}.numactl-H"
    as_json = tmp_path / "topology.json"
    as_json.write_text(json.dumps(to_json(parse_topology_text(lscpu.read_text()))))

    def runs(path, *args):  # the runs, not the summary: it names the file the topology came from
        return json.loads(_plan_json(path, *args, "--instances", instances))["runs"]

    wanted = runs(lscpu)
    assert wanted[0]["cpus"] != wanted[1]["cpus"]
    assert runs(numactl, "--threads-per-core", "2") == wanted
    assert runs(as_json) == wanted
    assert runs(lscpu, "--threads-per-core", "2") == wanted


@pytest.mark.parametrize("machine", MACHINES)
def test_a_numactl_capture_alone_is_refused_with_what_it_lacks(machine):
    numactl = DATA / "topology" / f"{machine}.numactl-H"
    code, text = invoke("plan", "intel", "-p", "tuned", "--topology", str(numactl))
    assert code == 2 and "says nothing of cores" in text and "--threads-per-core" in text
    code, text = invoke("plan", "intel", "-p", "tuned", "--threads-per-core", "2")
    assert code == 2 and "goes with --topology" in text
    lscpu = DATA / "topology" / f"{machine}.lscpu"
    code, text = invoke("plan", "intel", "--topology", str(lscpu), "--threads-per-core", "1")
    assert code == 2 and "shows 2 per core" in text


def _plan_runs(*args: str) -> list[dict]:
    return json.loads(_plan(*args, "--format", "json"))["runs"]


def test_interleave_under_instances_spans_every_node():
    runs = _plan_runs("-p", "interleave", "--instances", "2")
    assert [r["cpuset"] for r in runs] == ["0-8,18-26", "9-17,27-35"]
    assert all(
        r["cpuset_mems"] == "0-1" and r["numactl"] == ["numactl", "--interleave=all"] for r in runs
    )


@pytest.mark.parametrize("policy", ["membind", "preferred"])
def test_a_remote_memory_policy_under_instances_stays_on_the_cells_last_node(policy):
    runs = _plan_runs("-p", policy, "--instances", "per-node")
    assert [r["numactl"] for r in runs] == [["numactl", f"--{policy}=1"]] * 2
    assert [r["cpuset_mems"] for r in runs] == ["0-1", "1"]  # node 0's instance reaches node 1


def test_instances_without_a_memory_policy_keep_memory_local():
    runs = _plan_runs("-p", "tuned", "--instances", "2")
    assert [r["cpuset_mems"] for r in runs] == ["0", "1"] and all(r["numactl"] == [] for r in runs)


def test_cpus_an_instance_split_leaves_idle_are_said():
    code, text = invoke("plan", "intel", "-p", "tuned", "--instances", "4", "--topology", SEED)
    assert code == 0 and "leave CPUs 8,17,26,35 idle" in text
    code, text = invoke("plan", "intel", "-p", "tuned", "--instances", "2", "--topology", SEED)
    assert code == 0 and "idle" not in text


def test_the_plan_fits_120_columns_with_one_rerun_line_a_cell():
    profiles = [a for p in PROFILES for a in ("-p", p)]
    code, text = invoke("plan", "intel", *profiles, "--repeats", "3", "--topology", SEED)
    assert code == 0, text
    assert max(len(line) for line in text.splitlines()) <= 120
    table = text[text.index("cell ") : text.index("\n\n", text.index("cell "))].splitlines()[2:]
    cells = [line.split()[0] for line in table]
    reruns = [line for line in text.splitlines() if line.startswith("# ")]
    assert len(reruns) == len(cells) == len(PROFILES)  # repeats are not lines of their own
    assert all(re.search(r"\(runs \d+, \d+, \d+\)", line) for line in reruns)


def test_the_header_names_the_runs_the_topology_and_an_estimate():
    text = _plan("-p", "default", "-p", "tuned")
    assert "2 cells x 1 repeats = 2 runs, each round in its own order, on docker" in text
    assert "c4.8xlarge.lscpu: 2 socket(s), 2 NUMA node(s), 18 cores, 36 CPUs (SMT 2)" in text
    assert "estimate: unknown (the plan is for another machine)" in text


def test_the_estimate_comes_from_this_hosts_recorded_runs_of_the_cells(tmp_path, monkeypatch):
    import kit.campaign.preview as planning

    engine = FakeEngine({"stock:default": 5.0, "stock:tuned": 6.0}, name="docker", delay=0.3)
    args = ("stock", "-p", "default", "-p", "tuned", "--results", str(tmp_path))
    code, text = invoke_with(engine, "compare", *args, "--repeats", "2")
    assert code == 0, text
    monkeypatch.setattr(planning.socket, "gethostname", lambda: "fake-host")
    code, text = invoke_with(engine, "plan", *args, "--repeats", "3")
    assert code == 0, text
    assert re.search(r"estimate: about \d+ s, from 4 recorded runs here", text)
    code, text = invoke_with(engine, "plan", *args, "--repeats", "auto", "--min-repeats", "2",
                             "--max-repeats", "4")  # fmt: skip
    assert code == 0, text
    found = re.search(r"estimate: about (\d+) s \(2 rounds\) to (\d+) s \(4 rounds, as --repeats "
                      r"auto decides\), from 4 recorded runs here", text)  # fmt: skip
    assert found and 1.5 < int(found[2]) / max(int(found[1]), 1) < 2.5, text
    code, text = invoke_with(engine, "plan", *args, "-p", "interleave", "--keep-equivalent")
    assert "unknown for stock:interleave (no run here yet)" in text
    code, text = invoke_with(engine, "plan", *args, "--model", "tiny")  # another workload
    assert "estimate: unknown (no recorded run" in text
    monkeypatch.setattr(planning.socket, "gethostname", lambda: "another-host")
    code, text = invoke_with(engine, "plan", *args)
    assert "estimate: unknown (no recorded run" in text


def test_a_disturbed_run_counts_for_the_estimate_and_a_failed_one_does_not(tmp_path, monkeypatch):
    """A disturbed or INVALID run ran its work to the end: its time is what the cell takes."""
    import sqlite3

    import kit.campaign.preview as planning

    engine = FakeEngine({"stock:default": 5.0}, name="docker")
    args = ("stock", "-p", "default", "--results", str(tmp_path))
    assert invoke_with(engine, "compare", *args, "--repeats", "2")[0] == 0
    monkeypatch.setattr(planning.socket, "gethostname", lambda: "fake-host")
    for status, said in (("disturbed", "from 2 recorded runs here"),
                         ("INVALID", "from 2 recorded runs here"),
                         ("failed", "estimate: unknown (no recorded run")):  # fmt: skip
        with sqlite3.connect(tmp_path / "kit.db") as db:
            db.execute("UPDATE runs SET status = ?, result = json_set(result, '$.status', ?)",
                       (status, status))  # fmt: skip
        code, text = invoke_with(engine, "plan", *args, "--repeats", "2")
        assert code == 0 and said in text, (status, text)


def test_a_hosts_plan_is_placed_on_its_own_topology_in_its_engines_form():
    engine = FakeEngine({}, name="c4", topology=C4)
    code, text = invoke_with(engine, "plan", "stock", "-p", "tuned", "--host", "c4=tcp://c4:2375")
    assert code == 0, text
    assert "c4, read by kit's probe there: 2 socket(s), 2 NUMA node(s), 18 cores" in text
    assert "fake-engine run kit/tensorflow:stock cpus=0-35" in text and "docker run" not in text
    code, text = invoke_with(engine, "plan", "stock", "--host", "c4=tcp://c4:2375",
                             "--topology", SEED)  # fmt: skip
    assert code == 2 and "--topology and --host" in text


def test_a_local_plan_reruns_with_taskset_and_the_flavors_python():
    code, text = invoke("plan", "stock", "-p", "tuned", "--engine", "local", "--repeats", "1")
    assert code == 0, text
    line = text.replace(" \\\n      ", " ")
    assert re.search(r"env PYTHONPATH=\S+ KMP_AFFINITY=\S+ .*taskset --cpu-list \S+ \S+/bin/python"
                     r" -m kit_workload", line)  # fmt: skip
    assert "docker run" not in line


@pytest.mark.parametrize(
    ("args", "said"),
    [(["--cpus", "99"], "CPU 99 not on the host of c4.8xlarge.lscpu"),
     (["--nodes", "4"], "node 4 not on the host of c4.8xlarge.lscpu"),
     (["--interleave", "7"], "--interleave node 7 not on the host of c4.8xlarge.lscpu")],
)  # fmt: skip
def test_refusals_speak_of_the_topology_in_use_and_the_option_typed(args, said):
    code, text = invoke("plan", "intel", "-p", "default", *args, "--topology", SEED)
    assert code == 2 and said in text, text
    assert "this host" not in text and "kit topology" not in text  # another machine's plan
    assert "profile 'default'" not in text  # the command line gave it, not the profile


def test_a_profiles_own_bad_node_is_blamed_on_the_profile(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[far]\nnumactl = { membind = "5" }\n')
    code, text = invoke("plan", "intel", "--profiles", str(path), "-p", "far", "--topology", SEED)
    assert code == 2 and "profile 'far'" in text and "node 5" in text, text


NODE_LINES = [("docker", "docker run --rm", "kit/tensorflow:stock python"),
              ("local", "env KMP_AFFINITY=", "python3 -m kit_workload")]  # fmt: skip


@pytest.mark.parametrize(("node_engine", "inner", "then"), NODE_LINES)
def test_a_slurm_plan_reruns_a_cell_as_one_step_on_a_whole_node(node_engine, inner, then):
    code, text = invoke("plan", "stock", "-p", "tuned", "--repeats", "1", "--engine", "slurm",
                        "--partition", "batch", "--node-engine", node_engine)  # fmt: skip
    assert code == 0, text
    line = text.replace(" \\\n      ", " ")
    assert "srun --nodes=1 --ntasks=1 --exclusive --partition=batch " + inner in line
    assert then in line and (node_engine == "docker" or "taskset --cpu-list " in line)
    assert "for the cluster's nodes" in text  # the topology is this host's, standing in


def test_a_quota_profile_leaves_the_cpuset_whole_and_limits_time_to_its_cpus():
    from kit.engines.container import docker_run_line
    from kit.model.profiles import load_profiles
    from kit.model.workload import WorkloadSpec
    from kit.planning.placement import CpuSelection
    from kit.planning.plan import build_plan
    from tests.fakes import EPYC

    profiles = load_profiles()
    default, quota, sized = (
        build_plan(["latest"], [profiles[p]], WorkloadSpec(), EPYC, CpuSelection(cpus=(0,)))[0]
        for p in ("default", "quota", "quota-sized")
    )
    assert default.cpus == (0,) and default.limits.cpu_quota is None
    assert quota.cpus == (0, 1) and quota.limits.cpu_quota == 1.0
    assert quota.profile.intra_op is None  # TensorFlow sizes its pools for the CPUs it sees
    assert sized.profile.intra_op == 1 and sized.environment()["OMP_NUM_THREADS"] == "1"
    assert "--cpuset-cpus 0-1" in docker_run_line(quota, "S") and "--cpus 1" in docker_run_line(
        quota, "S"
    )


def test_a_quota_profile_is_refused_with_instances_and_on_engines_without_cgroups(tmp_path):
    code, text = invoke("plan", "latest", "-p", "quota", "--instances", "2")
    assert code == 2 and "instances each take CPUs of their own" in text
    code, text = invoke("plan", "latest", "-p", "quota", "--engine", "local")
    assert code == 2 and "needs a container engine" in text
