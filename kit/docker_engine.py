"""The Docker engine: runs RunSpecs as containers through the Docker SDK for Python."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from requests.exceptions import RequestException

from kit.container import LABEL_MANAGED, container_kwargs
from kit.engine import LineSink, RunOutcome
from kit.errors import EngineUnavailable, ImageNotFound
from kit.spec import RunSpec

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client for DOCKER_HOST (or the default socket); EngineUnavailable with the fix."""
    where = os.environ.get("DOCKER_HOST", DEFAULT_SOCKET)
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, RequestException) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers at {where}: {_first_line(exc)}",
            "start one with `make engine` (root on Debian/Ubuntu) or set DOCKER_HOST",
        ) from None
    return client


RECONNECT_S = 60.0
START_ATTEMPTS = 3


class _EngineAway(Exception):
    """The engine did not answer before a run could start."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class DockerEngine:
    name = "docker"

    def __init__(
        self, client: docker.DockerClient | None = None, *, grant_sys_nice: bool = True
    ) -> None:
        self._client = client
        self.grant_sys_nice = grant_sys_nice
        # A local socket means the containers run here; a remote engine's host is not sampled.
        self.samples_host = os.environ.get("DOCKER_HOST", DEFAULT_SOCKET).startswith("unix://")
        self._running: dict[str, Container] = {}
        self._pending_removal: set[str] = set()
        self._lock = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def check(self) -> None:
        _ = self.client

    def image_id(self, reference: str) -> str:
        try:
            return self.client.images.get(reference).id
        except docker.errors.ImageNotFound:
            raise ImageNotFound(
                f"image {reference!r} is not on this Docker engine",
                "build it with `kit images build FLAVOR` (or `make images`), or pull it",
            ) from None

    def _await_engine(self) -> str | None:
        """Wait (up to RECONNECT_S) for the engine to answer, as after a daemon restart; the
        client's connection pool reconnects by itself. Returns why it did not, or None."""
        deadline = time.monotonic() + RECONNECT_S
        while True:
            try:
                self.client.ping()
                return None
            except (docker.errors.DockerException, RequestException) as exc:
                if time.monotonic() > deadline:
                    return f"Docker engine not reachable for {RECONNECT_S:g}s: {_first_line(exc)}"
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
        for attempt in range(START_ATTEMPTS):
            container = None
            try:
                self._remove_pending()
                container = self.client.containers.create(**kwargs)
                with self._lock:
                    self._running[container.id] = container
                container.start()
                return container
            except RequestException:
                if container is not None:
                    with self._lock:
                        self._running.pop(container.id, None)
                    self._pending_removal.add(container.id)
                if attempt == START_ATTEMPTS - 1:
                    raise
                time.sleep(1)
                if (away := self._await_engine()) is not None:
                    raise _EngineAway(away) from None
        raise AssertionError("unreachable")

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        started = datetime.now(UTC)
        container = None
        timer = None
        timed_out = threading.Event()
        exit_code: int | None = None
        oom = False
        error = self._await_engine()
        image_id: str | None = None
        try:
            if error is not None:
                raise _EngineAway(error)
            container = self._start(spec, session_id)
            image_id = container.attrs.get("Image")

            def on_timeout() -> None:
                timed_out.set()
                # It may have just ended, or the engine may be away.
                with contextlib.suppress(docker.errors.APIError, RequestException):
                    container.kill()

            timer = threading.Timer(spec.timeout_s, on_timeout)
            timer.daemon = True
            timer.start()
            _stream_logs(container, log_path, on_line)
            exit_code = container.wait().get("StatusCode")
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except _EngineAway as exc:
            error = str(exc)
        except (docker.errors.DockerException, RequestException) as exc:
            error = f"Docker engine error: {_first_line(exc)}"
        finally:
            if timer is not None:
                timer.cancel()
            if container is not None:
                with self._lock:
                    self._running.pop(container.id, None)
                try:
                    _remove(container)
                except (docker.errors.DockerException, RequestException):
                    # The engine went away mid-run: remove it once the engine is back.
                    self._pending_removal.add(container.id)
        return RunOutcome(
            started=started,
            ended=datetime.now(UTC),
            exit_code=exit_code,
            log_path=log_path,
            image_id=image_id,
            timed_out=timed_out.is_set(),
            oom_killed=oom,
            error=error,
        )

    def cancel(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for container in running:
            with contextlib.suppress(docker.errors.APIError, RequestException):
                container.kill()

    def remove_strays(self) -> int:
        strays = self.client.containers.list(all=True, filters={"label": LABEL_MANAGED})
        for container in strays:
            _remove(container)
        return len(strays)


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
