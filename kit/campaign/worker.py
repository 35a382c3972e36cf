"""What a Slurm job runs on its node (``kit _worker SHARE``): its share of a session, through the
node's own engine, each run started when the submitting host gives it its turn (its ``go``
file) and its outcome written beside its log (what that host waits for). The submitting side is
``kit.engines.slurm``."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from kit.campaign.session import run_session
from kit.engines.base import LineSink
from kit.engines.docker import DockerEngine
from kit.engines.endpoints import Endpoint
from kit.engines.local import LocalEngine
from kit.engines.podman import podman_socket
from kit.engines.slurm.options import POLL_S, NodeEngine
from kit.engines.slurm.share import (
    go_path,
    outcome_from_json,
    outcome_json,
    outcome_path,
    read_share,
)
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec
from kit.store.folder import SessionDir


class Recording:
    """The node's engine, writing each run's outcome beside its log once it is over (what
    the submitting host waits for)."""

    def __init__(self, engine, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.name, self.samples_host = engine.name, engine.samples_host
        self.images = None  # the node brings its own images
        self.cancelled = threading.Event()

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        path = outcome_path(self.folder, spec)
        if path.is_file():  # measured before the job was requeued: counted once, not run again
            return outcome_from_json(json.loads(path.read_text(encoding="utf-8")), log_path)
        go = go_path(self.folder, spec)
        while not go.exists():  # the submitting host says when: it may interleave other engines
            if self.cancelled.wait(POLL_S / 2):
                return RunOutcome(datetime.now(UTC), datetime.now(UTC), None, log_path,
                                  error="cancelled before it started")  # fmt: skip
        outcome = self.engine.run(spec, session_id, log_path, on_line)
        if self.cancelled.is_set() and outcome.exit_code != 0:
            return outcome  # stopped by scancel: not a measurement, so no outcome
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(outcome_json(outcome)), encoding="utf-8")
        os.replace(tmp, path)
        return outcome

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        return self.engine.rerun_line(spec, session_id)

    def begin(self, specs, session_id: str, folder: Path) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled.set()
        self.engine.cancel()


def node_engine(kind: NodeEngine):
    """The engine a job uses on its node."""

    if kind is NodeEngine.local:
        return LocalEngine()
    if kind is NodeEngine.podman:
        return DockerEngine(endpoint=Endpoint("podman", url=podman_socket()))
    return DockerEngine()


def work(share: Path) -> int:
    """``kit _worker SHARE``: run a node's share of a session (inside its Slurm job)."""

    data, specs = read_share(share)
    folder = share.parent
    engine = node_engine(NodeEngine(data["node_engine"]))
    engine.check()
    session = SessionDir(folder)
    session.session_id = data["session"]
    records = {data["node"]: data["host"]}
    runs = run_session(specs, Recording(engine, folder), session, host_records=records)
    return 0 if len(runs) == len(specs) else 1
