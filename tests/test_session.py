import json
from datetime import UTC, datetime

import pytest

from kit.campaign.session import RunFinished, open_session, run_session
from kit.errors import KitError, UsageError
from kit.host.topology import topology_from_text
from kit.model.profiles import load_profiles, pick
from kit.model.results import RunOutcome, Status
from kit.model.workload import Model, WorkloadSpec
from kit.planning.placement import CpuSelection
from kit.planning.plan import build_plan
from kit.reporting.formats import Format
from kit.reporting.rows import ROW_SCHEMA
from kit.reporting.table import check_baseline, render, rows
from kit.store.database import ResultsDB
from kit.store.folder import load_session
from tests.conftest import DATA, session_dirs
from tests.fakes import FakeEngine

TOPO = topology_from_text((DATA / "topology" / "epyc-2cpu.lscpu").read_text())
TINY = WorkloadSpec(model=Model.tiny, batch_size=8, num_batches=3, num_warmup_batches=1)


def plan(images=("stock", "intel"), names=("default", "tuned", "interleave"), cpus=None):
    selection = CpuSelection(cpus=cpus) if cpus is not None else None
    return build_plan(list(images), pick(load_profiles(), list(names)), TINY, TOPO, selection)


def session(specs, engine, root, **kwargs):
    store, previous = open_session(specs, engine, root)
    return run_session(specs, engine, store, previous=previous, **kwargs)


def test_plan_is_the_cross_product_image_major():
    specs = plan()
    assert [s.key for s in sorted(specs, key=lambda s: s.cell)] == [
        "stock:default",
        "stock:tuned",
        "stock:interleave",
        "intel:default",
        "intel:tuned",
        "intel:interleave",
    ]
    assert [s.index for s in specs] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("cpus", "match"), [((5,), "CPU 5 not on this host"), ((), "selection is empty")]
)
def test_plan_refuses_bad_cpus(cpus, match):
    with pytest.raises(UsageError, match=match):
        plan(cpus=cpus)


def test_session_persists_each_result_as_it_finishes(tmp_path):
    engine = FakeEngine({"stock:default": 5.48, "intel:tuned": 33.62})
    seen_on_disk = []
    events = []

    def listener(event):
        events.append(type(event).__name__)
        if isinstance(event, RunFinished):
            session = session_dirs(tmp_path)[0]
            seen_on_disk.append(len(load_session(session)))

    specs = plan(names=("default", "tuned"))
    store, previous = open_session(specs, engine, tmp_path)
    assert previous == []
    results = run_session(specs, engine, store, listener)
    assert seen_on_disk == [1, 2, 3, 4]
    status = {r.key: r.status for r in results}
    assert status == {"stock:default": Status.ok, "stock:tuned": Status.failed,
                      "intel:default": Status.failed, "intel:tuned": Status.ok}  # fmt: skip
    assert "RuntimeError: boom" in next(r.error for r in results if r.key == "stock:tuned")
    assert events.count("RunStarted") == 4 and "RunOutput" in events
    assert (store.path / "summary.md").read_text().startswith("| image")
    assert len(list(store.path.glob("*.log"))) == 4
    meta = json.loads((store.path / "session.json").read_text())
    assert [p["profile"] for p in meta["plan"]] == [s.profile.name for s in specs]
    reloaded = load_session(store.path)
    assert reloaded == results


def test_speedup_against_first_row_and_named_baseline(tmp_path):
    engine = FakeEngine({"stock:default": 5.48, "intel:tuned": 33.62, "intel:interleave": 34.18})
    results = session(
        plan(["stock", "intel"], ["default", "tuned", "interleave"]), engine, tmp_path
    )
    table = {r.image + ":" + r.profile: r for r in rows(results)}
    assert table["stock:default"].speedup == pytest.approx(1.0)
    assert table["intel:tuned"].speedup == pytest.approx(33.62 / 5.48)
    assert table["intel:interleave"].speedup == pytest.approx(34.18 / 5.48)
    assert table["stock:tuned"].speedup is None
    by_tuned = {r.image + ":" + r.profile: r for r in rows(results, "intel:tuned")}
    assert by_tuned["intel:interleave"].speedup == pytest.approx(34.18 / 33.62)


def test_renderings(tmp_path):
    engine = FakeEngine({"stock:default": 5.48, "intel:default": 33.62})
    results = session(plan(names=("default",)), engine, tmp_path)
    table = render(results, Format.table)
    assert "6.14x" in table and "5.48" in table and "2.14.1" in table and "2/2" in table
    assert render(results, Format.markdown).splitlines()[1].startswith("|--")
    csv_text = render(results, Format.csv)
    assert csv_text.splitlines()[0].startswith("schema,kind,engine,host,image,tf_version")
    data = json.loads(render(results, Format.json))
    assert data["schema"] == ROW_SCHEMA and data["rows"][1]["images_per_sec"] == 33.62


def test_unknown_baseline_is_refused():
    with pytest.raises(UsageError, match="baseline 'intel:nope'"):
        check_baseline(["stock:default"], "intel:nope")


