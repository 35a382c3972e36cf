"""The campaign core, driven directly: prepare and execute with fake engines on captured
topologies (the seed's 2-socket c4.8xlarge and the 2-CPU development host), so these pass on
any host. tests/test_docker.py drives the same core through the CLI on the real engine."""

import json
import math
from pathlib import Path

import pytest

from kit.campaign.request import CampaignRequest, How, What, Where
from kit.campaign.run import execute, prepare
from kit.engines.endpoints import parse_hosts
from kit.engines.kinds import EngineKind
from kit.errors import ImageNotFound, UsageError
from kit.judging.gate import Gate, Outcome
from kit.model.feedback import Quiet
from kit.model.numa import NumaPolicy
from kit.model.spec import Limits
from kit.model.workload import Model, WorkloadSpec
from kit.planning.placement import CpuSelection
from kit.store.database import ResultsDB
from kit.store.folder import load_session
from tests.conftest import invoke_with
from tests.fakes import C4, EPYC, FakeEngine, GivenEngines

TINY = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)
RATES = {"stock:default": 5.48, "intel:tuned": 33.62, "intel:interleave": 34.18,
         "intel:node0": 23.6, "intel:default": 30.0}  # fmt: skip


class Counting(GivenEngines):
    """Counts every engine asked for, so a test can prove none was."""

    def __init__(self, *engines, topology=EPYC) -> None:
        super().__init__(*engines, topology=topology)
        self.asked = 0

    def engine(self, kind, endpoint=None):
        self.asked += 1
        return super().engine(kind, endpoint)


def request(
    tmp_path: Path, images=("stock", "intel"), profiles=("default",), **what
) -> CampaignRequest:
    how = what.pop("how", {})
    return CampaignRequest(
        What(tuple(images), tuple(profiles), workload=TINY, **what),
        Where((EngineKind.docker,)),
        How(results=tmp_path / "results", **how),
    )


def test_prepare_places_the_plan_on_the_engines_machine(tmp_path):
    engine = FakeEngine(RATES, name="docker", topology=C4, machine="c4")
    maker = GivenEngines(engine, topology=C4)
    prepared = prepare(
        request(tmp_path, images=("intel",), profiles=("tuned", "node0"), repeats=2),
        maker, Quiet(),
    )  # fmt: skip
    assert len(prepared.plan) == 4 and [s.index for s in prepared.plan] == [1, 2, 3, 4]
    node0 = next(s for s in prepared.plan if s.profile.name == "node0")
    assert node0.effective_cpus == (*range(9), *range(18, 27))
    assert node0.profile.env["OMP_NUM_THREADS"] == "9"  # node 0's physical cores
    assert prepared.machines == {"c4": ("docker",)}
    assert engine.ran == []  # preparing runs nothing


def test_execute_runs_persists_and_returns_typed_runs(tmp_path):
    engine = FakeEngine(RATES, name="docker", topology=C4, machine="c4")
    prepared = prepare(
        request(tmp_path, images=("intel",), profiles=("tuned", "interleave"), repeats=2),
        GivenEngines(engine, topology=C4), Quiet(),
    )  # fmt: skip
    finished = execute(prepared, Quiet())
    assert [r.index for r in finished.runs] == [1, 2, 3, 4] and not finished.failed
    assert finished.gate is None
    assert len(load_session(finished.folder)) == 4
    meta = json.loads((finished.folder / "session.json").read_text())
    assert set(meta) >= {"hosts", "plan", "argv"} and "host_record" not in meta
    assert meta["hosts"]["docker"]["physical_cores"] == 18
    with ResultsDB(tmp_path / "results" / "kit.db") as db:
        assert len(db.runs(finished.session_id)) == 4
    # each run's rerun line is its engine's own (the fake's here; real engines': test_docker,
    # test_local_engine, test_slurm)
    assert all(r.rerun.startswith("fake-engine run kit/tensorflow:") for r in finished.runs)


