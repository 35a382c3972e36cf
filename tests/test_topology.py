import json
import os

import pytest

from kit.host.topology import (
    cgroup_cpuset_files,
    parse_allowed,
    parse_numactl_hardware,
    parse_sysfs,
    read_host,
    topology_from_text,
)
from kit.host.topology_file import format_topology, to_json
from kit.planning.plan import placement_for
from tests.conftest import DATA

SAMPLES = DATA / "topology"


def sample(name: str):
    return topology_from_text(
        (SAMPLES / f"{name}.lscpu").read_text(), (SAMPLES / f"{name}.numactl-H").read_text()
    )


def test_this_host():
    topo = sample("epyc-2cpu")
    assert topo.cpu_ids == (0, 1)
    assert topo.node_ids == (0,)
    assert topo.cores() == [(0,), (1,)]
    assert topo.nodes[0].distances == (10,)
    assert topo.nodes[0].mem_total_mb > 0


def test_the_experiments_two_socket_xeon():
    topo = sample("c4.8xlarge")
    assert len(topo.cpu_ids) == 36
    assert topo.sockets == (0, 1)
    assert topo.node_ids == (0, 1)
    assert topo.nodes[0].cpus == (*range(9), *range(18, 27))
    assert topo.nodes[1].cpus == (*range(9, 18), *range(27, 36))
    assert topo.nodes[0].distances == (10, 20)
    assert topo.nodes[1].mem_total_mb == 30692
    cores = topo.cores()
    assert len(cores) == 18
    assert cores[0] == (0, 18) and cores[9] == (9, 27)
    placement = placement_for(topo, topo.cpu_ids)
    assert (placement.cores, placement.threads, placement.nodes, placement.last_node) == (
        18,
        36,
        2,
        1,
    )
    assert placement_for(topo, topo.nodes[0].cpus).cores == 9


def test_two_sockets_with_adjacent_siblings():
    topo = sample("adjacent-smt")
    assert topo.cores()[:2] == [(0, 1), (2, 3)]
    assert topo.physical_cores(range(16)) == 8
    assert topo.nodes_of([7, 8]) == (0, 1)


def test_numactl_hardware_parser():
    nodes = parse_numactl_hardware((SAMPLES / "c4.8xlarge.numactl-H").read_text())
    assert [n.id for n in nodes] == [0, 1]
    assert nodes[0].mem_free_mb == 29517
    assert nodes[1].distances == (20, 10)


def test_sysfs_with_smt_memory_and_distances():
    files = {
        "cpu/online": "0-3\n",
        "node/node0/cpulist": "0,2\n",
        "node/node1/cpulist": "1,3\n",
        "node/node0/meminfo": "Node 0 MemTotal:       2048000 kB\nNode 0 MemFree:  1024000 kB\n",
        "node/node0/distance": "10 21\n",
        "node/node1/distance": "21 10\n",
        "node/node2/cpulist": "\n",  # a memory-only node: nothing to pin to, memory to place
    }
    for cpu, core in enumerate([0, 0, 1, 1]):
        files[f"cpu/cpu{cpu}/topology/core_id"] = f"{core}\n"
        files[f"cpu/cpu{cpu}/topology/physical_package_id"] = f"{cpu % 2}\n"
    topo = parse_sysfs(files)
    assert topo.node_ids == (0, 1, 2) and topo.nodes[2].cpus == ()
    assert topo.nodes_of([0, 1, 2, 3]) == (0, 1)
    assert topo.nodes[0].mem_total_mb == 2000 and topo.nodes[0].mem_free_mb == 1000
    assert topo.nodes[1].distances == (21, 10)
    assert topo.physical_cores([0, 1, 2, 3]) == 4


@pytest.mark.parametrize(
    ("name", "allowed"), [("container-cgroup-v1", (1,)), ("container-cgroup-v2", (2, 3))]
)
def test_allowed_cpus_in_a_cgroup_restricted_container(name, allowed):
    captured = json.loads((SAMPLES / f"{name}.json").read_text())
    files = captured["files"]
    assert parse_allowed(captured["affinity"], files["/proc/self/cgroup"], files.get) == allowed


def test_cgroup_paths_v1_then_root_and_v2():
    paths = cgroup_cpuset_files("3:cpuset:/docker/abc\n0::/user.slice\n")
    assert paths[0] == "/sys/fs/cgroup/cpuset/docker/abc/cpuset.effective_cpus"
    assert "/sys/fs/cgroup/user.slice/cpuset.cpus.effective" in paths


def test_display_and_json():
    topo = sample("c4.8xlarge")
    text = "\n".join(format_topology(topo))
    assert "18 physical, 36 logical (2 threads per core)" in text
    assert "node 1:    CPUs 9-17,27-35" in text
    data = to_json(topo)
    assert data["nodes"][0]["cpus"] == "0-8,18-26"
    assert data["cores"][0] == "0,18"


def test_read_host_sees_this_machine():
    topo = read_host()
    assert set(os.sched_getaffinity(0)) <= set(topo.cpu_ids)
    assert topo.allowed is not None and set(topo.allowed) <= set(topo.cpu_ids)


