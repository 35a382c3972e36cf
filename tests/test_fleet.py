"""Several hosts at once, the pure parts and the CLI against fake engines: --host parsing and
labels, host facts from the probe, one plan per machine, machines running at once, and the
table's host column with each host's baseline and best. tests/test_many_hosts.py runs the same
paths against a second real Docker engine."""

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kit.campaign.placing import machines_of, place_fleet
from kit.campaign.request import What
from kit.campaign.session import open_session, run_session
from kit.cpus import format_cpu_list
from kit.engines.base import EngineSet
from kit.engines.endpoints import Endpoint, default_label, parse_host, parse_hosts
from kit.errors import UsageError
from kit.host.facts import facts_from_probe, local_facts, machine_name, parse_probe_output
from kit.host.probe_script import collect
from kit.host.topology import topology_from_text
from kit.model.feedback import Quiet
from kit.reporting.formats import Format
from kit.reporting.table import render, rows
from tests.conftest import DATA, invoke, invoke_with
from tests.fakes import FakeEngine, facts_for
from tests.test_session import TINY

PROBE = (DATA / "probe" / "epyc-2cpu-container.txt").read_text()
C4 = topology_from_text(
    (DATA / "topology" / "c4.8xlarge.lscpu").read_text(),
    (DATA / "topology" / "c4.8xlarge.numactl-H").read_text(),
)
EPYC = topology_from_text((DATA / "topology" / "epyc-2cpu.lscpu").read_text())


# --- --host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "url", "context"),
    [
        ("unix:///var/run/docker.sock", "docker", "unix:///var/run/docker.sock", None),
        ("unix:///tmp/kit-2/docker.sock", "kit-2", "unix:///tmp/kit-2/docker.sock", None),
        ("unix:///run/user/1000/podman.sock", "podman", "unix:///run/user/1000/podman.sock", None),
        ("tcp://10.0.0.7:2376", "10.0.0.7:2376", "tcp://10.0.0.7:2376", None),
        ("ssh://ubuntu@c5-large", "c5-large", "ssh://ubuntu@c5-large", None),
        ("ssh://me@box:2222", "box:2222", "ssh://me@box:2222", None),
        ("big=ssh://ubuntu@c5-large", "big", "ssh://ubuntu@c5-large", None),
        ("colleague", "colleague", None, "colleague"),
        ("lab=colleague", "lab", None, "colleague"),
    ],
)  # fmt: skip
def test_a_host_is_a_url_a_named_url_or_a_context(text, label, url, context):
    assert parse_host(text) == Endpoint(label, url, context)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("http://h:2375", "unknown scheme 'http'"),
        ("tcp://", "names no host"),
        ("tcp://h:port", "port is not a number"),
        ("unix://", "names no socket"),
        ("no such/context", "neither a URL nor a context"),
        ("bad name=tcp://h:1", "not a usable name"),
    ],
)
def test_a_host_that_cannot_be_used_is_refused(text, match):
    with pytest.raises(UsageError, match=match):
        parse_host(text)


def test_hosts_must_be_told_apart():
    with pytest.raises(UsageError, match="both called 'h:1'") as caught:
        parse_hosts(["tcp://h:1", "ssh://u@h:1"])
    assert "NAME=" in (caught.value.hint or "")
    with pytest.raises(UsageError, match="names the local engine"):
        parse_hosts(["local=tcp://h:1"])
    # the same host twice is one host
    assert len(parse_hosts(["tcp://h:1", "tcp://h:1"])) == 1


def test_default_labels_are_short():
    assert default_label("unix:///run/docker.sock") == "docker"
    assert default_label("tcp://h") == "h"


# --- host facts -------------------------------------------------------------------------------


def test_facts_from_a_probe_run_in_a_container():
    facts = facts_from_probe(parse_probe_output(PROBE), "vm")
    assert facts.topology.cpu_ids == (0, 1)
    assert facts.topology.allowed == (0, 1)
    assert facts.record["hostname"] == "vm"
    assert facts.record["cpu_model"] == "AMD EPYC"
    assert "avx2" in facts.record["isa_flags"]
    assert facts.record["logical_cpus"] == 2
    assert len(facts.machine) == 36  # the kernel's boot id


def test_the_probe_reads_this_host_as_kit_does():
    facts = local_facts()
    assert facts.machine == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert facts.topology.cpu_ids == facts_from_probe(collect(), "x").topology.cpu_ids


def test_a_probe_that_printed_nothing_says_what_it_printed():
    with pytest.raises(ValueError, match="printed no facts: exec format error"):
        parse_probe_output("exec format error\n")
    with pytest.raises(ValueError, match="not a kit host probe"):
        facts_from_probe({"probe": 99}, "x")


# --- one plan per machine ---------------------------------------------------------------------


