import pytest

from kit.errors import UsageError
from kit.model.numa import parse_numactl_show
from kit.model.profiles import load_profiles, pick
from kit.model.workload import Model, WorkloadSpec
from kit.planning.placement import (
    CpuSelection,
    parse_instances,
    placement_problems,
    select_cpus,
    split_instances,
)
from kit.planning.plan import build_plan
from tests.test_topology import sample

XEON = sample("c4.8xlarge")
ADJ = sample("adjacent-smt")
HOST = sample("epyc-2cpu")
TINY = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)
NODE0 = (*range(9), *range(18, 27))
NODE1 = (*range(9, 18), *range(27, 36))


@pytest.mark.parametrize(
    ("selection", "cpus"),
    [
        (CpuSelection(), tuple(range(36))),
        (CpuSelection(nodes=(1,)), NODE1),
        (CpuSelection(cores=2), (0, 1, 18, 19)),
        (CpuSelection(one_thread_per_core=True), tuple(range(18))),
        (CpuSelection(nodes=(1,), one_thread_per_core=True), tuple(range(9, 18))),
        (CpuSelection(cpus=(0, 1, 18), nodes=(0,)), (0, 1, 18)),
        (CpuSelection(nodes=(0,), cores=4, one_thread_per_core=True), (0, 1, 2, 3)),
    ],
)
def test_cpu_selection_on_the_xeon(selection, cpus):
    assert select_cpus(XEON, selection) == cpus


@pytest.mark.parametrize(
    ("selection", "match"),
    [
        (CpuSelection(cpus=(40,)), "CPU 40 not on this host"),
        (CpuSelection(nodes=(2,)), "node 2 not on this host"),
        (CpuSelection(cpus=(0, 9), nodes=(0,)), "--cpus and --nodes disagree: CPU 9"),
        (CpuSelection(cores=19), "more than the 18 physical cores"),
        (CpuSelection(cpus=()), "selection is empty"),
    ],
)
def test_bad_selections(selection, match):
    with pytest.raises(UsageError, match=match):
        select_cpus(XEON, selection)


def test_zero_cores_is_refused():
    with pytest.raises(UsageError, match="--cores must be positive"):
        CpuSelection(cores=0)


def test_instances_split_whole_cores_within_nodes():
    two = split_instances(XEON, XEON.cpu_ids, 2)
    assert two == [NODE0, NODE1]
    assert split_instances(XEON, XEON.cpu_ids, "per-node") == two
    four = split_instances(XEON, XEON.cpu_ids, 4)
    assert [len(g) for g in four] == [8, 8, 8, 8]  # 4 cores (8 siblings) each; 1 core/node spare
    assert four[0] == (0, 1, 2, 3, 18, 19, 20, 21)
    for group in four:
        assert len(XEON.nodes_of(group)) == 1
        # a core's siblings are never split between instances
        assert all(set(core) <= set(group) for core in XEON.cores(group))
    assert len(set().union(*map(set, four))) == 32


def test_instances_with_adjacent_siblings():
    groups = split_instances(ADJ, ADJ.cpu_ids, 4)
    assert groups == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15)]


def test_instances_on_this_host():
    assert split_instances(HOST, (0, 1), 2) == [(0,), (1,)]


@pytest.mark.parametrize(
    ("n", "match"),
    [(19, "more than the 18 physical cores"), (3, "cannot split evenly over 2 NUMA nodes")],
)
def test_bad_instance_counts(n, match):
    with pytest.raises(UsageError, match=match):
        split_instances(XEON, XEON.cpu_ids, n)


def test_parse_instances():
    assert parse_instances(None) == 1
    assert parse_instances("4") == 4
    assert parse_instances("per-node") == "per-node"
    for bad in ("0", "-1", "two"):
        with pytest.raises(UsageError):
            parse_instances(bad)


def xeon_plan(*names, **kwargs):
    return build_plan(["intel"], pick(load_profiles(), list(names)), TINY, XEON, **kwargs)


def test_builtin_placement_profiles_on_the_xeon():
    specs = {s.profile.name: s for s in xeon_plan("membind", "preferred", "node0", "one-per-core")}
    assert specs["membind"].command()[:2] == ("numactl", "--membind=1")
    assert specs["membind"].profile.env["OMP_NUM_THREADS"] == "18"
    assert specs["preferred"].command()[:2] == ("numactl", "--preferred=1")
    node0 = specs["node0"]
    assert node0.command()[:3] == ("numactl", "--membind=0", "--cpunodebind=0")
    assert node0.cpus == tuple(range(36))  # the cpuset stays; numactl narrows inside
    assert node0.effective_cpus == NODE0
    assert node0.profile.env["OMP_NUM_THREADS"] == "9"  # threads follow the placement
    assert node0.profile.intra_op == 9
    one = specs["one-per-core"]
    assert one.cpus == tuple(range(18))
    assert one.profile.env["OMP_NUM_THREADS"] == "18"