def test_instances_per_node_on_the_seed_host(tmp_path):
    engine = FakeEngine({"intel:tuned": 17.0}, name="docker", topology=C4, machine="c4")
    prepared = prepare(
        request(tmp_path, images=("intel",), profiles=("tuned",), instances="per-node"),
        GivenEngines(engine, topology=C4), Quiet(),
    )  # fmt: skip
    assert [(s.cpu_list, s.mems_list) for s in prepared.plan] == [
        ("0-8,18-26", "0"),
        ("9-17,27-35", "1"),
    ]
    finished = execute(prepared, Quiet())
    assert sum(r.images_per_sec for r in finished.runs) == pytest.approx(34.0)


def test_the_up_front_plan_serves_its_machine_and_another_topology_is_placed_again(tmp_path):
    same = FakeEngine(RATES, name="docker", topology=EPYC)
    prepared = prepare(request(tmp_path), GivenEngines(same, topology=EPYC), Quiet())
    assert {s.cpu_list for s in prepared.plan} == {"0-1"}
    other = FakeEngine(RATES, name="docker", topology=C4)  # the engine's host is not this one
    prepared = prepare(request(tmp_path), GivenEngines(other, topology=EPYC), Quiet())
    assert {s.cpu_list for s in prepared.plan} == {"0-35"}


def test_auto_becomes_the_engine_that_answered(tmp_path):
    engine = FakeEngine(RATES, name="docker")
    req = request(tmp_path)
    req = CampaignRequest(req.what, Where((EngineKind.auto,)), req.how)
    prepared = prepare(req, GivenEngines(engine), Quiet())
    assert {s.engine for s in prepared.plan} == {"docker"}


def test_a_missing_image_is_refused_before_anything_runs(tmp_path):
    engine = FakeEngine(RATES, name="docker", images={"kit/tensorflow:stock"})
    with pytest.raises(ImageNotFound, match="kit/tensorflow:intel"):
        prepare(request(tmp_path), GivenEngines(engine), Quiet())
    assert engine.ran == []


