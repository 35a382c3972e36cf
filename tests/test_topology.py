from kit.plan import placement_for
from kit.topology import parse_lscpu, parse_sysfs, read_host
from tests.conftest import DATA


def test_this_host_sample():
    topo = parse_lscpu((DATA / "lscpu-epyc-2cpu.txt").read_text())
    assert topo.cpu_ids == (0, 1)
    assert topo.node_ids == (0,)
    assert topo.physical_cores([0, 1]) == 2


def test_two_socket_sample_like_the_experiments_c4_8xlarge():
    topo = parse_lscpu((DATA / "lscpu-c4.8xlarge.txt").read_text())
    assert len(topo.cpu_ids) == 36
    assert topo.node_ids == (0, 1)
    node0 = [c.id for c in topo.cpus if c.node == 0]
    assert node0 == [*range(9), *range(18, 27)]
    assert topo.physical_cores(topo.cpu_ids) == 18
    # hyperthread siblings 0 and 18 are one physical core
    assert topo.physical_cores([0, 18]) == 1
    placement = placement_for(topo, topo.cpu_ids)
    assert (placement.cores, placement.threads, placement.nodes, placement.last_node) == (
        18,
        36,
        2,
        1,
    )


def test_sysfs_parsing_with_smt_and_two_nodes():
    files = {"cpu/online": "0-3\n", "node/node0/cpulist": "0,2\n", "node/node1/cpulist": "1,3\n"}
    for cpu, core in enumerate([0, 0, 1, 1]):
        files[f"cpu/cpu{cpu}/topology/core_id"] = f"{core}\n"
        files[f"cpu/cpu{cpu}/topology/physical_package_id"] = f"{cpu % 2}\n"
    topo = parse_sysfs(files)
    assert topo.node_ids == (0, 1)
    assert topo.physical_cores([0, 2]) == 2
    assert topo.physical_cores([0, 1, 2, 3]) == 4


def test_read_host_sees_this_machine():
    import os

    topo = read_host()
    assert set(os.sched_getaffinity(0)) <= set(topo.cpu_ids)