def test_threads_follow_the_selected_cpus_never_the_host():
    (spec,) = xeon_plan("tuned", selection=CpuSelection(cores=4))
    assert spec.cpus == (0, 1, 2, 3, 18, 19, 20, 21)
    assert spec.profile.intra_op == 4 and spec.profile.env["OMP_NUM_THREADS"] == "4"


def test_command_line_numactl_replaces_the_profiles_memory_policy():
    (spec,) = xeon_plan("interleave", numactl={"membind": "0"})
    assert spec.command()[:2] == ("numactl", "--membind=0")
    assert spec.memory_nodes == "0"


def test_interleave_all_expects_every_node():
    (spec,) = xeon_plan("interleave")
    assert spec.memory_nodes == "0-1"
    assert spec.requested_placement()["memory_nodes"] == {0, 1}


def test_policy_naming_an_absent_node_is_refused():
    with pytest.raises(UsageError, match="--membind node 3 not on this host"):
        xeon_plan("tuned", numactl={"membind": "3"})
    with pytest.raises(UsageError, match="--physcpubind CPU 40 is outside"):
        xeon_plan("tuned", numactl={"physcpubind": "40"})


def test_instances_plan_binds_memory_locally():
    specs = xeon_plan("tuned", instances=2)
    assert [(s.instance, s.instances, s.cell) for s in specs] == [(1, 2, 1), (2, 2, 1)]
    assert [s.cpus for s in specs] == [NODE0, NODE1]
    assert [s.mems for s in specs] == [(0,), (1,)]
    assert all(s.profile.intra_op == 9 for s in specs)


SHOW_LOCAL = (
    "policy: local\npreferred node: physcpubind: 0 1 \ncpubind: 0 \nnodebind: 0 \nmembind: 0 \n"
)
SHOW_INTERLEAVE = (
    "policy: interleave\npreferred node: 0 (interleave next)\ninterleavemask: 0 1 \n"
    "interleavenode: 0\nphyscpubind: 0 1 \ncpubind: 0 \nnodebind: 0 \nmembind: 0 1 \n"
)


def test_numactl_show_parser_handles_the_missing_line_break():
    shown = parse_numactl_show(SHOW_LOCAL)
    assert shown["policy"] == "local"
    assert shown["preferred node"] == ""
    assert shown["physcpubind"] == "0 1"
    interleave = parse_numactl_show(SHOW_INTERLEAVE)
    assert interleave["interleavemask"] == "0 1"
    assert interleave["preferred node"] == "0 (interleave next)"


def request(**overrides):
    base = {
        "cpuset": "0-1",
        "cpus": "0-1",
        "mems": None,
        "memory_policy": None,
        "memory_nodes": None,
    }
    return {**base, **overrides}


def prov(**overrides):
    base = {
        "cpus_allowed_list": "0-1",
        "affinity": [0, 1],
        "mems_allowed_list": "0",
        "numactl_show": "policy: default\npreferred node: current\n",
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("req", "got", "problem"),
    [
        (request(), prov(), None),
        (request(cpuset="1", cpus="1"), prov(), "CPUs allowed are 0-1, asked for 1"),
        # numactl --cpunodebind narrows what the process may use within its cpuset:
        (request(cpuset="0-1", cpus="0"), prov(cpus_allowed_list="0", affinity=[0]), None),
        (request(), prov(affinity=[0]), "ran on CPUs 0, asked for 0-1"),
        (request(mems="1"), prov(), "memory nodes are 0, asked for 1"),
        # an engine without cpusets (local, Slurm) binds an instance's memory with numactl:
        (
            request(mems="1"),
            prov(numactl_show="policy: bind\npreferred node: 1\nmembind: 1 \n"),
            None,
        ),
        (
            request(mems="1"),
            prov(numactl_show="policy: bind\npreferred node: 0\nmembind: 0 \n"),
            "memory policy is bind, asked for the default",
        ),
        (
            request(memory_policy="interleave", memory_nodes={0, 1}),
            prov(numactl_show=SHOW_INTERLEAVE),
            None,
        ),
        (
            request(memory_policy="interleave", memory_nodes={0}),
            prov(numactl_show=SHOW_INTERLEAVE),
            "interleave nodes are 0-1, asked for 0",
        ),
        (
            request(memory_policy="membind", memory_nodes={1}),
            prov(),
            "memory policy is default, asked for membind",
        ),
        (
            request(memory_policy="preferred", memory_nodes={0}),
            prov(numactl_show="policy: preferred\npreferred node: 0\n"),
            None,
        ),
        (request(memory_policy="localalloc"), prov(numactl_show=SHOW_LOCAL), None),
        (request(), prov(numactl_show=SHOW_LOCAL), "memory policy is local, asked for the default"),
        (request(), prov(numactl_show=""), "memory policy is unverified"),
        (request(), None, "reported no provenance"),
    ],
)
def test_placement_problems(req, got, problem):
    problems = placement_problems(req, got)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems
