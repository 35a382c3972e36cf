import contextlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from kit.errors import KitError, UsageError
from kit.model.results import RunResult, Status
from kit.store.database import ResultsDB, SessionRow
from kit.store.schema import SCHEMA_VERSION


def meta(started: str, **extra) -> dict:
    return {"started": started, "host": "bench-1", "kit_version": "1.2.3", **extra}


def record(index: int, image="stock", profile="default", status="ok", ips=100.0, **extra) -> dict:
    result = RunResult(
        index=index,
        image=image,
        image_ref=f"kit/{image}:latest",
        profile=profile,
        cpus="0-3",
        numactl="none",
        command=("python", "bench.py"),
        env={"OMP_NUM_THREADS": "4"},
        status=Status(status),
        images_per_sec=ips,
        started=f"2024-05-01T10:00:{index:02d}+00:00",
        ended=f"2024-05-01T10:01:{index:02d}+00:00",
        exit_code=0 if status == "ok" else 1,
        log_path=f"/results/s/{index:02d}.log",
    )
    return {**result.to_json(), **extra}


def stored(rec: dict) -> dict:
    """A record as JSON gives it back: tuples come back as lists."""
    return json.loads(json.dumps(rec))


@pytest.fixture
def db(tmp_path):
    with ResultsDB(tmp_path / "db" / "results.sqlite") as opened:
        yield opened


def test_creates_file_and_folder_with_schema(tmp_path):
    path = tmp_path / "deep" / "er" / "results.sqlite"
    with ResultsDB(path):
        pass
    assert path.is_file()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "runs_image_profile" in indexes
    raw.close()
    # Opening again neither fails nor writes a second version row.
    with ResultsDB(path):
        pass
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)
    raw.close()


def test_round_trip_of_sessions_and_runs(db):
    db.add_session("20240501T100000Z", meta("2024-05-01T10:00:00+00:00", plan=[1, 2]))
    records = [
        record(1, "stock", "default", ips=100.0),
        record(2, "stock", "tuned", ips=150.0, cell=2, repeat=1, instance=2),
        record(3, "intel", "default", ips=120.0),
    ]
    for rec in records:
        db.add_run("20240501T100000Z", rec)

    assert db.runs("20240501T100000Z") == [stored(r) for r in records]
    assert RunResult.from_json(db.runs("20240501T100000Z")[0]).images_per_sec == 100.0
    (row,) = db.sessions()
    assert row == SessionRow(
        id="20240501T100000Z",
        started="2024-05-01T10:00:00+00:00",
        host="bench-1",
        kit_version="1.2.3",
        meta=meta("2024-05-01T10:00:00+00:00", plan=[1, 2]),
        runs=3,
        images=("stock", "intel"),
        profiles=("default", "tuned"),
        best=("stock:tuned", 150.0),
    )


def test_optional_columns_default_and_are_stored(db, tmp_path):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    bare = record(1)
    for key in ("cell", "instance"):
        del bare[key]
    db.add_run("s", bare)
    db.add_run("s", record(2, cell=3, repeat=4, instance=2))
    raw = sqlite3.connect(db.path)
    assert raw.execute("SELECT idx, cell, repeat, instance FROM runs ORDER BY idx").fetchall() == [
        (1, 1, 0, 1),
        (2, 3, 4, 2),
    ]
    raw.close()


