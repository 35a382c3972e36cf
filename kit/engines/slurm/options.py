"""The Slurm options a user sets: partition, nodes, time limit, the engine on the nodes;
validated before anything is submitted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from kit.errors import UsageError

JOB_PREFIX = "kit-"
POLL_S = 0.5
STATE_EVERY_S = 2.0
CANCEL_WAIT_S = 90.0  # Slurm's KillWait (30 s by default) and then some
# How long the controller may not answer (restarted, failed over) while kit follows its jobs:
# the nodes go on meanwhile, and their outcomes arrive through the shared folder.
CONTROLLER_WAIT_S = 600.0
# Job states in which the job may still run its share (squeue's %T names).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
          "RESIZING", "SIGNALING", "STAGE_OUT"}  # fmt: skip
_TIME = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+(:\d{2}(:\d{2})?)?)$")
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_WORD = re.compile(r"^[A-Za-z0-9_.,:|&()\[\]*-]+$")


def _python_path(value: str) -> bool:
    """An absolute path, or a bare command the node finds on its PATH."""
    return (
        bool(value.strip())
        and value == value.strip()
        and (value.startswith("/") or "/" not in value)
    )


class NodeEngine(StrEnum):
    docker = "docker"
    podman = "podman"
    local = "local"


@dataclass(frozen=True)
class SlurmOptions:
    """Where a session's jobs go: ``--partition``, ``--nodelist`` or ``--nodes``,
    ``--constraint``, ``--account``, ``--time``, ``--slurm-arg``, and the engine on the nodes."""

    partition: str | None = None
    nodelist: tuple[str, ...] = ()
    nodes: int | None = None
    constraint: str | None = None
    account: str | None = None
    time: str | None = None
    extra: tuple[str, ...] = ()
    node_engine: NodeEngine = NodeEngine.docker
    node_python: str | None = None  # kit's Python on the nodes; None: this host's own path

    def __post_init__(self) -> None:
        for node in self.nodelist:
            if not _NODE.match(node):
                raise UsageError(f"--nodelist {node!r} is not a node name", "e.g. --nodelist n1,n2")
        if self.nodes is not None and not 1 <= self.nodes <= 4096:
            raise UsageError(f"--slurm-nodes must be between 1 and 4096, got {self.nodes}")
        if self.nodes is not None and self.nodelist and self.nodes != len(self.nodelist):
            raise UsageError(
                f"--slurm-nodes {self.nodes} and --nodelist of {len(self.nodelist)} node(s) "
                "disagree",
                "give one of them",
            )
        if self.time is not None and not _TIME.match(self.time):
            raise UsageError(
                f"--time {self.time!r} is not a Slurm time limit",
                "write minutes, MM:SS, HH:MM:SS or D-HH:MM:SS",
            )
        for name in ("partition", "account", "constraint"):
            value = getattr(self, name)
            if value is not None and not _WORD.match(value):
                raise UsageError(f"--{name} {value!r} holds characters Slurm does not take here")
        if self.node_python is not None and not _python_path(self.node_python):
            raise UsageError(
                f"--node-python {self.node_python!r} is not a path on the nodes",
                "give an absolute path (e.g. /opt/kit/.venv/bin/python) or a command on their PATH",
            )
        for arg in self.extra:
            if not arg.startswith("--"):
                raise UsageError(
                    f"--slurm-arg {arg!r} is not a long sbatch option",
                    "give it as --slurm-arg=--qos=high (one option each)",
                )

    def python(self, here: str) -> str:
        """The Python that runs kit on the nodes: --node-python, else ``here`` (this host's)."""
        return self.node_python or here

    @property
    def count(self) -> int:
        return len(self.nodelist) or self.nodes or 1

    def common(self) -> list[str]:
        """The options every step and job of the session takes."""
        args = [f"--{name}={value}" for name in ("partition", "account", "time", "constraint")
                if (value := getattr(self, name)) is not None]  # fmt: skip
        return [*args, *self.extra]


# The probe: what the node is (kit's probe script), and whether it sees the session's folder.
