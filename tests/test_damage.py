"""The damaged-state matrix: a session folder or results database damaged in each way a crash,
a full disk or a person can damage it, then resumed (or read by the gate). Each case either
repairs what it can from the source of truth (the database), says so and loses nothing, or is
refused with one line before anything runs."""

import json
import sqlite3

import pytest

from kit.campaign.run import execute, prepare
from kit.errors import UsageError
from kit.judging.gate import Gate
from kit.model.feedback import Quiet
from kit.store.database import ResultsDB
from kit.store.folder import load_session
from tests.fakes import FakeEngine, GivenEngines
from tests.test_campaign import request

RATES = {"stock:default": 5.0, "intel:default": 30.0}


def _first_session(tmp_path):
    """A finished session of 4 runs (stock and intel, 2 repeats)."""
    engine = FakeEngine(RATES, name="docker")
    prepared = prepare(request(tmp_path, repeats=2), GivenEngines(engine), Quiet())
    finished = execute(prepared, Quiet())
    assert len(finished.runs) == 4
    return finished


def _resume(tmp_path, session_id):
    engine = FakeEngine(RATES, name="docker")
    said = Quiet()
    req = request(tmp_path, repeats=2, how={"resume": session_id})
    finished = execute(prepare(req, GivenEngines(engine), said), said)
    return finished, engine, said


def _agree(tmp_path, finished, original):
    """The folder and the database hold the same runs, the original measurements."""
    folder = {r.index: r.images_per_sec for r in load_session(finished.folder)}
    with ResultsDB(tmp_path / "results" / "kit.db") as db:
        stored = {r["index"]: r["images_per_sec"] for r in db.runs(finished.session_id)}
    assert folder == stored == {r.index: r.images_per_sec for r in original.runs}
    lines = (finished.folder / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines)


def _cut_last_line(folder):
    path = folder / "results.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _garbage_line(folder):
    path = folder / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{not json\n" + "".join(lines[2:]))


def _no_lines(folder):
    (folder / "results.jsonl").unlink()


def _no_run_file(folder):
    next(folder.glob("0*-*.json")).unlink()
    _cut_last_line(folder)


@pytest.mark.parametrize("damage", [_cut_last_line, _garbage_line, _no_lines, _no_run_file])
def test_a_damaged_folder_is_repaired_from_the_database_and_nothing_runs_again(tmp_path, damage):
    original = _first_session(tmp_path)
    damage(original.folder)
    finished, engine, said = _resume(tmp_path, original.session_id)
    assert engine.ran == []  # every run was finished: none runs again
    assert any("repaired" in line and "results.jsonl" in line for line in said.said)
    _agree(tmp_path, finished, original)
    # and again: the second resume finds nothing to repair, and loses nothing either
    finished, engine, said = _resume(tmp_path, original.session_id)
    assert engine.ran == [] and not any("repaired" in line for line in said.said)
    _agree(tmp_path, finished, original)


def test_a_lost_database_is_refilled_from_the_folder(tmp_path):
    original = _first_session(tmp_path)
    db = tmp_path / "results" / "kit.db"
    for path in db.parent.glob("kit.db*"):
        path.unlink()
    finished, engine, said = _resume(tmp_path, original.session_id)
    assert engine.ran == [] and any("added 4 run(s)" in line for line in said.said)
    _agree(tmp_path, finished, original)


def test_a_resume_after_a_cut_line_runs_only_the_missing_runs(tmp_path):
    """An interrupted session whose last line was cut: the database has that run, so only the
    runs that never finished run."""
    original = _first_session(tmp_path)
    with ResultsDB(tmp_path / "results" / "kit.db") as db:
        db._conn.execute("DELETE FROM runs WHERE idx = 4")  # as if it never finished
        db._conn.commit()
    lines = (original.folder / "results.jsonl").read_text().splitlines(keepends=True)
    (original.folder / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:30])
    finished, engine, _ = _resume(tmp_path, original.session_id)
    assert [s.index for s in engine.ran] == [4]
    _agree(tmp_path, finished, original)


@pytest.mark.parametrize(
    ("damage", "match"),
    [(lambda f: (f / "session.json").write_text("{cut"), "is damaged"),
     (lambda f: (f / "session.json").write_bytes(b"\xff\xfe"), "is damaged"),
     (lambda f: (f / "session.json").write_text("[1, 2]"), "is damaged"),
     (lambda f: (f / "session.json").unlink(), "no kit session")],
)  # fmt: skip
def test_a_damaged_session_record_is_refused_before_anything_runs(tmp_path, damage, match):
    original = _first_session(tmp_path)
    damage(original.folder)
    engine = FakeEngine(RATES, name="docker")
    req = request(tmp_path, repeats=2, how={"resume": original.session_id})
    with pytest.raises(UsageError, match=match):
        prepare(req, GivenEngines(engine), Quiet())
    assert engine.ran == []