def test_runs_come_back_in_index_order(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    for index in (3, 1, 2):
        db.add_run("s", record(index))
    assert [r["index"] for r in db.runs("s")] == [1, 2, 3]


def test_sessions_newest_first_and_limit(db):
    db.add_session("20240502T000000Z", meta("2024-05-02T00:00:00+00:00"))
    db.add_session("20240501T000000Z", meta("2024-05-01T00:00:00+00:00"))
    db.add_session("20240503T000000Z", meta("2024-05-03T00:00:00+00:00"))
    db.add_run("20240501T000000Z", record(1))
    assert [s.id for s in db.sessions()] == [
        "20240503T000000Z",
        "20240502T000000Z",
        "20240501T000000Z",
    ]
    assert [s.id for s in db.sessions(limit=2)] == ["20240503T000000Z", "20240502T000000Z"]
    assert [(s.runs, s.best) for s in db.sessions()] == [
        (0, None),
        (0, None),
        (1, ("stock:default", 100.0)),
    ]
    assert db.latest_session() == "20240503T000000Z"


def test_latest_session_of_an_empty_database(db):
    assert db.latest_session() is None
    assert db.sessions() == []


def test_best_ignores_runs_that_are_not_ok(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    db.add_run("s", record(1, "stock", "default", ips=100.0))
    db.add_run("s", record(2, "intel", "default", status="INVALID", ips=900.0))
    db.add_run("s", record(3, "intel", "tuned", status="failed", ips=None))
    db.add_run("s", record(4, "stock", "tuned", status="timed out", ips=None))
    (row,) = db.sessions()
    assert row.best == ("stock:default", 100.0)
    assert row.runs == 4
    assert row.images == ("stock", "intel")
    assert row.profiles == ("default", "tuned")


def test_best_is_none_when_no_run_is_ok(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    db.add_run("s", record(1, status="failed", ips=None))
    assert db.sessions()[0].best is None


def test_a_recorded_run_is_never_replaced(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    db.add_run("s", record(1, ips=123.0))
    with pytest.raises(KitError, match="never overwrites a recorded run"):
        db.add_run("s", record(1, ips=5.0))
    assert [(r["index"], r["status"], r["images_per_sec"]) for r in db.runs("s")] == [
        (1, "ok", 123.0)
    ]
    assert db.sessions()[0].runs == 1


def test_adding_a_session_again_updates_its_meta_and_keeps_its_runs(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00", engine="docker"))
    db.add_run("s", record(1))
    db.add_session("s", meta("2024-05-01T10:00:00+00:00", engine="docker", resumed=True))
    (row,) = db.sessions()
    assert row.meta["resumed"] is True
    assert row.runs == 1
    assert len(db.runs("s")) == 1


def test_a_run_for_an_unknown_session_is_refused(db):
    with pytest.raises(KitError, match="add the session before its runs"):
        db.add_run("nope", record(1))


class FailsAfterWriting:
    """The database connection, except that a write raises once its statement has run: the
    failure falls inside the transaction, after the row is written but before the commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self):
        return self.conn.__enter__()

    def __exit__(self, *exc):
        return self.conn.__exit__(*exc)

    def execute(self, sql, *params):
        self.conn.execute(sql, *params)
        if sql.lstrip().startswith("INSERT"):
            assert self.conn.in_transaction
            raise OSError("disk pulled mid-write")


def test_a_failure_mid_transaction_leaves_only_committed_rows(db, monkeypatch):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    db.add_run("s", record(1, ips=100.0))
    db.add_run("s", record(2, ips=200.0))
    before = db.runs("s")

    real = db._conn
    monkeypatch.setattr(db, "_conn", FailsAfterWriting(real))
    with pytest.raises(OSError, match="disk pulled"):
        db.add_run("s", record(3, ips=300.0))
    with pytest.raises(OSError, match="disk pulled"):
        db.add_run("s", record(2, ips=999.0))  # a replacement, undone too
    monkeypatch.setattr(db, "_conn", real)

    assert not real.in_transaction
    assert db.runs("s") == before
    with ResultsDB(db.path) as other:
        assert other.runs("s") == before
        assert other.sessions()[0].runs == 2


def test_a_record_that_is_not_json_leaves_only_committed_rows(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    db.add_run("s", record(1))
    before = db.runs("s")
    with pytest.raises(TypeError):
        db.add_run("s", record(2, provenance={"bad": object()}))
    with pytest.raises(TypeError):
        db.add_run("s", record(1, provenance={"bad": object()}))
    assert db.runs("s") == before
    with ResultsDB(db.path) as other:
        assert other.runs("s") == before


def test_a_second_connection_reads_a_write_at_once(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsDB(path) as writer, ResultsDB(path) as reader:
        assert reader.sessions() == []
        writer.add_session("s", meta("2024-05-01T10:00:00+00:00"))
        assert reader.latest_session() == "s"
        writer.add_run("s", record(1))
        assert reader.runs("s") == [stored(record(1))]
        writer.add_run("s", record(2, ips=250.0))
        assert reader.sessions()[0].best == ("stock:default", 250.0)


def test_a_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not results\n" * 50)
    with pytest.raises(UsageError, match="not an SQLite database"):
        ResultsDB(path)
    assert path.read_text() == "these are not results\n" * 50


def test_another_programs_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE contacts (name TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(UsageError, match="not kit's results database"):
        ResultsDB(path)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is a directory") as caught:
        ResultsDB(tmp_path)
    assert caught.value.hint


def test_a_path_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"cannot be made: .* is a file"):
        ResultsDB(tmp_path / "file" / "results.sqlite")


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` unwritable for this process: a read-only bind mount for root (who
    writes through file permissions), the permission bits for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_an_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    # refused before any file is opened: a probe file in the folder cannot be made
    with read_only(folder), pytest.raises(UsageError, match="cannot be written"):
        ResultsDB(folder / "results.sqlite")


def test_a_read_only_database_is_refused_when_opened(tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "results.sqlite"
    with ResultsDB(path) as db:
        db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    with read_only(folder), pytest.raises(UsageError, match=r"readonly|unable to open"):
        ResultsDB(path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsDB(path):
        pass
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(UsageError, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        ResultsDB(path)
    assert "upgrade kit" in str(caught.value)


@pytest.fixture
def three(db):
    db.add_session("20240501T100000Z", meta("2024-05-01T10:00:00+00:00"))
    db.add_session("20240501T100000Z-2", meta("2024-05-01T10:00:00+00:00"))
    db.add_session("20240602T080000Z", meta("2024-06-02T08:00:00+00:00"))
    return db


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240501T100000Z", "20240501T100000Z"),  # exact, though it also prefixes another
        ("20240501T100000Z-", "20240501T100000Z-2"),
        ("202406", "20240602T080000Z"),
        ("latest", "20240602T080000Z"),
    ],
)
def test_resolve_session(three, text, expected):
    assert three.resolve_session(text) == expected


def test_resolve_session_ambiguous_prefix_lists_candidates(three):
    with pytest.raises(UsageError, match="ambiguous") as caught:
        three.resolve_session("202405")
    assert "20240501T100000Z-2, 20240501T100000Z" in str(caught.value)


@pytest.mark.parametrize("text", ["2023", "", "%", "2024_5"])
def test_resolve_session_unknown_names_the_newest(three, text):
    with pytest.raises(UsageError, match="no session") as caught:
        three.resolve_session(text)
    assert caught.value.hint.startswith("known sessions, newest first: 20240602T080000Z")


def test_resolve_latest_in_an_empty_database(db):
    with pytest.raises(UsageError, match="no sessions yet"):
        db.resolve_session("latest")


def test_runs_of_an_unknown_session_names_the_newest_few(db):
    for day in range(1, 9):
        db.add_session(f"202405{day:02d}", meta(f"2024-05-{day:02d}T00:00:00+00:00"))
    with pytest.raises(UsageError, match="no session 'nope'") as caught:
        db.runs("nope")
    hint = caught.value.hint
    assert hint.startswith("known sessions, newest first: 20240508, 20240507")
    assert "20240504, ..." in hint
    assert "20240503" not in hint


def test_runs_of_a_session_without_runs_is_empty(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00"))
    assert db.runs("s") == []


def test_meta_is_stored_as_json(db):
    db.add_session("s", meta("2024-05-01T10:00:00+00:00", plan=[{"image": "stock"}]))
    raw = sqlite3.connect(db.path)
    (text,) = raw.execute("SELECT meta FROM sessions").fetchone()
    raw.close()
    assert json.loads(text)["plan"] == [{"image": "stock"}]
