"""Sessions that travel: ``kit export`` (a session into a bundle), ``kit import`` (a bundle's
session into the results database), ``kit replay`` (a bundle's plan placed and run on this
host, then compared cell by cell) and ``kit diff`` (any two sessions compared).

A replay is an ordinary campaign (``kit.campaign``) built from the session's recipe, restricted
to the cells the original measured; its session records which one it replays.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kit import __version__
from kit.campaign.recipe import profile_from_json, recipe_cells, what_of
from kit.campaign.request import CampaignRequest, How, Where
from kit.campaign.run import Finished, execute, prepare
from kit.campaign.schedules.adaptive import Adaptive
from kit.engines.base import Engine
from kit.engines.endpoints import Endpoint
from kit.engines.factory import EngineMaker, open_engines
from kit.engines.kinds import EngineKind
from kit.errors import EngineUnavailable, UsageError
from kit.images.delivery import bring_images, registry_digests, save_images
from kit.judging.cells import cells
from kit.judging.reproduce import (
    DEFAULT_TOLERANCE,
    AnswerDiff,
    CellDiff,
    answer_diffs,
    cell_diffs,
    placement_changes,
    system_diff,
)
from kit.model.feedback import Feedback
from kit.model.profiles import to_toml
from kit.model.results import RunResult
from kit.store.bundle import (
    IMAGES,
    PROFILES,
    SYSTEM,
    Bundle,
    Written,
    compression_of,
    images_of,
    open_bundle,
    systems_of,
    write_bundle,
)
from kit.store.database import ResultsDB
from kit.store.folder import SessionDir, check_writable
from kit.store.past import load_past, load_stored


@dataclass(frozen=True)
class ExportRequest:
    session: str
    out: Path
    results: Path = Path("results")
    db: Path | None = None
    with_images: bool = False
    host: Endpoint | None = None

    @property
    def db_path(self) -> Path:
        return How(self.results, self.db).db_path


def export_session(request: ExportRequest, maker: EngineMaker, feedback: Feedback) -> Written:
    """One session into one bundle file (with its images when asked)."""
    compression_of(request.out)
    check_writable(request.out.parent if str(request.out.parent) else Path("."))
    stored = load_stored(request.db_path, request.session)
    folder = SessionDir.open(request.results, stored.session_id).path
    runs, meta = list(stored.runs), stored.meta
    references = list(dict.fromkeys(r.image_ref for r in runs if r.image_id))
    engine = _export_engine(maker, request, feedback)
    holder = engine.images if engine else None
    digests = registry_digests(holder, runs, request.with_images, feedback) if holder else {}
    extra = {
        SYSTEM: _json(meta.get("systems") or systems_of(meta, runs)),
        IMAGES: _json(images_of(runs, digests)),
        PROFILES: _profiles_toml(meta).encode("utf-8"),
    }
    tar = None
    try:
        if request.with_images:
            tar = request.out.with_name(request.out.name + ".images.tar")
            assert holder is not None  # --with-images refused an engine without images
            save_images(holder, references, tar, feedback)
        return write_bundle(request.out, folder, extra, tar, stored.session_id)
    finally:
        if tar is not None:
            tar.unlink(missing_ok=True)


def _json(data: object) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode("utf-8")


def _profiles_toml(meta: Mapping) -> str:
    """The cells' profiles as ``--profiles`` reads them (none for a session without recipe)."""
    recipe = meta.get("recipe") or {}
    profiles = [profile_from_json(p) for p in recipe.get("profiles", [])]
    return "\n".join(to_toml(p, p.name, p.description) for p in profiles)


def _export_engine(maker: EngineMaker, request: ExportRequest, feedback: Feedback):
    """The Docker engine that holds the session's images: needed for --with-images, asked for
    registry digests otherwise when one answers."""
    try:
        engine = maker.engine(EngineKind.docker, request.host)
        engine.check()
    except EngineUnavailable as exc:
        if request.with_images:
            raise
        feedback.say(f"no Docker engine answered ({exc.message}): registry digests not recorded")
        return None
    if engine.images is None:  # not Docker: it has no images to carry or digests
        if request.with_images:
            raise UsageError(f"--with-images needs a Docker engine; {engine.name} is not one")
        return None
    return engine


@dataclass(frozen=True)
class Imported:
    session_id: str
    folder: Path
    new: bool


def import_bundle(bundle: Bundle, results: Path, db: ResultsDB) -> Imported:
    """The bundle's session into ``results/`` and the results database (once: importing it
    again changes nothing)."""
    sid = bundle.session_id
    target = results / sid
    if target.exists() and not _same_runs(target, bundle.folder):
        raise UsageError(
            f"{target} already holds another session with the id {sid}",
            "import into another folder with --results DIR",
        )
    new = not db.has_session(sid)
    if not target.exists():
        results.mkdir(parents=True, exist_ok=True)
        shutil.copytree(bundle.folder, target)
    if new:
        meta = {
            **bundle.meta,
            "imported_from": bundle.source.name,
            "systems": bundle.systems,
            "images": bundle.images,
        }
        db.add_session(sid, meta)
        for run in bundle.runs:
            db.add_run(sid, run.to_json())
    return Imported(sid, target, new)


def _same_runs(a: Path, b: Path) -> bool:
    def read(folder: Path) -> bytes:
        path = folder / "results.jsonl"
        return path.read_bytes() if path.is_file() else b""

    return read(a) == read(b)