def test_a_confined_topology_keeps_only_the_allowed_cpus_and_every_memory_node():
    from kit.host.topology import Cpu, Topology

    cpus = tuple(Cpu(id=i, core=i % 2, socket=i // 2, node=i // 2) for i in range(4))
    whole = Topology(cpus, allowed=(0, 1, 2, 3))
    assert whole.confined() is whole
    assert Topology(cpus).confined().cpu_ids == (0, 1, 2, 3)
    one = Topology(cpus, allowed=(3,), name="host n2").confined()
    assert one.cpu_ids == (3,) and one.allowed == (3,) and one.name == "host n2"
    assert [n.id for n in one.nodes] == [0, 1] and [n.cpus for n in one.nodes] == [(), (3,)]
    assert one.cores() == [(3,)]


def _file(name: str, threads_per_core: int | None = None):
    from kit.host.topology_file import parse_topology_text

    return parse_topology_text((DATA / "topology" / name).read_text(), threads_per_core)


def test_lscpu_p_columns_are_read_by_the_names_its_header_gives():
    c4 = _file("c4.8xlarge.lscpu")
    reordered = _file("c4.8xlarge.socket-core-cpu-node.lscpu")
    assert reordered.cpus == c4.cpus
    assert (len(reordered.sockets), len(reordered.nodes), len(reordered.cores())) == (2, 2, 18)


def test_lscpu_p_without_a_node_column_on_several_sockets_is_refused_saying_what_to_give():
    with pytest.raises(
        ValueError, match=r"name no Node, and 2 sockets .*lscpu -p=CPU,Core,Socket,Node"
    ):
        _file("c4.8xlarge.socket-core-cpu.lscpu")


def test_lscpu_p_without_a_cpu_column_is_refused():
    from kit.host.topology_file import parse_topology_text

    with pytest.raises(ValueError, match=r"columns are Socket,Core, without CPU: capture it"):
        parse_topology_text("# Socket,Core\n0,0\n0,1\n")


def test_plain_lscpu_is_read_as_numactl_h_is():
    summary = _file("c5.18xlarge.lscpu-summary")
    captured = _file("c5.18xlarge.lscpu")
    assert [(c.id, c.node) for c in summary.cpus] == [(c.id, c.node) for c in captured.cpus]
    assert summary.cores(range(72)) == captured.cores(range(72))  # siblings n and n+36
    assert len(summary.sockets) == 2 and [n.cpus for n in summary.nodes] == [
        n.cpus for n in captured.nodes
    ]


def test_plain_lscpu_numbered_round_robin_across_four_sockets():
    topo = _file("4socket-roundrobin.lscpu-summary")
    assert (len(topo.sockets), len(topo.nodes), len(topo.cores()), len(topo.cpus)) == (4, 4, 16, 32)
    assert topo.nodes[1].cpus == tuple(range(1, 32, 4))
    assert (0, 16) in topo.cores() and (1, 17) in topo.cores()
    assert {c.socket for c in topo.cpus if c.node == 3} == {3}


def test_plain_lscpu_without_node_lines_or_thread_counts_says_what_to_give():
    from kit.host.topology_file import parse_topology_text

    with pytest.raises(ValueError, match="says nothing of nodes"):
        parse_topology_text("CPU(s): 4\nThread(s) per core: 1\n")
    with pytest.raises(ValueError, match="--threads-per-core"):
        parse_topology_text("CPU(s): 4\nNUMA node0 CPU(s): 0-3\n")
    assert len(parse_topology_text("CPU(s): 4\nNUMA node0 CPU(s): 0-3\n", 2).cores()) == 2


def test_a_plan_from_plain_lscpu_of_two_sockets_places_interleave_over_both_nodes(tmp_path):
    from tests.conftest import invoke

    code, text = invoke(
        "plan", "intel", "-p", "interleave", "-p", "node0",
        "--topology", str(DATA / "topology" / "c5.18xlarge.lscpu-summary"),
    )  # fmt: skip
    assert code == 0, text
    assert "2 socket(s), 2 NUMA node(s)" in text or "2 sockets" in text, text
    assert "--interleave=all" in text and "0-17,36-53" in text


MEMORY_ONLY = """available: 3 nodes (0-2)
node 0 cpus: 0 1
node 0 size: 1510 MB
node 1 cpus: 2 3
node 1 size: 1403 MB
node 2 cpus:
node 2 size: 1007 MB
node distances:
node   0   1   2
  0:  10  21  30
  1:  21  10  30
  2:  30  30  10
"""


def test_a_memory_only_node_is_kept_shown_and_read_back(tmp_path):
    from kit.host.topology_file import parse_topology_text

    topo = parse_topology_text(MEMORY_ONLY, 1)
    assert topo.node_ids == (0, 1, 2) and topo.nodes[2].cpus == ()
    assert "node 2:    no CPUs (memory only), memory 1007 MB" in "\n".join(format_topology(topo))
    again = parse_topology_text(json.dumps(to_json(topo)))
    assert again.node_ids == (0, 1, 2) and again.nodes[2].cpus == ()
    path = tmp_path / "cxl.numactl-H"
    path.write_text(MEMORY_ONLY)
    from tests.conftest import invoke

    code, text = invoke("plan", "intel", "-p", "interleave", "-p", "membind", "--topology",
                        str(path), "--threads-per-core", "1")  # fmt: skip
    assert code == 0, text
    assert "3 NUMA node(s) (node 2: memory only)" in text
    assert "note: node 2 has memory and no CPUs" in text and "--interleave 0-1 keeps" in text
    assert "--membind=1" in text  # {last_node}: the last node of the run's CPUs, not node 2
