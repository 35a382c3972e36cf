"""Opening the results database: its tables and the version of their layout this kit reads and
writes, the connection's pragmas, and the checks that refuse a file that is not kit's."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from kit.errors import UsageError
from kit.inputs import probe_file, stat_of

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000  # a report reading while a session writes waits, it does not fail

TABLES = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        started TEXT,
        host TEXT,
        kit_version TEXT,
        meta TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        session_id TEXT REFERENCES sessions(id),
        idx INTEGER,
        image TEXT,
        profile TEXT,
        cell INTEGER,
        repeat INTEGER,
        instance INTEGER,
        status TEXT,
        images_per_sec REAL,
        started TEXT,
        ended TEXT,
        result TEXT,
        PRIMARY KEY (session_id, idx)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_image_profile ON runs (image, profile)",
    # Measured GEMM peak of a host inside an image (kit peak); added in place, no new version.
    """CREATE TABLE IF NOT EXISTS peaks (
        host TEXT NOT NULL,
        image_id TEXT NOT NULL,
        gflops REAL NOT NULL,
        measured TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (host, image_id)
    )""",
    # A sweep's or tune's knob values per cell (IMAGE:PROFILE), to query; added in place.
    """CREATE TABLE IF NOT EXISTS knobs (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        cell TEXT NOT NULL,
        knob TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, cell, knob)
    )""",
)


def check_file(path: Path) -> None:
    """Refuse, before anything runs and without touching the file, a path that is no kit
    results database (a folder, a FIFO, another program's file, a newer schema)."""
    info = stat_of(path, "--db")
    if info is None:
        _check_creatable(path)
        return
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(
            f"results database {path} is a directory", "pass a file path to the database"
        )
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"results database {path} is not a regular file", "pass a file path to the database"
        )
    inspect_readonly(path)


def _check_creatable(path: Path) -> None:
    """A database that does not exist yet can be made: its nearest existing folder takes a file
    (the folders between are made when it is opened)."""
    existing = path.parent
    while stat_of(existing, "--db") is None and existing != existing.parent:
        existing = existing.parent
    hint = "pass --db a path in a writable folder"
    if not existing.is_dir():
        raise UsageError(f"results database {path} cannot be made: {existing} is a file", hint)
    probe_file(existing, f"results database {path}", hint)


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """The connection's pragmas, and the tables made or checked (a newer version, or another
    program's database, refused)."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # WAL: readers never block the writer, so a report can run beside a session.
    conn.execute("PRAGMA journal_mode = WAL")
    # A committed run survives a power cut, not just a crash of kit.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        # IMMEDIATE: two kits opening a new file at once must not both write version 1.
        conn.execute("BEGIN IMMEDIATE")
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "schema_version" in names:
            (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if version is not None and version > SCHEMA_VERSION:
                raise UsageError(
                    f"results database {path} has schema version {version}; this kit "
                    f"reads version {SCHEMA_VERSION}",
                    "upgrade kit, or pass another database",
                )
        elif names:
            raise UsageError(
                f"{path} is an SQLite database, but not kit's results database",
                "pass a new path or an existing kit results database",
            )
        else:
            version = None
        for statement in TABLES:
            conn.execute(statement)
        if version is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        else:
            # A real write, even with nothing to change: a read-only file opens and reads
            # fine, and would otherwise fail only when the first run is written.
            conn.execute("UPDATE schema_version SET version = version")


def inspect_readonly(path: Path) -> None:
    """The schema of an existing file, read through a read-only connection (nothing written,
    no journal switched): UsageError unless it is kit's, at a version this kit reads."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise open_error(path, exc) from None
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not names:
            return  # an empty file: kit makes its schema there
        if "schema_version" not in names:
            raise UsageError(
                f"{path} is an SQLite database, but not kit's results database",
                "pass a new path or an existing kit results database",
            )
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.Error as exc:
        raise open_error(path, exc) from None
    finally:
        conn.close()
    if version is not None and version > SCHEMA_VERSION:
        raise UsageError(
            f"results database {path} has schema version {version}; this kit reads version "
            f"{SCHEMA_VERSION}",
            "upgrade kit, or pass another database",
        )


def open_error(path: Path, exc: sqlite3.Error) -> UsageError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return UsageError(
            f"{path} is not an SQLite database",
            "pass a new path or an existing kit results database",
        )
    return UsageError(
        f"cannot open results database {path}: {exc}", "pass a writable path for the database"
    )