def test_each_machine_is_planned_on_its_own_topology():
    what = What(("stock",), ("default", "node0"), workload=TINY)
    plan = place_fleet(what, [(EPYC, ["small"]), (C4, ["big"])])
    assert [s.index for s in plan] == [1, 2, 3, 4]
    placed = sorted(plan, key=lambda s: (s.index > 2, s.cell))  # each machine's in table order
    assert [(s.engine, s.profile.name, format_cpu_list(s.effective_cpus)) for s in placed] == [
        ("small", "default", "0-1"),
        ("small", "node0", "0-1"),
        ("big", "default", "0-35"),
        ("big", "node0", "0-8,18-26"),
    ]
    assert placed[3].profile.env["OMP_NUM_THREADS"] == "9"  # node 0's physical cores there


def test_a_placement_one_machine_cannot_give_names_its_engines():
    what = What(("stock",), ("default",), workload=TINY, selection=_cpus("0-35"))
    with pytest.raises(UsageError, match="on small: CPU 2-35 not on this host"):
        place_fleet(what, [(C4, ["big"]), (EPYC, ["small"])])


def _cpus(text):
    from kit.cpus import parse_cpu_list
    from kit.planning.placement import CpuSelection

    return CpuSelection(cpus=parse_cpu_list(text))


# --- machines run at once, each machine's runs one after another ------------------------------


def _overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Recorder(FakeEngine):
    """A fake engine that notes when each run was in progress."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spans = []
        self._lock = threading.Lock()

    def run(self, spec, session_id, log_path, on_line):
        start = time.monotonic()
        outcome = super().run(spec, session_id, log_path, on_line)
        with self._lock:
            self.spans.append((start, time.monotonic()))
        return outcome


@pytest.mark.parametrize("same_machine", [False, True])
def test_machines_run_at_once_and_a_machines_runs_take_turns(tmp_path, same_machine):
    rates = {"stock:default": 5.0, "intel:default": 30.0}
    a = Recorder(rates, name="a", machine="m1", delay=0.3)
    b = Recorder(rates, name="b", machine="m1" if same_machine else "m2", delay=0.3)
    engines = EngineSet({"a": a, "b": b})
    machines = [(EPYC, ["a", "b"])] if same_machine else [(EPYC, ["a"]), (EPYC, ["b"])]
    plan = place_fleet(What(("stock", "intel"), ("default",), workload=TINY), machines)
    store, _ = open_session(plan, engines, tmp_path)
    lanes = {"a": "m1", "b": "m1" if same_machine else "m2"}
    results = run_session(plan, engines, store, machine_of=lanes)
    assert [r.index for r in results] == [1, 2, 3, 4] and all(r.ok for r in results)
    for engine in (a, b):  # one engine never overlaps itself
        first, second = engine.spans
        assert not _overlaps(first, second)
    crossed = any(_overlaps(x, y) for x in a.spans for y in b.spans)
    assert crossed is not same_machine


def _confined(name: str, kernel: str, allowed: tuple[int, ...] | None):
    """A host's facts as a probe confined to ``allowed`` CPUs of the 2-CPU host reports them."""
    facts = facts_for(replace(EPYC, allowed=allowed), kernel)
    record = {**facts.record, "hostname": name,
              "machine": machine_name(kernel, facts.topology)}  # fmt: skip
    return replace(facts, record=record)


def test_nodes_confined_to_cpus_apart_are_machines_of_their_own():
    quiet = Quiet()
    facts = {"n0": _confined("n0", "k1", (0,)), "n1": _confined("n1", "k1", (1,))}
    machines = machines_of(facts, quiet)
    assert machines == {"k1 cpus 0": ("n0",), "k1 cpus 1": ("n1",)}
    assert quiet.said == [
        "n0 and n1 share one kernel on CPUs apart: they run at once, and share its memory "
        "bandwidth and caches"
    ]


def test_engines_whose_cpus_overlap_take_turns_whatever_else_they_hold():
    quiet = Quiet()
    facts = {"n0": _confined("n0", "k1", (0,)), "docker": _confined("docker", "k1", None),
             "n1": _confined("n1", "k1", (1,)), "far": _confined("far", "k2", (0,))}  # fmt: skip
    machines = machines_of(facts, quiet)
    assert list(machines.values()) == [("n0", "docker", "n1"), ("far",)]
    assert quiet.said == ["n0 and docker and n1 run on one machine (n0): their runs take turns"]
    assert machines_of({"a": _confined("a", "k1", None), "b": _confined("b", "k1", (0, 1))},
                       Quiet()) == {"k1": ("a", "b")}  # fmt: skip


def test_a_confined_probe_names_its_cpus_in_the_machine():
    raw = parse_probe_output(PROBE)
    assert facts_from_probe(raw, "vm", allowed=(1,)).machine.endswith(" cpus 1")
    assert " cpus " not in facts_from_probe(raw, "vm").machine


# --- the table --------------------------------------------------------------------------------


def _rates(*values):
    keys = ("stock:default", "stock:tuned", "intel:default", "intel:tuned")
    return dict(zip(keys, values, strict=True))


