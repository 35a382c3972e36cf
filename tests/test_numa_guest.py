"""kit on a real multi-node NUMA kernel: a QEMU guest (tests/numa_guest.py) of the seed's shape
(2 sockets, 2 nodes, distance 21) and of today's (the same with a memory-only node). kit runs
inside it as on any host, with its local engine: its own topology, its plan, numactl, the
bandwidth workload, and each run's memory per node and threads checked against its policy.
One boot per shape, shared by the tests that read it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit.host.topology_file import parse_topology_text
from kit.store.folder import load_session
from tests.numa_guest import DOCKER_AT, SHAPES, boot, image_root

# Each boot runs ~2-7 min under TCG, in the setup of the first test that needs it.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

INTEL = "kit/tensorflow:intel"
PROFILES = ("default", "interleave", "membind", "preferred", "node0")
SETUP = """export HOME=/job/home KIT_CACHE=/job/cache PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p $HOME
at() {{ echo "at $(date +%s) $1" >> /job/times.txt; }}  # where the emulated minutes go
at boot
kit={kit}
lscpu -p > /job/lscpu-p.txt; lscpu > /job/lscpu.txt; numactl -H > /job/numactl-H.txt
at topology
$kit topology --format json > /job/topology.json
at adopt-stock
$kit envs adopt stock /opt/venv
"""
# Emulated time means nothing (the guest's kernel threads take a third of a CPU under TCG:
# runs were marked disturbed, rightly): placement and memory are what is checked here.
MEASURE = ("--engine {engine} --workload bandwidth --num-batches 3 --repeats 1 --keep-disturbed "
           "--results /tmp/results")  # fmt: skip
# A planted failure: node 1 filled by a process of its own, so that a preference for node 1
# cannot apply and the memory lands on node 0 (as on a server whose node is full).
SPILL = """free=$(numactl -H | sed -n 's/^node 1 free: \\([0-9]*\\) MB/\\1/p')
numactl --membind=1 /opt/venv/bin/python -c "import sys, time
b = bytearray(int(sys.argv[1]) << 20); b[::4096] = bytes(len(range(0, len(b), 4096)))
open('/tmp/full', 'w').close(); time.sleep(3600)" $((free - 40)) &
hog=$!
until [ -e /tmp/full ]; do sleep 1; done
numactl -H | grep free > /job/spill-free.txt
at spill
$kit run stock -p preferred {measure} > /job/spill.txt 2>&1; echo "spill: $?"
kill $hog
"""
SEED = (
    SETUP
    + """
at compare
$kit compare stock {profiles} {measure} > /job/compare.txt 2>&1; echo "compare: $?"
at instances
$kit run stock -p tuned --instances per-node {measure} > /job/instances.txt 2>&1
echo "instances: $?"
at fill-node1
{spill}
at dockerd
sh {docker_at}/start.sh || exit 1
at docker-instances
$kit run stock -p tuned --instances per-node {docker} > /job/docker-instances.txt 2>&1
echo "docker instances: $?"
at docker-membind
$kit run stock -p membind {docker} > /job/docker-membind.txt 2>&1; echo "docker membind: $?"
at report
$kit report latest --results /tmp/results --format markdown > /job/report.md
at end
cp -r /tmp/results /job/
"""
)
# Every guest has the seed's ISA (Haswell: AVX2, no AVX-512): which oneDNN path each build takes
# there is proven in the cxl guest, beside its compare (TensorFlow's import alone takes ~2 min
# under TCG; the compare checks placement, not speed, and keeps disturbed runs).
CXL = (
    SETUP
    + """
at adopt-intel
$kit envs adopt intel {intel}/opt/venv
for image in stock intel; do
    $kit verify $image --model tiny --mode infer --engine local --allow-concurrent \\
        --results /tmp/results-$image -f json > /job/verify-$image.json 2> /job/verify-$image.err &
