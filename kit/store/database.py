"""The results database: one SQLite file every session and every run is written to as it finishes.

The session folders stay the record of what happened; the database is what lets any number of
sessions be listed, found and compared without reading every folder.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from kit.errors import KitError, UsageError
from kit.judging.series import SessionRuns, split_cell
from kit.model.results import RunResult
from kit.store.schema import check_file, open_error, prepare

NEWEST_SHOWN = 5  # session ids an error message names, newest first

# Newest first; the id breaks a tie (ids are UTC timestamps, a same-second one gets "-2").
_NEWEST_FIRST = "ORDER BY started DESC, id DESC"


@dataclass(frozen=True)
class SessionRow:
    """One session as the database knows it, with what its runs add up to."""

    id: str
    started: str | None
    host: str | None
    kit_version: str | None
    meta: dict
    runs: int
    images: tuple[str, ...]  # distinct labels, in the order the runs first used them
    profiles: tuple[str, ...]
    best: tuple[str, float] | None  # ("image:profile", images/sec) of the fastest ok run


class ResultsDB:
    """An open results database. Every write is its own transaction, committed before it returns,
    so a crash or a Ctrl-C loses at most the run being written, never a row already there."""

    @staticmethod
    def check(path: Path) -> None:
        """Refuse, before anything runs and without touching the file, a path that is no kit
        results database (a folder, a FIFO, another program's file, a newer schema)."""
        check_file(path)

    def __init__(self, path: Path) -> None:
        self.path = path
        ResultsDB.check(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the folder for results database {path}: {exc.strerror}",
                "pass a path in a writable directory",
            ) from None
        try:
            # Runs finish on worker threads (instances run at once); the session serialises
            # its writes, so one connection may be shared across them.
            self._conn = sqlite3.connect(path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise open_error(path, exc) from None
        try:
            prepare(self._conn, path)
        except sqlite3.Error as exc:
            self._conn.close()
            raise open_error(path, exc) from None
        except KitError:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add_session(self, session_id: str, meta: dict) -> None:
        """Record a session; adding it again (a resumed session) replaces its meta."""
        row = (
            session_id,
            meta.get("started"),
            ", ".join(hostnames(meta)) or None,
            meta.get("kit_version"),
            json.dumps(meta, sort_keys=True),
        )
        # An upsert, not INSERT OR REPLACE: replacing would delete the row its runs refer to.
        self._write(
            f"session {session_id}",
            """INSERT INTO sessions (id, started, host, kit_version, meta) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET started = excluded.started, host = excluded.host,
               kit_version = excluded.kit_version, meta = excluded.meta""",
            row,
        )

    def knob_values(self, session_id: str) -> dict[str, dict[str, str]]:
        """A sweep's cells (IMAGE:PROFILE) and their knob values; empty for other sessions."""
        out: dict[str, dict[str, str]] = {}
        for cell, knob, value in self._conn.execute(
            "SELECT cell, knob, value FROM knobs WHERE session_id = ? ORDER BY rowid", (session_id,)
        ):
            out.setdefault(cell, {})[knob] = value
        return out

    def add_run(self, session_id: str, record: dict) -> None:
        """Record one run (``RunResult.to_json()``); the same index again is refused, unless
        the run recorded was lost by its engine."""
        row = (
            session_id,
            record["index"],
            record["image"],
            record["profile"],
            record.get("cell", 1),
            record.get("repeat", 0),
            record.get("instance", 1),
            record["status"],
            record["images_per_sec"],
            record["started"],
            record["ended"],
            json.dumps(record, sort_keys=True),
        )
        try:
            added = self._write(
                f"run {record['index']} of session {session_id}",
                """INSERT INTO runs (session_id, idx, image, profile, cell, repeat,
                   instance, status, images_per_sec, started, ended, result)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (session_id, idx) DO UPDATE SET image = excluded.image,
                   profile = excluded.profile, cell = excluded.cell, repeat = excluded.repeat,
                   instance = excluded.instance, status = excluded.status,
                   images_per_sec = excluded.images_per_sec, started = excluded.started,
                   ended = excluded.ended, result = excluded.result
                   WHERE runs.status = 'lost'""",
                row,
            )
        except sqlite3.IntegrityError:
            raise KitError(
                f"run {record['index']} names session {session_id}, which results database "
                f"{self.path} does not hold",
                "add the session before its runs",
            ) from None
        # Append-only: a measurement, once recorded, is never replaced (a run its engine lost
        # is not one: its run again takes its place).
        if not added:
            raise KitError(
                f"run {record['index']} of session {session_id} is already in results database "
                f"{self.path}; kit never overwrites a recorded run",
                "resume the session to run only what it is missing",
            )
        cell = f"{record['image']}:{record['profile']}"
        for knob, value in dict(record.get("knobs") or []).items():
            self._write(
                f"run {record['index']} of session {session_id}",
                "INSERT OR IGNORE INTO knobs (session_id, cell, knob, value) VALUES (?, ?, ?, ?)",
                (session_id, cell, knob, value),
            )

    def _write(self, what: str, sql: str, params: tuple) -> int:
        """One statement in its own transaction; how many rows it changed."""
        try:
            # One transaction: committed when the block ends, rolled back if anything raises.
            with self._conn:
                return self._conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise KitError(
                f"cannot write {what} to results database {self.path}: {exc}",
                "check the disk and that no other program holds the file",
            ) from None

    def add_peak(self, host: str, image_id: str, gflops: float, detail: dict) -> None:
        self._write(
            f"the peak of {host}",
            "INSERT OR REPLACE INTO peaks (host, image_id, gflops, measured, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (host, image_id, gflops, datetime.now(UTC).isoformat(), json.dumps(detail)),
        )

    def peaks(self, host: str) -> dict[str, float]:
        """Measured GFLOP/s by image id on this host."""
        rows = self._conn.execute("SELECT image_id, gflops FROM peaks WHERE host = ?", (host,))
        return dict(rows.fetchall())

    def sessions(self, limit: int | None = None) -> list[SessionRow]:
        """Sessions newest first, each with its runs summed up."""
        newest = f"SELECT id FROM sessions {_NEWEST_FIRST} LIMIT ?"
        count = (-1 if limit is None else max(limit, 0),)  # SQLite reads LIMIT -1 as no limit
        # One read transaction: both queries see the same sessions although a run may be
        # writing a new one between them.
        self._conn.execute("BEGIN")
        try:
            chosen = self._conn.execute(
                f"SELECT id, started, host, kit_version, meta FROM sessions {_NEWEST_FIRST} "
                "LIMIT ?",
                count,
            ).fetchall()
            runs: dict[str, list[tuple]] = {row[0]: [] for row in chosen}
            for session_id, *run in self._conn.execute(
                "SELECT session_id, image, profile, status, images_per_sec FROM runs "
                f"WHERE session_id IN ({newest}) ORDER BY session_id, idx",
                count,
            ):
                runs[session_id].append(tuple(run))
        finally:
            self._conn.rollback()  # it only read
        return [
            _session_row(id_, started, host, version, meta, runs[id_])
            for id_, started, host, version, meta in chosen
        ]

    def runs(self, session_id: str) -> list[dict]:
        """A session's full run records, in run order."""
        self._require(session_id)
        return [
            json.loads(text)
            for (text,) in self._conn.execute(
                "SELECT result FROM runs WHERE session_id = ? ORDER BY idx", (session_id,)
            )
        ]

    def history(self, cell: str | None = None) -> list[SessionRuns]:
        """Every session's runs (of one IMAGE:PROFILE, when given), oldest first: what a
        cell's series over time is made of (``kit.judging.series``)."""
        where, params = "", ()
        if cell is not None:
            image, profile = split_cell(cell)

            where, params = "WHERE r.image = ? AND r.profile = ?", (image, profile)
        found: dict[str, list[RunResult]] = {}
        sessions: dict[str, tuple] = {}
        self._conn.execute("BEGIN")  # one read: a session being written is seen whole or not
        try:
            for sid, started, version, meta, result in self._conn.execute(
                "SELECT s.id, s.started, s.kit_version, s.meta, r.result FROM runs r "
                f"JOIN sessions s ON s.id = r.session_id {where} ORDER BY s.started, s.id, r.idx",
                params,
            ):
                sessions.setdefault(sid, (started, version, meta))
                found.setdefault(sid, []).append(RunResult.from_json(json.loads(result)))
        finally:
            self._conn.rollback()  # it only read
        return [
            SessionRuns(sid, started or "", version, tuple(found[sid]), _onednn(meta))
            for sid, (started, version, meta) in sessions.items()
        ]

    def has_session(self, session_id: str) -> bool:
        return self._exists(session_id)

    def latest_session(self) -> str | None:
        row = self._conn.execute(f"SELECT id FROM sessions {_NEWEST_FIRST} LIMIT 1").fetchone()
        return row[0] if row else None

    def resolve_session(self, text: str) -> str:
        """A session id from what a user typed: the id, a unique prefix of it, or ``latest``."""
        if self._exists(text):
            return text
        if text == "latest":
            latest = self.latest_session()
            if latest is None:
                raise UsageError(
                    f"results database {self.path} holds no sessions yet", "run a session first"
                )
            return latest
        matches = []
        if text:
            matches = [
                row[0]
                for row in self._conn.execute(
                    f"SELECT id FROM sessions WHERE substr(id, 1, ?) = ? {_NEWEST_FIRST}",
                    (len(text), text),
                )
            ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UsageError(
                f"session {text!r} is ambiguous: it starts {len(matches)} sessions",
                "name one of " + _listing(matches),
            )
        raise self._unknown(text)

    def _exists(self, session_id: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
        return found.fetchone() is not None

    def _require(self, session_id: str) -> None:
        if not self._exists(session_id):
            raise self._unknown(session_id)

    def _unknown(self, session_id: str) -> UsageError:
        newest = [
            row[0]
            for row in self._conn.execute(
                f"SELECT id FROM sessions {_NEWEST_FIRST} LIMIT ?", (NEWEST_SHOWN + 1,)
            )
        ]
        hint = (
            "known sessions, newest first: " + _listing(newest)
            if newest
            else "the database holds no sessions yet"
        )
        return UsageError(f"no session {session_id!r} in results database {self.path}", hint)


def hostnames(meta: dict) -> list[str]:
    """The machines a session ran on, by hostname, from its one hosts record (engine -> host
    record); sessions kit recorded before had ``host_record`` and ``host`` instead."""
    records = meta.get("hosts") or {"": meta.get("host_record") or {"hostname": meta.get("host")}}
    names = (str(r.get("hostname")) for r in records.values() if r and r.get("hostname"))
    return list(dict.fromkeys(names))


def _onednn(meta: str) -> dict[str, str]:
    """oneDNN's version by IMAGE:PROFILE@ENGINE, from a session's --verify records."""
    records = json.loads(meta or "{}").get("verify") or []
    return {
        f"{r.get('image')}:{r.get('profile')}@{r.get('engine')}": str(r["version"])
        for r in records
        if isinstance(r, dict) and r.get("version")
    }


def _session_row(
    id_: str,
    started: str | None,
    host: str | None,
    kit_version: str | None,
    meta: str,
    runs: list[tuple],
) -> SessionRow:
    images: dict[str, None] = {}  # a dict keeps first-seen order and drops repeats
    profiles: dict[str, None] = {}
    best: tuple[str, float] | None = None
    for image, profile, status, images_per_sec in runs:
        images.setdefault(image)
        profiles.setdefault(profile)
        # Only an ok run's number is the cell's: a failed or INVALID one never wins.
        ok = status == "ok" and images_per_sec is not None
        if ok and (best is None or images_per_sec > best[1]):
            best = (f"{image}:{profile}", images_per_sec)
    return SessionRow(
        id=id_,
        started=started,
        host=host,
        kit_version=kit_version,
        meta=json.loads(meta),
        runs=len(runs),
        images=tuple(images),
        profiles=tuple(profiles),
        best=best,
    )


def _listing(ids: list[str]) -> str:
    shown = ", ".join(ids[:NEWEST_SHOWN])
    return shown + ", ..." if len(ids) > NEWEST_SHOWN else shown
