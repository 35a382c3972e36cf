"""A past session, found one way wherever it is kept: by id, unique prefix or ``latest`` in the
results database, by its folder under the results folder (or its path), or as a bundle file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.errors import UsageError
from kit.model.results import RunResult
from kit.store.bundle import is_bundle, open_bundle, systems_of
from kit.store.database import ResultsDB, hostnames
from kit.store.folder import SessionDir, load_session


@dataclass(frozen=True)
class PastSession:
    session_id: str
    runs: tuple[RunResult, ...]  # in run order
    systems: Mapping[str, Mapping]  # each engine's system description


def load_past(reference: str, results: Path, db_path: Path) -> PastSession:
    """The session ``reference`` names: a bundle file, else the database's session (the
    database's word wins when neither it nor a folder holds it), else a session folder."""
    if is_bundle(reference):
        with open_bundle(Path(reference)) as bundle:
            return PastSession(bundle.session_id, tuple(bundle.runs), bundle.systems)
    unknown: UsageError | None = None
    if db_path.is_file():
        try:
            return _from_database(db_path, reference)
        except UsageError as exc:  # not in the database: a folder may still hold it
            unknown = exc
    try:
        folder = SessionDir.open(results, reference)
    except UsageError as missing:
        if unknown is None and not db_path.is_file():
            raise UsageError(
                f"{missing.message}, and no results database at {db_path}",
                "pass --db or --results, or a bundle file",
            ) from None
        raise (unknown or missing) from None
    runs = tuple(load_session(folder.path))
    return PastSession(folder.session_id, runs, systems_of(folder.read_meta(), runs))


def _from_database(db_path: Path, reference: str) -> PastSession:
    with ResultsDB(db_path) as db:
        session_id = db.resolve_session(reference)
        runs = tuple(RunResult.from_json(r) for r in db.runs(session_id))
        meta = next((s.meta for s in db.sessions() if s.id == session_id), {})
    return PastSession(session_id, runs, meta.get("systems") or systems_of(meta, runs))


@dataclass(frozen=True)
class StoredSession:
    """A past session as the database holds it: what `kit report` renders."""

    session_id: str
    runs: tuple  # RunResult, in run order
    meta: dict
    peaks: dict[str, float]


def load_stored(path: Path, session: str) -> StoredSession:
    """A session by id, unique prefix or ``latest``, with its runs, meta and the peaks measured
    on its host."""
    with ResultsDB(path) as db:
        session_id = db.resolve_session(session)
        runs = tuple(RunResult.from_json(r) for r in db.runs(session_id))
        meta = next((s.meta for s in db.sessions() if s.id == session_id), {})
        peaks = db.peaks(next(iter(hostnames(meta)), ""))
    return StoredSession(session_id, runs, meta, peaks)
