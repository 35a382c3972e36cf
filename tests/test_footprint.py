"""Where a run's memory and threads went: the workload's reading of /proc, the record, and the
checks that make a run INVALID when they contradict its request (the real engine's side is in
tests/test_docker.py)."""

import json

import pytest

from kit.judging.footprint import footprint_problems
from kit.model.flavors import resolve_image
from kit.model.footprint import Footprint, MemoryUse, ThreadUse
from kit.model.profiles import Placement, load_profiles
from kit.model.results import RunResult
from kit.model.spec import RunSpec
from kit.model.workload import WorkloadSpec
from kit.workload.footprint import numa_maps_memory
from tests.conftest import invoke_with, json_rows, session_dirs
from tests.fakes import C4, FakeEngine, GivenEngines

NUMA_MAPS = """\
55d0c0a00000 default file=/usr/bin/python3.11 mapped=300 N0=200 N1=100 kernelpagesize_kB=4
55d0c1000000 default heap anon=5000 dirty=5000 N0=1000 N1=4000 kernelpagesize_kB=4
7f0000000000 interleave:0-1 anon=262144 dirty=262144 N0=131072 N1=131072 kernelpagesize_kB=4
7f1000000000 default anon=10 dirty=10 N1=10 kernelpagesize_kB=2048
7ffc00000000 default stack anon=33 dirty=33 N0=33 kernelpagesize_kB=4
"""


def test_numa_maps_counts_own_memory_per_node_apart_from_files():
    found = numa_maps_memory(NUMA_MAPS)
    assert found["anon_node_kb"] == {
        "0": (1000 + 131072 + 33) * 4,
        "1": (4000 + 131072) * 4 + 10 * 2048,
    }
    assert found["node_kb"]["0"] == found["anon_node_kb"]["0"] + 200 * 4
    memory = MemoryUse.from_json(found)
    assert memory is not None and memory.share({0, 1}) == 1.0
    assert 0.45 < memory.shares()[0] < 0.5


def test_the_record_keeps_the_footprint_through_json():
    found = Footprint(
        MemoryUse(((0, 1000), (1, 3000)), ((0, 2000), (1, 3000))),
        ThreadUse(9, 3, 2, (1,), 2986.0, "libiomp5.so", 2),
    )
    assert Footprint.from_json(json.loads(json.dumps(found.to_json()))) == found
    assert found.describe() == (
        "node0 25% node1 75% of 4 MB; 9 threads, 3 busy on 2 CPUs, omp 2, 2986 csw/s, idle CPUs 1"
    )


def _run(tmp_path, profile: str, tamper_footprint=None, tamper=None, *extra: str):
    engine = FakeEngine(
        {f"stock:{profile}": 5.0}, topology=C4, tamper=tamper, tamper_footprint=tamper_footprint
    )
    code, text = invoke_with(
        GivenEngines(engine, topology=C4),
        "run", "stock", "-p", profile, "--results", str(tmp_path), "--format", "json", *extra,
    )  # fmt: skip
    (session,) = session_dirs(tmp_path)
    record = json.loads((session / "results.jsonl").read_text().splitlines()[0])
    return code, text, record


def _all_on(node: int):
    def move(where):
        total = sum(where["memory"]["anon_node_kb"].values())
        return {**where, "memory": {"anon_node_kb": {str(node): total}, "node_kb": {}}}

    return move


def test_a_run_as_asked_is_ok_and_says_where_its_memory_went(tmp_path):
    code, text, record = _run(tmp_path, "interleave")
    assert code == 0, text
    assert record["status"] == "ok"
    (row,) = json_rows(text)
    assert row["memory_share"] == {"0": 0.5, "1": 0.5} and row["memory_mb"] == 200.0
    assert row["openmp_team"] == 18 and row["busy_threads"] == 18


@pytest.mark.parametrize(
    ("profile", "node", "said"),
    [
        ("interleave", 0, "interleave over 0-1 asked, but its memory is 200 MB on node 0"),
        ("membind", 0, "membind 1 asked, but its memory is 200 MB on node 0"),
    ],
)
def test_memory_that_contradicts_its_policy_is_invalid_with_figures(tmp_path, profile, node, said):
    code, _, record = _run(tmp_path, profile, _all_on(node))
    assert code == 1
    assert record["status"] == "INVALID"
    assert said in record["error"]


def test_an_openmp_team_other_than_asked_is_invalid(tmp_path):
    def bigger(where):
        return {
            **where,
            "threads": {**where["threads"], "openmp": {"runtime": "libiomp5.so", "team": 36}},
        }

    _, _, record = _run(tmp_path, "tuned", bigger)
    assert record["status"] == "INVALID"
    assert "libiomp5.so team of 36 threads, asked for OMP_NUM_THREADS=18" in record["error"]


def test_an_intra_op_pool_that_ignored_its_setting_is_invalid(tmp_path):
    def ignored(prov):
        return {**prov, "threads": {**prov["threads"], "intra_op": 36}}

    _, _, record = _run(tmp_path, "tuned", None, ignored)
    assert record["status"] == "INVALID"
    assert "intra-op pool of 36 threads, asked for 18" in record["error"]


def test_an_openmp_team_beyond_the_cpus_without_a_setting_is_invalid():
    spec = _planned("default")
    threads = ThreadUse(40, 2, 2, openmp_runtime="libiomp5.so", openmp_team=36)
    (problem,) = footprint_problems(spec, Footprint(None, threads), {})
    assert problem.startswith("libiomp5.so team of 36 threads on 2 CPUs")
    asked = ThreadUse(40, 2, 2, openmp_runtime="libiomp5.so", openmp_team=2)
    assert footprint_problems(spec, Footprint(None, asked), {}) == []


def test_memory_checks_tolerate_a_little_and_skip_tiny_processes():
    spec = _planned("membind")  # membind 1
    almost = MemoryUse(((0, 8 * 1024), (1, 200 * 1024)))  # 96% on node 1
    assert footprint_problems(spec, Footprint(almost), {}) == []
    tiny = MemoryUse(((0, 1024),))
    assert footprint_problems(spec, Footprint(tiny), {}) == []


def test_old_records_without_a_footprint_still_read(tmp_path):
    _, _, record = _run(tmp_path, "default")
    record.pop("footprint")
    assert RunResult.from_json(record).footprint is None


def _planned(profile: str):
    """A run of ``profile`` on CPUs 0-1 of a two-node host, its memory nodes resolved."""
    resolved = load_profiles()[profile].resolve(Placement(cores=2, threads=2, nodes=2, last_node=1))
    nodes = resolved.numa.memory_nodes_text
    return RunSpec(
        index=1, image=resolve_image("intel"), profile=resolved, cpus=(0, 1),
        workload=WorkloadSpec(), memory_nodes=None if nodes == "all" else nodes, nodes=(0,),
    )  # fmt: skip
