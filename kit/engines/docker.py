"""The Docker engine: runs RunSpecs as containers through the Docker SDK for Python, and holds
the images kit.images moves."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kit.engines.base import LineSink
from kit.engines.container import (
    LABEL_MANAGED,
    container_kwargs,
    docker_run_line,
    lifetime,
    probe_kwargs,
)
from kit.engines.endpoints import Endpoint
from kit.engines.orphans import LABEL_OWNER, boot_id, held, owner, remove_orphans
from kit.engines.podman import (
    host_ulimits,
    is_podman,
    libpod_info,
    lowered,
    placement_problem,
    ulimit_kwargs,
)
from kit.engines.reach import DEFAULT_SOCKET, connect, first_line, resolve
from kit.engines.watchdog import Running, Watchdog
from kit.errors import EngineUnavailable, ImageNotFound, UsageError
from kit.host import probe_script
from kit.host.facts import HostFacts, facts_from_probe, parse_probe_output
from kit.lazy import lazy_module
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec
from kit.settings import reconnect_seconds

if TYPE_CHECKING:
    from docker.models.containers import Container


docker = lazy_module("docker")
requests = lazy_module("requests")

# How long a run waits for an engine that stopped answering (a daemon restart) before it
# fails; a host still away at the next run fails that run at once.
RECONNECT_S: float | None = None  # None: KIT_RECONNECT_S, read when a session starts
START_ATTEMPTS = 3


class _EngineAway(Exception):
    """The engine did not answer before a run could start."""


class DockerEngine:
    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        grant_sys_nice: bool = True,
        endpoint: Endpoint | None = None,
    ) -> None:
        self._client = client
        self.endpoint = endpoint
        self.name = endpoint.label if endpoint is not None else "docker"
        self.grant_sys_nice = grant_sys_nice
        self._running: Running[Container] = Running()
        self._pending_removal: set[str] = set()
        self._pins: dict[str, str] = {}  # reference -> image id, fixed at its first run
        self._away = False  # the engine did not come back last time: fail fast until it does

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect(endpoint=self.endpoint)
        return self._client

    @functools.cached_property
    def url(self) -> str:
        """The engine's URL (a context is read once: samples_host asks on every run)."""
        if self.endpoint is None:
            return os.environ.get("DOCKER_HOST", DEFAULT_SOCKET)
        return resolve(self.endpoint)[0]

    @property
    def samples_host(self) -> bool:
        """A unix socket means the containers run on this machine, so its CPU load is theirs;
        a remote engine's host is not sampled."""
        return self.url.startswith("unix://")

    def check(self) -> None:
        if self.podman is not None and (problem := placement_problem(libpod_info(self.client))):
            raise UsageError(
                f"engine {self.name} ({self.url}) is {problem}",
                "use rootful podman, or a cgroup v2 host whose systemd delegates cpuset to users",
            )

    @functools.cached_property
    def podman(self) -> dict[str, int] | None:
        """The ulimits kit sets on a podman engine (``kit.engines.podman``); None for Docker."""
        try:
            version = self.client.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None
        return host_ulimits() if is_podman(version) else None

    def _start_probe(self, kwargs: dict) -> Container:
        """The probe container, started; on podman its ulimits are lowered until the runtime
        may set them (the engine's own limits are not visible from here)."""
        while True:
            container = self.client.containers.create(**kwargs, **self.extra_kwargs())
            try:
                container.start()
                return container
            except docker.errors.APIError as exc:
                _remove(container)
                if not self.podman or not lowered(self.podman, str(exc)):
                    raise

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        """The ``docker run`` (or ``podman run``, with its ulimits) that reruns ``spec``."""
        return docker_run_line(spec, session_id, "podman" if self.podman else "docker", self.podman)

    def extra_kwargs(self) -> dict:
        """What this engine's containers get beyond ``container_kwargs`` (podman's ulimits)."""
        return ulimit_kwargs(self.podman) if self.podman else {}

    def host_facts(self, image: str) -> HostFacts:
        """The engine host's facts, read by a short container there (the image's python runs
        kit's probe script); its name is the one the engine reports."""
        container = None
        try:
            container = self._start_probe(
                probe_kwargs(image, Path(probe_script.__file__).read_text())
            )
            status = container.wait(timeout=120).get("StatusCode")
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            name = self.client.info().get("Name") or self.name
        except docker.errors.NotFound:
            raise ImageNotFound(
                f"image {image!r} is not on {self.name}", "build it, pull it, or let kit send it"
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(
                f"reading the host behind {self.name} failed: {first_line(exc)}",
                "check that the engine answers (`kit doctor`)",
            ) from None
        finally:
            if container is not None:
                with contextlib.suppress(
                    docker.errors.DockerException, requests.exceptions.RequestException
                ):
                    _remove(container)
        try:
            return facts_from_probe(parse_probe_output(output), name)
        except ValueError as exc:
            raise EngineUnavailable(
                f"reading the host behind {self.name} failed (exit {status}): {exc}",
                "check the image runs there: `kit run stock` with that --host",
            ) from None

    def image_id(self, reference: str) -> str:
        # NotFound, not only ImageNotFound: podman answers an image it lacks "image not known",
        # which the SDK raises as NotFound.
        try:
            return self.client.images.get(reference).id
        except docker.errors.NotFound:
            raise ImageNotFound(
                f"image {reference!r} is not on this Docker engine",
                "build it with `kit images build FLAVOR` (or `make images`), or pull it",
            ) from None

    @property
    def images(self) -> DockerEngine:
        """This engine's image holder: what kit.images moves images through."""
        return self

    def holds(self, reference: str) -> bool:
        """Whether the engine has the image (False too when it does not answer)."""
        try:
            self.client.images.get(reference)
            return True
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def repo_digests(self, reference: str) -> tuple[str, list[str]] | None:
        """The image's id and its registry digests; None when the engine lacks it."""
        try:
            image = self.client.images.get(reference)
        except docker.errors.NotFound:
            return None
        return image.id, list(image.attrs.get("RepoDigests") or [])

    def tag_id(self, image_id: str, reference: str) -> bool:
        """Name the image whose id is ``image_id`` ``reference``; False when there is none."""
        try:
            image = self.client.images.get(image_id)
        except docker.errors.NotFound:
            return False
        image.tag(*docker.utils.parse_repository_tag(reference))
        return True

    def pull_as(self, name: str, image_id: str, reference: str) -> bool:
        """Pull ``name``; when it is the image ``image_id``, name it ``reference`` and say True.
        ImageNotFound with the registry's word when it cannot be pulled."""
        try:
            image = self.client.images.pull(name)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise ImageNotFound(f"cannot pull {name}: {str(exc)[:200]}") from None
        if image.id != image_id:
            return False
        image.tag(*docker.utils.parse_repository_tag(reference))
        return True

    def others_running(self) -> int:
        try:
            running = self.client.containers.list()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return 0
        return sum(1 for c in running if LABEL_MANAGED not in (c.labels or {}))

    def _await_engine(self) -> str | None:
        """Wait (up to RECONNECT_S) for the engine to answer, as after a daemon restart; the
        client's connection pool reconnects by itself. Returns why it did not, or None."""
        # An engine that stayed away last time gets one ping, not another wait: a host that is
        # gone should not cost every remaining run a minute.
        wait = RECONNECT_S if RECONNECT_S is not None else reconnect_seconds()
        deadline = time.monotonic() + (0 if self._away else wait)
        while True:
            try:
                self.client.ping()
                self._away = False
                return None
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                if time.monotonic() >= deadline:
                    self._away = True
                    return f"Docker engine {self.name} not reachable: {first_line(exc)}"
                time.sleep(1)

    def _remove_pending(self) -> None:
        """Remove containers whose removal failed while the engine was away (a failure here
        keeps them pending for the next run)."""
        for container_id in list(self._pending_removal):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(container_id, force=True)
            self._pending_removal.discard(container_id)

    def _start(self, spec: RunSpec, session_id: str) -> Container:
        """Create and start the container. Connection errors before it starts are retried
        once the engine answers again: an engine shutting down still answers a ping, then
        drops the next request."""
        kwargs = container_kwargs(spec, session_id, grant_sys_nice=self.grant_sys_nice)
        kwargs.update(self.extra_kwargs())
        kwargs["labels"] = {**kwargs["labels"], LABEL_OWNER: owner()}
        for attempt in range(START_ATTEMPTS):
            container = None
            try:
                self._remove_pending()
                kwargs["image"] = self._pinned(spec.image.reference)
                container = self.client.containers.create(**kwargs)
                self._running.add(container.id, container)
                container.start()
                return container
            except requests.exceptions.RequestException:
                if container is not None:
                    self._running.discard(container.id)
                    self._pending_removal.add(container.id)
                if attempt == START_ATTEMPTS - 1:
                    raise
                time.sleep(1)
                if (away := self._await_engine()) is not None:
                    raise _EngineAway(away) from None
        raise AssertionError("unreachable")

    def _pinned(self, reference: str) -> str:
        """The image ``reference`` named at this engine's first run of it: a tag rebuilt, pulled
        or removed while the session runs changes none of its runs."""
        if reference not in self._pins:
            self._pins[reference] = self.image_id(reference)
        return self._pins[reference]

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        started = datetime.now(UTC)
        container = None
        ended: _Ended | None = None
        watchdog = None
        error = self._await_engine()
        try:
            if error is not None:
                raise _EngineAway(error)
            container = self._start(spec, session_id)
            watchdog = Watchdog(spec.timeout_s, lambda: _kill(container))
            with watchdog:
                _stream_logs(container, log_path, on_line)
                ended = _Ended.of(container)
        except _EngineAway as exc:
            error = str(exc)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            error = f"Docker engine error: {first_line(exc)}"
        finally:
            if container is not None:
                self._finish(container)
        return RunOutcome(
            started=started,
            ended=datetime.now(UTC),
            exit_code=ended.exit_code if ended else None,
            log_path=log_path,
            image_id=container.attrs.get("Image") if container is not None else None,
            timed_out=watchdog is not None and watchdog.fired,
            oom_killed=bool(ended and ended.oom_killed),
            error=error,
            process_s=ended.process_s if ended else None,
        )

    def _finish(self, container: Container) -> None:
        """Forget and remove the run's container; while the engine is away, remove it later."""
        self._running.discard(container.id)
        try:
            _remove(container)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            self._pending_removal.add(container.id)

    def begin(self, specs, session_id: str, folder: Path) -> None:
        pass  # each run starts when it is run

    def cancel(self) -> None:
        for container in self._running.snapshot():
            _kill(container)

    def remove_orphans(self) -> list[str]:
        return remove_orphans(self.client)

    def remove_strays(self) -> int:
        found = self.client.containers.list(all=True, filters={"label": LABEL_MANAGED})
        here = boot_id()  # a live kit's containers are its session's, not strays
        strays = [c for c in found if not held(c.labels or {}, here)]
        for container in strays:
            _remove(container)
        return len(strays)


@dataclass(frozen=True)
class _Ended:
    """How a container ended, as the engine reports it."""

    exit_code: int | None
    oom_killed: bool
    process_s: float | None

    @classmethod
    def of(cls, container: Container) -> _Ended:
        exit_code = container.wait().get("StatusCode")
        container.reload()
        state = container.attrs.get("State", {})
        process_s = lifetime(state.get("StartedAt"), state.get("FinishedAt"))
        return cls(exit_code, bool(state.get("OOMKilled")), process_s)


def _kill(container: Container) -> None:
    """Kill a running container (it may have just ended, or the engine may be away)."""
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        container.kill()


def _stream_logs(container, log_path: Path, on_line: LineSink) -> None:
    """Copy the container's combined output to the log file line by line as it arrives."""
    pending = b""
    with log_path.open("wb") as log:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            log.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", "replace"))
            log.flush()
        if pending:
            on_line(pending.decode("utf-8", "replace"))


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: another removal (kit clean) is already under way
            raise
