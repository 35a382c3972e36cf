"""A run whose CPUs other work took a share of is `disturbed`: kept, shown, out of verdicts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kit.judging.cells import cells
from kit.judging.judge import DISTURBED_SHARE, disturbance, make_result
from kit.judging.parse import parse_output
from kit.model.results import RunOutcome, Status
from kit.model.utilization import Utilization
from kit.reporting.rows import RowStatus, rows
from tests.fakes import provenance_for, workload_output
from tests.test_workloads import _spec


def _busy(percent: float, seconds: int = 30, cpus: int = 2) -> Utilization:
    times = tuple(float(t) for t in range(1, seconds + 1))
    return Utilization(times, tuple(tuple(percent for _ in times) for _ in range(cpus)))


def test_the_share_other_work_took_is_busy_time_less_the_runs_own():
    spec = _spec()  # CPUs 0-1, 30 s sampled
    assert disturbance(spec, 60.0, _busy(100)) == 0.0  # both CPUs busy, all of it the run's
    assert disturbance(spec, 30.0, _busy(100)) == 0.5  # half of their time was someone else's
    assert disturbance(spec, 75.0, _busy(100)) == 0.0  # never below nothing
    assert disturbance(spec, 5.0, _busy(100, seconds=10)) is None  # too short to tell
    assert disturbance(spec, None, _busy(100)) is None  # the workload did not say
    assert disturbance(spec, 10.0, None) is None  # the host was not sampled


def _judged(spec, utilization, keep=False):
    prov = provenance_for(spec)
    lines = [*workload_output(10.0, prov, batch_size=8).splitlines(), "kit-cpu-seconds: 24.0"]
    now = datetime.now(UTC)
    return make_result(spec, RunOutcome(now, now, 0, Path("/x.log")), utilization,
                       parsed=parse_output(lines), keep_disturbed=keep)  # fmt: skip


def test_a_run_beyond_the_share_is_disturbed_out_of_verdicts_unless_kept():
    spec = _spec()
    assert parse_output(["kit-cpu-seconds: 8.0"]).cpu_s == 8.0
    quiet = _judged(spec, _busy(45))  # 27 CPU-s busy, 24 of them the run's own: 5%
    assert quiet.status is Status.ok and quiet.disturbance == 0.05
    hogged = _judged(spec, _busy(100))  # 60 CPU-s busy, 24 the run's: 60% someone else's
    assert hogged.status is Status.disturbed and hogged.disturbance == 0.6 > DISTURBED_SHARE
    assert "other work took 60% of the run's CPUs" in hogged.error
    assert hogged.images_per_sec == 10.0 and cells([hogged])[0].samples() == []
    (row,) = rows([hogged])
    assert row.status is RowStatus.disturbed
    kept = _judged(spec, _busy(100), keep=True)
    assert kept.status is Status.ok and kept.disturbance == 0.6


def test_a_busy_host_is_said_before_the_first_run_and_waited_for_when_asked():
    from kit.campaign.quiet import POLL_S, busy_note, check_quiet

    assert busy_note(5.0, 0.0) is None and busy_note(60.0, 0.0) and busy_note(5.0, 12.0)
    assert "2 other container(s) running" in busy_note(5.0, 0.0, others=2)
    said: list[str] = []
    feedback = type("Say", (), {"say": staticmethod(said.append)})()
    readings = iter([(90.0, 0.0), (70.0, 0.0), (4.0, 0.0)])
    slept: list[float] = []
    check_quiet(feedback, 60.0, read=lambda: next(readings), sleep=slept.append)
    assert slept == [POLL_S, POLL_S] and said == ["waiting up to 60 s for a quiet host (90% busy)"]
    said.clear()
    check_quiet(feedback, None, read=lambda: (90.0, 0.0), sleep=slept.append)
    assert len(said) == 1 and "the host is busy before the first run (90%" in said[0]
    assert "--wait-quiet" in said[0]


def test_the_system_state_that_moves_numbers_is_read_from_the_probe():
    from kit.host.facts import describe_system, system_state

    raw = {"boost": "1", "smt": "on", "thp": "always [madvise] never",
           "loadavg": "0.52 0.40 0.31 1/234 5678"}  # fmt: skip
    assert system_state(raw) == {
        "boost": "on",
        "smt": "on",
        "thp": "madvise",
        "load": "0.52 0.40 0.31",
    }
    intel = system_state({"no_turbo": "1"})  # intel_pstate says it the other way round
    assert intel["boost"] == "off" and intel["smt"] == intel["thp"] == "not readable"
    line = describe_system({"governor": "performance", **system_state(raw), "kernel": "6.1"})
    assert (
        line
        == "governor performance, boost on, SMT on, THP madvise, kernel 6.1, load 0.52 0.40 0.31"
    )


def test_what_took_the_cpus_is_named_with_its_pid_and_cpu_time():
    """A real busy process beside a sampled window is named; the window's own (a process that
    starts after the first reading and ends before the last, like a run) is not."""
    import subprocess
    import sys
    import time

    from kit.host.sampler import Sampler

    with Sampler(interval=0.2) as sampler:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        own = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\n"
                                "while time.time() - t < 0.7: pass"])  # fmt: skip
        own.wait()
        time.sleep(1.0)
        named = sampler
    hog.kill()
    hog.wait()
    found = {c.pid: c for c in named.result().consumers}
    assert own.pid not in found
    assert hog.pid in found and found[hog.pid].cpu_s > 0.5, found
    assert f"(pid {hog.pid}, " in found[hog.pid].label


def test_a_disturbed_run_names_the_busiest_other_processes():
    from kit.model.utilization import Consumer

    busy = _busy(100)
    found = (Consumer("stress-ng", 4321, 28.4), Consumer("python3", 99, 2.0, "3f2a1b4c5d6e"))
    named = Utilization(busy.times_s, busy.busy, found)
    hogged = _judged(_spec(), named)
    assert hogged.status is Status.disturbed
    assert "stress-ng (pid 4321, 28.4 CPU-s)" in hogged.error
    assert "python3 (pid 99, container 3f2a1b4c5d6e, 2.0 CPU-s)" in hogged.error
    unnamed = _judged(_spec(), busy)
    assert "no process that ran through it used CPU" in unnamed.error


def test_a_session_whose_runs_keep_being_disturbed_stops_and_says_what_to_do(monkeypatch, tmp_path):
    """Three disturbed runs in a row: the host is busy, not noisy. The session stops instead of
    spending its plan, keeps what ended, names what took the CPUs and how to go on."""
    from kit.judging import judge
    from tests.conftest import invoke_with
    from tests.fakes import FakeEngine

    class Sampled(FakeEngine):
        samples_host = True  # the session samples this host around each run

    monkeypatch.setattr(judge, "disturbance", lambda spec, cpu_s, utilization: 0.4)
    engine = Sampled({"stock:default": 5.0, "stock:tuned": 6.0})
    code, text = invoke_with(engine, "compare", "stock", "-p", "default", "-p", "tuned",
                             "--repeats", "5", "--results", str(tmp_path))  # fmt: skip
    assert code == 1, text
    assert len(engine.ran) == 3  # not all 10 planned
    assert "stopped after 3 runs in a row were disturbed: other work took 40% of" in text
    assert "--resume" in text and "--wait-quiet" in text
    code, text = invoke_with(Sampled({"stock:default": 5.0, "stock:tuned": 6.0}), "compare",
                             "stock", "-p", "default", "-p", "tuned", "--repeats", "2",
                             "--keep-disturbed", "--results", str(tmp_path / "kept"))  # fmt: skip
    assert code == 0, text  # counted as ok when asked: the session runs to its end