def test_the_gate_fails_a_slower_cell(tmp_path):
    fast = FakeEngine({"stock:default": 10.0}, name="docker")
    first = execute(
        prepare(request(tmp_path, ("stock",), repeats=3), GivenEngines(fast), Quiet()), Quiet()
    )
    slow = FakeEngine({"stock:default": 5.0}, name="docker")
    gated = request(tmp_path, ("stock",), repeats=3, how={"gate": Gate(first.session_id, 10)})
    finished = execute(prepare(gated, GivenEngines(slow), Quiet()), Quiet())
    (decision,) = finished.gate.decisions
    assert (
        decision.outcome is Outcome.failed and "0.50x" in decision.line and not finished.gate.held
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"images": ("UPPER/Case:bad",)}, "neither a flavor"),
        ({"images": ("kit/tensorflow:stock;x",)}, "neither a flavor"),
        ({"images": ("",)}, "neither a flavor"),
        ({"profiles": ("nope",)}, "nope"),
        ({"profiles": ("default", "default")}, "named twice"),
        ({"images": ("stock", "stock")}, "named twice"),
        ({"timeout_s": math.nan}, "--timeout"),
        ({"timeout_s": math.inf}, "--timeout"),
        ({"timeout_s": 1e309}, "--timeout"),
        ({"repeats": 0}, "--repeats"),
        ({"selection": CpuSelection(cpus=(5,))}, "CPU 5 not on this host"),
        ({"numactl": NumaPolicy(membind="3")}, "node 3"),
        ({"how": {"baseline": "intel:nope"}}, "baseline 'intel:nope'"),
        ({"how": {"resume": "19990101T000000Z"}}, "no kit session"),
        ({"how": {"gate": Gate("19990101T000000Z", 5)}}, "no kit session"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_before_any_engine_is_asked(tmp_path, change, match):
    maker = Counting(FakeEngine(RATES, name="docker"))
    with pytest.raises(UsageError, match=match):
        fields = dict(change)
        images = fields.pop("images", ("stock", "intel"))
        profiles = fields.pop("profiles", ("default",))
        prepare(request(tmp_path, images, profiles, **fields), maker, Quiet())
    assert maker.asked == 0


def test_a_results_path_that_is_a_file_is_refused_before_any_engine(tmp_path):
    (tmp_path / "results").write_text("")
    maker = Counting(FakeEngine(RATES, name="docker"))
    with pytest.raises(UsageError, match="is a file"):
        prepare(request(tmp_path), maker, Quiet())
    assert maker.asked == 0


def test_container_limits_are_refused_for_the_local_engine(tmp_path):
    maker = Counting(FakeEngine(RATES, name="local"))
    req = request(tmp_path, limits=Limits(memory="8g"))
    req = CampaignRequest(req.what, Where((EngineKind.local,)), req.how)
    with pytest.raises(UsageError, match="container limits"):
        prepare(req, maker, Quiet())
    assert maker.asked == 0


def test_a_gate_percentage_must_be_a_percentage():
    for bad in (-1, 100, math.nan):
        with pytest.raises(UsageError, match="--fail-if-slower"):
            Gate("s", bad)


def test_hosts_are_planned_each_on_its_own_topology(tmp_path):
    small = FakeEngine(RATES, name="small", machine="m1", topology=EPYC)
    big = FakeEngine(RATES, name="big", machine="m2", topology=C4)
    req = request(tmp_path, ("intel",), ("node0",))
    hosts = tuple(parse_hosts(["small=tcp://127.0.0.1:1", "big=tcp://127.0.0.1:2"]))
    req = CampaignRequest(req.what, Where(hosts=hosts), req.how)
    prepared = prepare(req, GivenEngines(small, big), Quiet())
    assert [(s.engine, s.cpu_list) for s in prepared.plan] == [("small", "0-1"), ("big", "0-35")]
    assert prepared.machines == {"m1": ("small",), "m2": ("big",)}


def _ran(engine) -> list[str]:
    """The cells an engine ran, in the table's order (each round runs them in its own)."""
    return sorted(dict.fromkeys(s.key for s in engine.ran), key=_ORDER.index)


_ORDER = [f"{i}:{p}" for i in ("stock", "intel") for p in ("default", "tuned", "interleave")]


SIX = {f"{i}:{p}": 10.0 for i in ("stock", "intel") for p in ("default", "tuned", "interleave")}


def test_cells_that_cannot_differ_on_the_host_are_measured_once_and_said(tmp_path):
    one_node = FakeEngine(SIX, name="docker")  # the 2-CPU host: one NUMA node
    args = ("compare", "stock", "intel", "--repeats", "2", "--results", str(tmp_path / "a"))
    code, text = invoke_with(one_node, *args)
    assert code == 0, text
    assert _ran(one_node) == ["stock:default", "stock:tuned", "intel:default", "intel:tuned"]
    assert "merged: intel:interleave runs as intel:tuned: this host has one NUMA node" in text
    assert "intel:tuned stands for intel:interleave too" in text
    code, text = invoke_with(one_node, *args[:-1], str(tmp_path / "b"), "--baseline",
                             "intel:interleave")  # fmt: skip
    assert code == 2 and "runs as intel:tuned" in text and "--keep-equivalent" in text
    kept = FakeEngine(SIX, name="docker")
    code, text = invoke_with(kept, *args[:-1], str(tmp_path / "c"), "--keep-equivalent")
    assert code == 0 and len(_ran(kept)) == 6 and "merged" not in text
    two_nodes = FakeEngine(SIX, name="docker", topology=C4)
    code, text = invoke_with(two_nodes, *args[:-1], str(tmp_path / "d"))
    assert code == 0 and len(_ran(two_nodes)) == 6 and "merged" not in text


def test_plan_says_which_cells_it_merged():
    code, text = invoke_with(FakeEngine(RATES), "plan", "stock", "-p", "tuned", "-p", "interleave")
    assert code == 0 and "merged: stock:interleave runs as stock:tuned" in text
    assert "stock:interleave" not in text.split("merged")[-1].split("\n", 1)[1]
