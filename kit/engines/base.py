"""The Engine seam: everything that starts a process or talks to Docker sits behind it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from kit.engines.endpoints import Endpoint
from kit.host.facts import HostFacts
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec

LineSink = Callable[[str], None]
# A line an engine adds to a run's output to tell the user something of the run (its Slurm job
# pending, the run started again): shown as a note, not in the run's log.
ENGINE_NOTE = "kit: "


class ImageHolder(Protocol):
    """An engine's own images, as kit.images moves them (a Docker or podman engine's; the
    local engine's environments and a cluster's nodes have none to move)."""

    name: str
    url: str
    endpoint: Endpoint | None  # None: this machine's default engine
    client: Any  # the Docker SDK client kit.images' registry and archive transfers use

    def image_id(self, reference: str) -> str:
        """The image's id; ImageNotFound when it is missing."""

    def holds(self, reference: str) -> bool:
        """Whether the engine has the image (False too when it does not answer)."""

    def repo_digests(self, reference: str) -> tuple[str, list[str]] | None:
        """The image's id and its registry digests; None when the engine lacks it."""

    def tag_id(self, image_id: str, reference: str) -> bool:
        """Name the image whose id is ``image_id`` ``reference``; False when there is none."""

    def pull_as(self, name: str, image_id: str, reference: str) -> bool:
        """Pull ``name``; when it is the image ``image_id``, name it ``reference``."""

    def others_running(self) -> int:
        """Running containers that are not kit's (other work on the engine's host)."""


class Runner(Protocol):
    """What a session asks of the engines its runs go to: one engine, or several (EngineSet)."""

    name: str
    samples_host: bool  # runs execute on this host, so its per-CPU load is theirs to sample
    images: ImageHolder | None  # the engine's images, where it has images to move

    def check(self) -> None:
        """Raise EngineUnavailable when the engine does not answer."""

    def image_id(self, reference: str) -> str:
        """The local image's id; ImageNotFound when it is missing."""

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        """Run one spec to completion, streaming its output to ``log_path`` and ``on_line``.

        Never raises for a failed run (that is in the outcome); always removes what it started.
        """

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        """The shell line that reruns ``spec`` by hand, in this engine's own form."""

    def begin(self, specs: Sequence[RunSpec], session_id: str, folder: Path) -> None:
        """The runs about to go (a scheduler submits them here as jobs; others do nothing)."""

    def cancel(self) -> None:
        """Stop every run in progress (their ``run`` calls then return and clean up)."""

    def remove_strays(self) -> int:
        """Remove every container kit started that is still there; return how many."""

    def remove_orphans(self) -> list[str]:
        """Remove the runs (containers, the local engine's processes) whose kit no longer runs
        (killed outright); a line each."""


class Engine(Runner, Protocol):
    """One engine: a Runner on one host, which it can describe."""

    def host_facts(self, image: str) -> HostFacts:
        """The host this engine's runs execute on, read there (with ``image`` if it takes a
        container to look)."""


class EngineSet:
    """Several engines behind the one seam, so a session can put them in one table: docker
    against local (what the container costs), or several hosts. Each run goes to the engine its
    spec names. A Runner, not an Engine: each engine of the set describes its own host."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        if not engines:
            raise ValueError("an engine set needs an engine")
        self.engines = engines
        self.name = "+".join(engines)
        self.samples_host = all(e.samples_host for e in engines.values())
        self.images = None  # each engine of the set moves its own

    def check(self) -> None:
        for engine in self.engines.values():
            engine.check()

    def image_id(self, reference: str) -> str:
        """Every engine runs every image, so each must have it; the first's id is returned."""
        ids = [engine.image_id(reference) for engine in self.engines.values()]
        return ids[0]

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        return self.engines[spec.engine].run(spec, session_id, log_path, on_line)

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        return self.engines[spec.engine].rerun_line(spec, session_id)

    def begin(self, specs: Sequence[RunSpec], session_id: str, folder: Path) -> None:
        for name, engine in self.engines.items():
            engine.begin([s for s in specs if s.engine == name], session_id, folder)

    def cancel(self) -> None:
        for engine in self.engines.values():
            engine.cancel()

    def remove_strays(self) -> int:
        return sum(engine.remove_strays() for engine in self.engines.values())

    def remove_orphans(self) -> list[str]:
        return [line for engine in self.engines.values() for line in engine.remove_orphans()]
