"""A session's folder, ``results/<UTC timestamp>/``: a log and a JSON record per run, the line log
``results.jsonl`` and ``session.json``, each written the moment it exists."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from kit.errors import KitError, UsageError
from kit.inputs import stat_of
from kit.model.results import RunResult
from kit.model.spec import RunSpec
from kit.store.database import ResultsDB

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
        given = stat_of(Path(session), "--resume")
        path = (
            Path(session) if given is not None and stat.S_ISDIR(given.st_mode) else root / session
        )
        if stat_of(path / "session.json", "--resume") is None:
            raise UsageError(
                f"no kit session at {path}", f"name a folder under {root} (see its session.json)"
            )
        check_writable(path)
        return cls(path, db)

    def read_meta(self) -> dict:
        path = self.path / "session.json"
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
        if not isinstance(meta, dict):
            raise UsageError(
                f"{path} is damaged (not a kit session record)",
                "its runs are kept in the results database: see `kit report "
                f"{self.session_id}`; start a new session instead of resuming this one",
            )
        return meta

    def log_path(self, spec: RunSpec) -> Path:
        return self.path / f"{spec.index:02d}-{slug(spec.key)}.log"

    def write_meta(self, meta: dict) -> None:
        _write_atomic(self.path / "session.json", json.dumps(meta, indent=2, sort_keys=True))
        if self.db is not None:
            self.db.add_session(self.session_id, meta)

    def record(self, result: RunResult) -> None:
        """Persist one run the moment it exists: its JSON file, the session's line log and the
        results database (one transaction). A run already recorded is never written again."""
        record = result.to_json()
        stem = Path(result.log_path).stem
        lines = self.path / "results.jsonl"
        _write_atomic(self.path / f"{stem}.json", json.dumps(record, indent=2))
        with lines.open("a+b") as out:
            out.seek(0, os.SEEK_END)
            if out.tell() and not _ends_with_newline(out):  # never append onto a cut line
                out.write(b"\n")
            out.write((json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        if self.db is not None:
            self.db.add_run(self.session_id, record)

    def read_records(self) -> tuple[list[RunResult], int]:
        """The runs ``results.jsonl`` holds, and how many of its lines are damaged (cut short
        by a crash, or not a run record)."""
        try:
            data = (self.path / "results.jsonl").read_bytes()
        except FileNotFoundError:
            return [], 0
        except OSError as exc:
            raise KitError(f"cannot read results in {self.path}: {exc.strerror}") from None
        runs, damaged = [], 0
        for line in data.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            try:
                runs.append(RunResult.from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                damaged += 1
        # A run its engine lost, run again on --resume, has a later line: that one is the run.
        return list({r.index: r for r in runs}.values()), damaged

    def rewrite_records(self, runs: list[RunResult]) -> None:
        """``results.jsonl`` (and any missing per-run file) rewritten from these runs,
        atomically."""
        ordered = sorted(runs, key=lambda r: r.index)
        for run in ordered:
            single = self.path / f"{Path(run.log_path).stem}.json"
            if not single.exists():
                _write_atomic(single, json.dumps(run.to_json(), indent=2))
        text = "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in ordered)
        _write_atomic(self.path / "results.jsonl", text)

    def write_summary(self, markdown: str) -> None:
        _write_atomic(self.path / "summary.md", markdown)


def _ends_with_newline(handle) -> bool:
    handle.seek(-1, os.SEEK_END)
    last = handle.read(1)
    handle.seek(0, os.SEEK_END)
    return last == b"\n"


def load_session(path: Path) -> list[RunResult]:
    """The runs a session folder recorded (none yet is an empty list); a damaged line (cut
    short by a crash mid-write) is skipped: every complete line is a whole run."""
    return SessionDir(path).read_records()[0]


def check_writable(root: Path) -> None:
    """The results folder can hold a session: it, or the folder it would be made in, is a
    writable folder with room. Nothing is created here (a refusal leaves nothing behind)."""
    info = stat_of(root, "--results")
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"results path {root} is a file", "pass a directory to --results")
    existing = root
    while stat_of(existing, "--results") is None and existing != existing.parent:
        existing = existing.parent
    hint = "pass a writable directory to --results"
    if not existing.is_dir():
        raise UsageError(f"cannot create results directory {root}: {existing} is a file", hint)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"results directory {root} is not writable (in {existing})", hint)
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise UsageError(
            f"results directory {root} has only {free // 2**20} MB free; logs and records "
            "could not be kept",
            f"free some space or pass another directory to --results (kit wants "
            f"{MIN_FREE_BYTES // 2**20} MB)",
        )
    if existing == root:
        _probe_write(root, hint)


def _probe_write(root: Path, hint: str) -> None:
    """Write and remove a small file: permissions can say yes where the filesystem says no."""
    probe = root / f".kit-write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as out:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise UsageError(
            f"results directory {root} is not writable: {exc.strerror}", hint
        ) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only filesystem refuses the removal too
            probe.unlink(missing_ok=True)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