@dataclass(frozen=True)
class ReplayRequest:
    bundle: Path
    where: Where = field(default_factory=Where)
    how: How = field(default_factory=How)
    repeats: int | None = None  # None: as many as the original's cells had
    adaptive: Adaptive | None = None
    allow_different_image: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    registry: str | None = None  # where the images can be pulled by their recorded digests


@dataclass(frozen=True)
class Comparison:
    """Two sessions side by side: per cell, and what differs between their machines."""

    there: str
    here: str
    cells: tuple[CellDiff, ...]
    systems: tuple[tuple[str, str, str], ...]
    answers: tuple[AnswerDiff, ...] = ()  # each cell over the baseline, there and here


@dataclass(frozen=True)
class Replayed:
    finished: Finished
    comparison: Comparison


def replay(request: ReplayRequest, maker: EngineMaker, feedback: Feedback) -> Replayed:
    """The bundle's cells placed on this host's engines and run, then compared with it."""
    maker = _Reusing(maker)  # the engines images were brought to are the ones that run
    with open_bundle(request.bundle) as bundle:
        what = replay_what(bundle, request)
        where = request.where
        engines = open_engines(maker, where.kinds, where.hosts, where.cluster(request.how.results))
        different = bring_images(
            bundle, engines, what.image_refs, request.allow_different_image, feedback,
            request.registry,
        )  # fmt: skip
        how = replace(
            request.how,
            meta={"replay_of": bundle.session_id, "different_images": list(different)},
        )
        prepared = prepare(CampaignRequest(what, request.where, how), maker, feedback)
        moved = placement_changes(bundle.meta.get("plan") or [], prepared.plan)
        for line in moved or ["every run has the placement it had there"]:
            feedback.say(f"placement: {line}")
        with ResultsDB(how.db_path) as db:
            import_bundle(bundle, how.results, db)
        finished = execute(prepared, feedback)
        here = {"hosts": prepared.host_records, "kit_version": __version__}
        comparison = compare_sessions(
            (bundle.session_id, bundle.runs, bundle.systems),
            (finished.session_id, list(finished.runs), systems_of(here, finished.runs)),
            request.tolerance,
        )
        return Replayed(finished, comparison)


def replay_what(bundle: Bundle, request: ReplayRequest):
    """The campaign a replay runs: the recipe's cells the original measured, as many times as
    it did (or as asked)."""
    meta, original = bundle.meta, bundle.runs
    recipe = meta.get("recipe")
    if not isinstance(recipe, dict):
        raise UsageError(
            f"session {bundle.session_id} has no recipe (kit {meta.get('kit_version')} "
            "recorded it, before sessions could be replayed)",
            "compare it with a new session instead: `kit import` it, then `kit diff`",
        )
    repeats = request.repeats or max_repeats(original)
    if request.adaptive is not None:
        repeats = request.adaptive.max_repeats
    return what_of(recipe, measured_cells(recipe, original), repeats, request.adaptive)


class _Reusing:
    """An EngineMaker that makes each engine once."""

    def __init__(self, maker: EngineMaker) -> None:
        self.maker, self.made = maker, {}

    def engine(self, kind: EngineKind, endpoint: Endpoint | None = None) -> Engine:
        if (kind, endpoint) not in self.made:
            self.made[(kind, endpoint)] = self.maker.engine(kind, endpoint)
        return self.made[(kind, endpoint)]

    def this_host(self):
        return self.maker.this_host()


def measured_cells(recipe: Mapping, runs: Sequence[RunResult]) -> list[tuple[str, str]]:
    """The recipe's cells the original measured (a tune's cells it dropped are not replayed)."""
    done = {(r.image, r.profile) for r in runs if r.ok}
    cells = [c for c in recipe_cells(recipe) if c in done]
    if not cells:
        raise UsageError(
            "the session has no successful run to replay", "export a session with results"
        )
    return cells


def max_repeats(runs: Sequence[RunResult]) -> int:
    """The most repeats a cell of the session had (what a replay runs by default)."""
    return max((len(c.samples()) for c in cells(runs)), default=1) or 1


Source = tuple[str, Sequence[RunResult], Mapping[str, Mapping]]  # id, runs, systems


def compare_sessions(there: Source, here: Source, tolerance: float) -> Comparison:
    """Per-cell verdicts and the first machines' differences, there against here."""
    a_systems, b_systems = list(there[2].values()), list(here[2].values())
    skip = {"engine", "images"}
    a = {k: v for k, v in (a_systems[0] if a_systems else {}).items() if k not in skip}
    b = {k: v for k, v in (b_systems[0] if b_systems else {}).items() if k not in skip}
    return Comparison(
        there[0], here[0], tuple(cell_diffs(there[1], here[1], tolerance)),
        tuple(system_diff(a, b)), tuple(answer_diffs(there[1], here[1], tolerance)),
    )  # fmt: skip


def load_source(text: str, results: Path, db_path: Path) -> Source:
    """A session to compare: a bundle file, or a session in the results database or folder."""
    past = load_past(text, results, db_path)
    return past.session_id, past.runs, past.systems


def check_tolerance(percent: float) -> float:
    if not 0 <= percent < 100:
        raise UsageError(f"--tolerance takes a percentage in [0, 100), got {percent}")
    return percent / 100
