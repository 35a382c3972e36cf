"""The file protocol between the submitting host and a node's worker, in the shared session
folder: each job's share of the plan, the ``go`` file that starts a run, and each run's outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from kit.engines.slurm.options import NodeEngine
from kit.errors import UsageError
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec, spec_from_json, spec_json
from kit.store.folder import SessionDir


def share_record(specs: Sequence[RunSpec], session_id: str, node: str, engine: NodeEngine,
                 host: Mapping) -> dict:  # fmt: skip
    return {
        "kit_share": 1,
        "session": session_id,
        "node": node,
        "node_engine": engine.value,
        "host": dict(host),
        "runs": [spec_json(s) for s in specs],
    }


def read_share(path: Path) -> tuple[dict, list[RunSpec]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kit_share") != 1:
        raise UsageError(f"{path} is not a kit job share", "it is written by --engine slurm")
    return data, [spec_from_json(s) for s in data["runs"]]


def outcome_json(outcome: RunOutcome) -> dict:
    return {
        "started": outcome.started.isoformat(), "ended": outcome.ended.isoformat(),
        "exit_code": outcome.exit_code, "log_path": str(outcome.log_path),
        "image_id": outcome.image_id, "timed_out": outcome.timed_out,
        "oom_killed": outcome.oom_killed, "error": outcome.error, "process_s": outcome.process_s,
    }  # fmt: skip


def outcome_from_json(data: Mapping, log_path: Path) -> RunOutcome:
    return RunOutcome(
        started=datetime.fromisoformat(data["started"]),
        ended=datetime.fromisoformat(data["ended"]), exit_code=data["exit_code"],
        log_path=log_path, image_id=data["image_id"],
        timed_out=data["timed_out"], oom_killed=data["oom_killed"], error=data["error"],
        process_s=data["process_s"],
    )  # fmt: skip


def outcome_path(folder: Path, spec: RunSpec) -> Path:
    return folder / f"{spec.index:04d}.outcome.json"


def go_path(folder: Path, spec: RunSpec) -> Path:
    """Written by the submitting host when the run's turn comes (its order, its machine's turn)."""
    return folder / f"{spec.index:04d}.go"


def node_log_path(folder: Path, spec: RunSpec) -> Path:
    """Where the node writes a run's log (as a session folder names it)."""
    return SessionDir(folder).log_path(spec)