def test_resume_runs_only_what_is_missing(tmp_path):
    specs = plan(names=("default", "tuned"))
    engine = FakeEngine(
        {"stock:default": 5.0, "stock:tuned": 6.0, "intel:default": 7.0, "intel:tuned": 8.0}
    )
    store, _ = open_session(specs, engine, tmp_path)
    run_session(specs[:2], engine, store)  # as if interrupted after two runs
    engine.ran.clear()
    resumed, previous = open_session(specs, engine, tmp_path, resume=store.session_id)
    assert resumed.path == store.path and [r.index for r in previous] == [1, 2]
    results = run_session(specs, engine, resumed, previous=previous)
    assert [s.index for s in engine.ran] == [3, 4]
    assert [r.index for r in results] == [1, 2, 3, 4]
    assert [r.index for r in load_session(store.path)] == [1, 2, 3, 4]


class _Losing(FakeEngine):
    """Loses some runs as a Slurm node that fails mid-run does: no exit status, Slurm's reason."""

    def __init__(self, rates, lose: set[int]) -> None:
        super().__init__(rates)
        self.lose = lose

    def run(self, spec, session_id, log_path, on_line):
        if spec.index not in self.lose:
            return super().run(spec, session_id, log_path, on_line)
        self.ran.append(spec)
        log_path.write_text("step 1\n")
        why = "Slurm job 7 ended before this run finished: NODE_FAIL"
        now = datetime.now(UTC)
        return RunOutcome(now, now, None, log_path, error=why, lost=True)


def test_resume_runs_again_the_runs_an_engine_lost_and_only_those(tmp_path):
    specs = plan(names=("default", "tuned"))
    at = {s.key: s.index for s in specs}
    lost = at["stock:tuned"]
    rates = {"stock:default": 5.0, "stock:tuned": 6.0, "intel:tuned": 8.0}  # intel:default fails
    said: list[str] = []
    with ResultsDB(tmp_path / "kit.db") as db:
        store, _ = open_session(specs, FakeEngine(rates), tmp_path, db=db)
        first = run_session(specs, _Losing(rates, {lost}), store)
        status = {r.key: r.status for r in first}
        assert status == {"stock:default": Status.ok, "stock:tuned": Status.lost,
                          "intel:default": Status.failed, "intel:tuned": Status.ok}  # fmt: skip
        assert "NODE_FAIL" in next(r.error for r in first if r.index == lost)
        again = _Losing({**rates, "intel:default": 7.0}, set())
        resumed, previous = open_session(specs, again, tmp_path, store.session_id, db=db,
                                         say=said.append)  # fmt: skip
        assert sorted(r.index for r in previous) == sorted({1, 2, 3, 4} - {lost})  # failed: kept
        assert said == [f"1 run(s) their engine lost run again (run {lost}: Slurm job 7 ended "
                        "before this run finished: NODE_FAIL)"]  # fmt: skip
        results = run_session(specs, again, resumed, previous=previous)
        assert [s.index for s in again.ran] == [lost]
        assert {r.key: r.status for r in results} == {**status, "stock:tuned": Status.ok}
        assert [r.status for r in load_session(store.path)] == [r.status for r in results]
        assert [r["status"] for r in db.runs(store.session_id)] == [r.status.value
                                                                    for r in results]  # fmt: skip
        with pytest.raises(KitError, match="kit never overwrites a recorded run"):
            db.add_run(store.session_id, results[0].to_json())  # a measurement stays


def test_resume_refuses_a_different_plan(tmp_path):
    engine = FakeEngine({})
    store, _ = open_session(plan(names=("default",)), engine, tmp_path)
    with pytest.raises(UsageError, match="was a different plan"):
        open_session(plan(names=("tuned",)), engine, tmp_path, resume=store.session_id)
    with pytest.raises(UsageError, match="no kit session"):
        open_session(plan(), engine, tmp_path, resume="20000101T000000Z")


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    engine = FakeEngine({"stock:default": 5.0})
    specs = plan(images=("stock",), names=("default",))
    store, _ = open_session(specs, engine, tmp_path)
    run_session(specs, engine, store)
    with (store.path / "results.jsonl").open("a") as out:
        out.write('{"index": 2, "ima')
    assert [r.index for r in load_session(store.path)] == [1]


def test_a_slurm_jobs_worker_runs_its_share_through_the_session_as_the_host_does(tmp_path):
    """The node's side of a Slurm job: its engine wrapped to wait for each run's turn and write
    its outcome; the session it runs asks of it what it asks of any engine (a rerun line too)."""
    from kit.campaign.worker import Recording
    from kit.engines.slurm.share import go_path, outcome_path

    specs = plan(images=("stock",), names=("default",))
    share = tmp_path / "share"
    share.mkdir()
    for spec in specs:
        go_path(share, spec).touch()  # the submitting host's go for every run
    recording = Recording(FakeEngine({"stock:default": 10.0}, name="docker"), share)
    results = session(specs, recording, tmp_path / "results")
    assert [r.ok for r in results] == [True] * len(specs)
    assert all(r.rerun.startswith("fake-engine run") for r in results)
    assert all(outcome_path(share, s).is_file() for s in specs)