def _results(tmp_path, rates_by_engine, machines_of):
    engines = {
        name: FakeEngine(rates, name=name, machine=machines_of[name])
        for name, rates in rates_by_engine.items()
    }
    facts = {name: e.host_facts("stock") for name, e in engines.items()}
    groups: dict[str, list[str]] = {}
    for name in engines:
        groups.setdefault(facts[name].machine, []).append(name)
    what = What(("stock", "intel"), ("default", "tuned"), workload=TINY, repeats=2)
    plan = place_fleet(what, [(EPYC, names) for names in groups.values()])
    engine = EngineSet(engines)
    store, _ = open_session(plan, engine, tmp_path)
    return run_session(
        plan,
        engine,
        store,
        host_records={n: f.record for n, f in facts.items()},
        machine_of={n: f.machine for n, f in facts.items()},
    )


def test_each_host_has_its_own_baseline_and_best(tmp_path):
    results = _results(
        tmp_path,
        {"small": _rates(2.0, 2.0, 3.0, 3.2), "big": _rates(5.5, 5.5, 33.6, 34.2)},
        {"small": "m1", "big": "m2"},
    )  # fmt: skip
    table = rows(results)
    by = {(r.engine, r.image, r.profile): r for r in table}
    assert by["small", "stock", "default"].baseline
    assert by["big", "stock", "default"].baseline
    assert by["big", "intel", "tuned"].speedup == pytest.approx(34.2 / 5.5)
    assert by["small", "intel", "tuned"].speedup == pytest.approx(3.2 / 2.0)
    assert [k for k, r in by.items() if r.best] == [
        ("small", "intel", "tuned"),
        ("big", "intel", "tuned"),
    ]
    text = render(results, Format.table)
    assert text.splitlines()[0].startswith("compare machines: each ran the whole plan")
    assert text.splitlines()[1].split()[0] == "engine"
    best = text[text.index("Best per engine:") :]
    assert "intel:tuned" in best and "1.00x" in best and f"{3.2 / 34.2:.2f}x" in best
    # one host named as the baseline: every host is measured against it
    pinned = {(r.engine, r.image, r.profile): r for r in rows(results, "stock:default@big")}
    assert pinned["small", "intel", "tuned"].speedup == pytest.approx(3.2 / 5.5)
    assert pinned["small", "stock", "default"].baseline is False


def test_engines_on_one_machine_share_its_baseline(tmp_path):
    results = _results(
        tmp_path,
        {"docker": _rates(2.0, 2.0, 3.0, 3.0), "local": _rates(2.1, 2.1, 3.1, 3.1)},
        {"docker": "m1", "local": "m1"},
    )  # fmt: skip
    by = {(r.engine, r.image, r.profile): r for r in rows(results)}
    assert by["local", "stock", "default"].speedup == pytest.approx(1.05)
    assert [k for k, r in by.items() if r.baseline] == [("docker", "stock", "default")]


# --- the CLI ----------------------------------------------------------------------------------


def test_compare_on_two_hosts(monkeypatch, tmp_path):
    small = {"stock:default": 2.2, "intel:default": 3.1}
    big = {"stock:default": 5.48, "intel:default": 33.62}
    engines = {
        "small": FakeEngine(small, name="small", machine="m1"),
        "big": FakeEngine(big, name="big", machine="m2"),
    }
    code, text = invoke_with(list(engines.values()),
        "compare", "stock", "intel", "-p", "default", "--repeats", "1",
        "--host", "small=tcp://10.0.0.1:2375", "--host", "big=ssh://me@big",
        "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    assert "Best per engine:" in text
    assert [s.engine for s in engines["small"].ran] == ["small", "small"]
    assert [s.engine for s in engines["big"].ran] == ["big", "big"]
    meta = json.loads(next(tmp_path.glob("*/session.json")).read_text())
    assert set(meta["hosts"]) == {"small", "big"}
    assert meta["hosts"]["big"]["boot_id"] == "m2"
    row = next(line for line in text.splitlines() if line.startswith("big") and "intel" in line)
    assert "6.14x" in row


def test_host_and_workload_dir_refused_for_a_remote_engine(monkeypatch, tmp_path):
    class Remote(FakeEngine):  # a Docker engine on another machine: it holds images
        samples_host = False
        client = None
        endpoint = None

        @property
        def images(self):
            return self

    engine = Remote({}, name="far")
    code, text = invoke_with(engine,
        "compare", "stock", "--host", "far=tcp://10.0.0.9:2375", "--workload",
        "tf_cnn_benchmarks", "--workload-dir", str(DATA / "stand-ins" / "tf_cnn_benchmarks"),
        "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 2 and "far cannot see it" in text
    assert engine.ran == []


def test_a_bad_host_is_refused_before_anything_runs(tmp_path):
    code, text = invoke("compare", "stock", "--host", "ftp://x", "--results", str(tmp_path))
    assert code == 2 and "unknown scheme 'ftp'" in text