def _foreign(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")


def _future(path):
    with ResultsDB(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")


@pytest.mark.parametrize(
    ("make", "match"),
    [(_foreign, "not kit's results database"), (_future, "schema version 99"),
     (lambda p: p.write_bytes(b"garbage" * 100), "not an SQLite database"),
     (lambda p: p.mkdir(), "is a directory")],
)  # fmt: skip
def test_a_database_that_is_not_kits_is_refused_untouched(tmp_path, make, match):
    path = tmp_path / "other.db"
    make(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    engine = FakeEngine(RATES, name="docker")
    req = request(tmp_path, how={"db": path})
    with pytest.raises(UsageError, match=match):
        prepare(req, GivenEngines(engine), Quiet())
    assert engine.ran == [] and sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal


def test_the_gate_reads_a_damaged_baseline_from_the_database(tmp_path):
    original = _first_session(tmp_path)
    _garbage_line(original.folder)
    req = request(tmp_path, repeats=2, how={"gate": Gate(original.session_id, 10)})
    prepared = prepare(req, GivenEngines(FakeEngine(RATES, name="docker")), Quiet())
    assert len(prepared.gate_runs) == 4


@pytest.mark.parametrize("text", ["latest", "2026"])
def test_the_gate_takes_latest_and_a_unique_prefix(tmp_path, text):
    _first_session(tmp_path)
    req = request(tmp_path, repeats=2, how={"gate": Gate(text, 10)})
    prepared = prepare(req, GivenEngines(FakeEngine(RATES, name="docker")), Quiet())
    assert len(prepared.gate_runs) == 4


def test_a_full_disk_mid_session_keeps_what_was_recorded_and_says_how_to_resume(tmp_path):
    import errno

    class FillsTheDisk(FakeEngine):
        def run(self, spec, session_id, log_path, on_line):
            if spec.index == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(log_path))
            return super().run(spec, session_id, log_path, on_line)

    from kit.errors import KitError

    engine = FillsTheDisk(RATES, name="docker")
    prepared = prepare(request(tmp_path, repeats=2), GivenEngines(engine), Quiet())
    with pytest.raises(KitError, match="No space left on device") as info:
        execute(prepared, Quiet())
    assert "--resume" in info.value.hint
    session = next((tmp_path / "results").glob("2*"))
    assert [r.index for r in load_session(session)] == [1, 2]
    finished, again, _ = _resume(tmp_path, session.name)
    assert [s.index for s in again.ran] == [3, 4] and len(finished.runs) == 4


def test_the_gate_takes_a_session_folder_the_database_does_not_know(tmp_path):
    original = _first_session(tmp_path)
    copy = tmp_path / "results" / "copied-from-elsewhere"
    copy.mkdir()
    for name in ("session.json", "results.jsonl"):
        (copy / name).write_bytes((original.folder / name).read_bytes())
    req = request(tmp_path, repeats=2, how={"gate": Gate("copied-from-elsewhere", 10)})
    prepared = prepare(req, GivenEngines(FakeEngine(RATES, name="docker")), Quiet())
    assert len(prepared.gate_runs) == 4
    req = request(tmp_path, repeats=2, how={"gate": Gate("nowhere", 10)})
    with pytest.raises(UsageError, match="no session 'nowhere' in results database"):
        prepare(req, GivenEngines(FakeEngine(RATES, name="docker")), Quiet())


def test_a_locked_database_is_said_and_a_resume_afterwards_loses_nothing(tmp_path, monkeypatch):
    from kit.store import schema

    original = _first_session(tmp_path)
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(tmp_path / "results" / "kit.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds it
    try:
        engine = FakeEngine(RATES, name="docker")
        req = request(tmp_path, repeats=2, how={"resume": original.session_id})
        with pytest.raises(UsageError, match="database is locked"):
            execute(prepare(req, GivenEngines(engine), Quiet()), Quiet())
        assert engine.ran == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    finished, engine, _ = _resume(tmp_path, original.session_id)
    assert engine.ran == []
    _agree(tmp_path, finished, original)
