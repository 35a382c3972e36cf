"""A session's folder, ``results/<UTC timestamp>/``: a log and a JSON record per run, the line log
``results.jsonl`` and ``session.json``, each written the moment it exists."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from kit.errors import KitError, UsageError
from kit.results import RunResult
from kit.spec import RunSpec
from kit.store import ResultsDB

DB_NAME = "kit.db"  # the results database, beside the session folders
MIN_FREE_BYTES = 64 * 2**20


def new_session_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


class SessionDir:
    """``results/<UTC timestamp>/``: a log and a JSON record per run, written as each finishes."""

    def __init__(self, path: Path, db: ResultsDB | None = None) -> None:
        self.path = path
        self.session_id = path.name
        self.db = db

    @classmethod
    def create(cls, root: Path, session_id: str, db: ResultsDB | None = None) -> SessionDir:
        """A new folder under ``root``, which its caller checked (``check_writable``)."""
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 100):
            name = session_id if attempt == 1 else f"{session_id}-{attempt}"
            try:
                (root / name).mkdir()
            except FileExistsError:
                continue
            return cls(root / name, db)
        raise KitError(f"cannot create a session folder under {root}")

    @classmethod
    def open(cls, root: Path, session: str, db: ResultsDB | None = None) -> SessionDir:
        """An existing session, by id (under ``root``) or by path."""
        path = Path(session) if Path(session).is_dir() else root / session
        if not (path / "session.json").is_file():
            raise UsageError(
                f"no kit session at {path}", f"name a folder under {root} (see its session.json)"
            )
        check_writable(path)
        return cls(path, db)

    def read_meta(self) -> dict:
        return json.loads((self.path / "session.json").read_text(encoding="utf-8"))

    def log_path(self, spec: RunSpec) -> Path:
        return self.path / f"{spec.index:02d}-{slug(spec.key)}.log"

    def write_meta(self, meta: dict) -> None:
        _write_atomic(self.path / "session.json", json.dumps(meta, indent=2, sort_keys=True))
        if self.db is not None:
            self.db.add_session(self.session_id, meta)

    def record(self, result: RunResult) -> None:
        """Persist one run the moment it exists: its JSON file, the session's line log and the
        results database (one transaction)."""
        record = result.to_json()
        stem = Path(result.log_path).stem
        _write_atomic(self.path / f"{stem}.json", json.dumps(record, indent=2))
        with (self.path / "results.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if self.db is not None:
            self.db.add_run(self.session_id, record)

    def write_summary(self, markdown: str) -> None:
        _write_atomic(self.path / "summary.md", markdown)


def load_session(path: Path) -> list[RunResult]:
    """The runs a session recorded (none yet is an empty list). A line cut short by a crash
    mid-write is skipped: every complete line is a whole run."""
    try:
        lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KitError(f"cannot read results in {path}: {exc.strerror}") from None
    results = []
    for line in lines:
        try:
            results.append(RunResult.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return results


def check_writable(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"results path {root} is a file", "pass a directory to --results")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create results directory {root}: {exc.strerror}",
            "pass a writable directory to --results",
        ) from None
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise UsageError(
            f"results directory {root} has only {free // 2**20} MB free; logs and records "
            "could not be kept",
            f"free some space or pass another directory to --results (kit wants "
            f"{MIN_FREE_BYTES // 2**20} MB)",
        )
    probe = root / f".kit-write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as out:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise UsageError(
            f"results directory {root} is not writable: {exc.strerror}",
            "pass a writable directory to --results",
        ) from None
    finally:
        probe.unlink(missing_ok=True)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