done
at verify-started
$kit plan stock -p interleave --engine local --workload bandwidth > /job/plan.txt 2>&1
at plan-done
$kit compare stock -p default -p interleave {measure} --allow-concurrent > /job/compare.txt 2>&1
echo "compare: $?"
at compare-done
wait
at end
cp -r /tmp/results /job/
"""
)


def _boot(shape: str, script: str, job: Path, *, docker: bool = False,
          images: tuple[str, ...] = ()) -> Path:  # fmt: skip
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: make test-hosts installs it")
    kit = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kit")
    measure = MEASURE.format(engine="local")
    text = script.format(kit=kit, measure=measure, profiles=" ".join(f"-p {p}" for p in PROFILES),
                         spill=SPILL.format(kit=kit, measure=measure), docker_at=DOCKER_AT,
                         docker=MEASURE.format(engine="docker"),
                         intel=image_root(INTEL))  # fmt: skip
    out = boot(SHAPES[shape], text, job, docker=docker, images=images)
    print(out)
    print(_steps(job / "times.txt"))
    assert "guest: exit 0" in out, out
    return job


def _steps(times: Path) -> str:
    """Seconds each step of a guest's script took (its `at` marks), for CI's log."""
    if not times.exists():
        return "no steps marked"
    marks = [line.split()[1:] for line in times.read_text().splitlines()]
    return "\n".join(f"{name}: {int(marks[n + 1][0]) - int(at)} s"
                     for n, (at, name) in enumerate(marks[:-1]))  # fmt: skip


@pytest.fixture(scope="module")
def seed(tmp_path_factory, kit_images) -> Path:
    return _boot("seed", SEED, tmp_path_factory.mktemp("seed-guest"), docker=True)


@pytest.fixture(scope="module")
def cxl(tmp_path_factory, kit_images) -> Path:
    return _boot("cxl", CXL, tmp_path_factory.mktemp("cxl-guest"), images=(INTEL,))


def _sessions(job: Path) -> list[list]:
    folders = sorted(p for p in (job / "results").iterdir() if p.is_dir())
    return [load_session(f) for f in folders]


def test_the_guests_captures_read_as_one_topology(seed, cxl):
    for job, nodes in ((seed, (0, 1)), (cxl, (0, 1, 2))):
        numactl = parse_topology_text((job / "numactl-H.txt").read_text(), 1)
        summary = parse_topology_text((job / "lscpu.txt").read_text())
        parsable = parse_topology_text((job / "lscpu-p.txt").read_text())
        own = parse_topology_text((job / "topology.json").read_text())
        assert numactl.node_ids == summary.node_ids == own.node_ids == nodes
        cpus = [(c.id, c.node) for c in own.cpus]
        assert cpus == [(0, 0), (1, 1)]
        assert [(c.id, c.node) for c in parsable.cpus] == cpus
        assert [(c.id, c.node) for c in summary.cpus] == cpus
        assert len(own.sockets) == 2
    assert json.loads((cxl / "topology.json").read_text())["nodes"][2]["cpus"] == ""


def test_each_policy_puts_memory_where_it_says_and_kit_checks_it(seed):
    compare = _sessions(seed)[0]
    runs = {r.profile: r for r in compare}
    assert sorted(runs) == sorted(PROFILES)
    assert all(r.ok for r in runs.values()), {p: r.error for p, r in runs.items()}
    share = {p: r.footprint.memory.shares() for p, r in runs.items()}
    assert all(r.footprint.memory.total_kb > 150 * 1024 for r in runs.values())  # the arrays
    assert share["membind"].get(1, 0) > 0.95  # {last_node}: the remote node
    assert share["node0"].get(0, 0) > 0.95
    assert share["preferred"].get(1, 0) > 0.5
    assert min(share["interleave"].get(n, 0) for n in (0, 1)) > 0.25
    # default: each thread first touches its own slice on its own CPU's node
    assert min(share["default"].get(n, 0) for n in (0, 1)) > 0.25
    assert runs["node0"].provenance["cpus_allowed_list"] == "0"  # numactl --cpunodebind=0
    assert runs["membind"].memory_policy == "bind 1"


def test_threads_are_counted_on_the_guest(seed):
    compare = _sessions(seed)[0]
    for run in compare:
        threads = run.footprint.threads
        cpus = 1 if run.profile == "node0" else 2
        assert threads.allowed_cpus == cpus and threads.idle_cpus == (), run.profile
        # one busy worker per CPU; the main thread, timing the triads between barriers, can
        # pass the 5% mark too on an emulated CPU (seen once in CI: 3 busy on 2 CPUs)
        assert cpus <= threads.busy_threads <= cpus + 1, (run.profile, threads)
        assert threads.openmp_team is None  # numpy's own loops: no OpenMP runtime
        assert threads.threads >= cpus + 1


def test_instances_per_node_each_keep_memory_on_their_node(seed):
    instances = _sessions(seed)[1]
    by_instance = {r.instance: r for r in instances}
    assert sorted(by_instance) == [1, 2] and all(r.ok for r in instances)
    for instance, node in ((1, 0), (2, 1)):
        run = by_instance[instance]
        assert run.provenance["cpus_allowed_list"] == str(node)
        assert run.footprint.memory.share({node}) > 0.95, run.footprint.describe()


def test_a_preference_that_cannot_apply_is_invalid_with_its_figures(seed):
    (run,) = _sessions(seed)[2]  # node 1 full: numactl --preferred=1 spills to node 0
    print((seed / "spill-free.txt").read_text(), run.error)
    assert run.memory_policy == "preferred 1"
    assert run.footprint.memory.share({0}) > 0.5, run.footprint.memory.describe()
    assert run.status.value == "INVALID"
    assert "preferred node 1 asked" in run.error and "node0" in run.error


def test_dockers_cpusets_bind_each_instance_to_its_node_on_a_real_kernel(seed):
    instances = _sessions(seed)[3]
    assert sorted(r.instance for r in instances) == [1, 2]
    for run in instances:
        node = run.instance - 1
        assert run.ok and run.engine == "docker", run.error
        assert run.mems == str(node) and run.numactl == "-"  # cpuset.mems, no numactl
        assert run.provenance["mems_allowed_list"] == str(node)
        assert run.provenance["cpus_allowed_list"] == str(node)
        assert run.footprint.memory.share({node}) > 0.95, run.footprint.memory.describe()


def test_numactl_binds_memory_to_the_remote_node_inside_a_docker_container(seed):
    (run,) = _sessions(seed)[4]
    assert run.ok and run.engine == "docker", run.error
    assert run.memory_policy == "bind 1" and run.provenance["mems_allowed_list"] == "0-1"
    assert run.footprint.memory.share({1}) > 0.95, run.footprint.memory.describe()


def test_interleave_all_reaches_a_memory_only_node_and_the_plan_says_so(cxl):
    assert "node 2 has memory and no CPUs" in (cxl / "plan.txt").read_text()
    assert "node 2: memory only" in (cxl / "plan.txt").read_text()
    (compare,) = _sessions(cxl)
    runs = {r.profile: r for r in compare}
    assert all(r.ok for r in runs.values()), {p: r.error for p, r in runs.items()}
    spread = runs["interleave"].footprint.memory.shares()
    assert min(spread.get(n, 0) for n in (0, 1, 2)) > 0.2, spread
    assert runs["interleave"].memory_policy == "interleave 0,1,2"
    assert runs["default"].footprint.memory.share({0, 1}) > 0.95  # local: never the far node


def test_on_the_seeds_isa_stock_runs_eigen_and_intel_runs_onednns_avx2_kernels(cxl):
    proofs = {}
    for image in ("stock", "intel"):
        print((cxl / f"verify-{image}.err").read_text())
        (proofs[image],) = json.loads((cxl / f"verify-{image}.json").read_text())["verify"]
        print(proofs[image])
    stock = proofs["stock"]  # TF 2.14 turns its oneDNN ops on by itself only with VNNI/BF16/AMX
    assert stock["onednn"] == "sgemm only" and "convolution" not in stock["primitives_executed"]
    assert "oneDNN did not run: this build's default on this CPU" in stock["notes"], stock
    intel = proofs["intel"]
    assert intel["onednn"] == "yes" and intel["runtime"] == "OpenMP", intel
    assert intel["isa"].startswith("Intel AVX2") and "convolution" in intel["primitives_executed"]
