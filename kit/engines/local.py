"""The local engine: the same flavors as Python virtual environments on this host, pinned with
taskset and numactl instead of a container -- for hosts without Docker, and to measure what the
container costs. Environments are made from the images' own pins and cached."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from kit.engines.base import LineSink
from kit.engines.orphans import end_orphaned_processes, owner_environment
from kit.engines.watchdog import Running, Watchdog
from kit.errors import EngineUnavailable, ImageNotFound, UsageError
from kit.host.facts import HostFacts, local_facts
from kit.model.flavors import Flavor, docker_dir, image_tag
from kit.model.results import RunOutcome
from kit.model.spec import RunSpec

# What the workload inherits from kit's own environment; everything else comes from the profile.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """$KIT_CACHE, else the user's cache directory's kit/."""
    env = os.environ if environ is None else environ
    if env.get("KIT_CACHE"):
        return Path(env["KIT_CACHE"])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kit"


def flavor_of(reference: str) -> Flavor:
    """The flavor a run names; the local engine has no arbitrary image references."""
    for flavor in Flavor:
        if reference in (flavor.value, image_tag(flavor)):
            return flavor
    raise UsageError(
        f"the local engine runs kit's flavors only, not {reference!r}",
        f"use one of {', '.join(f.value for f in Flavor)}, or --engine docker",
    )


def pins_digest(flavor: Flavor) -> str:
    """Identifies an environment: it changes whenever the flavor's pins change."""
    folder = docker_dir() / "flavors"
    digest = hashlib.sha256()
    for suffix in ("txt", "lock"):
        digest.update((folder / f"{flavor.value}.{suffix}").read_bytes())
    return digest.hexdigest()[:12]


def local_environment(
    spec: RunSpec, workload_path: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = os.environ if environ is None else environ
    out = {k: env[k] for k in PASSED_ENV if k in env}
    out.update(
        PYTHONPATH=str(workload_path),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        TF_CPP_MIN_LOG_LEVEL="1",
        KIT_FLAVOR=flavor_of(spec.image.reference).value,
    )
    out.update(spec.environment())
    return out


class LocalEngine:
    name = "local"
    samples_host = True
    images = None  # no images of its own to move

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self._running: Running[subprocess.Popen] = Running()

    def check(self) -> None:
        missing = [tool for tool in ("taskset", "numactl") if shutil.which(tool) is None]
        if missing:
            raise EngineUnavailable(
                f"the local engine needs {' and '.join(missing)}",
                "install util-linux and numactl (apt-get install numactl)",
            )

    def host_facts(self, image: str) -> HostFacts:
        return local_facts()

    def env_path(self, flavor: Flavor) -> Path:
        return self.root / "envs" / f"{flavor.value}-{pins_digest(flavor)}"

    def adopted_path(self, flavor: Flavor) -> Path:
        """The record of an environment kit did not make but checked against the pins."""
        return self.env_path(flavor).with_suffix(".adopted")

    def state(self, flavor: Flavor) -> str | None:
        """ "ready" (made by kit), "adopted PREFIX" (checked against the pins), else None."""
        path = self.env_path(flavor)
        if (path / "ready").is_file():
            return "ready"
        if path.is_symlink() and self.adopted_path(flavor).is_file():
            return f"adopted {os.readlink(path)}"
        return None

    def rerun_line(self, spec: RunSpec, session_id: str) -> str:
        """The command that reruns ``spec`` by hand: its environment, taskset, numactl, the
        flavor's python on kit's workload."""
        python = self.env_path(flavor_of(spec.image.reference)) / "bin" / "python"
        env = {"PYTHONPATH": str(self.root / "workload"), **spec.environment()}
        return shlex.join(["env", *(f"{k}={v}" for k, v in env.items()),
                           *spec.host_command(str(python))])  # fmt: skip

    def workload_path(self) -> Path:
        """A folder holding ``kit_workload`` -- kit's workload, as the images have it."""
        folder = self.root / "workload"
        link = folder / "kit_workload"
        source = Path(__file__).resolve().parents[1] / "workload"  # kit/workload
        folder.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or link.resolve() != source:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(source, target_is_directory=True)
        return folder

    def image_id(self, reference: str) -> str:
        flavor = flavor_of(reference)
        path = self.env_path(flavor)
        if self.state(flavor) is None:
            raise ImageNotFound(
                f"no local environment for {flavor.value} (looked in {path})",
                f"make it with `kit envs build {flavor.value}` (or `kit envs adopt "
                f"{flavor.value} PREFIX` of one that has its pins), or pass --build-missing",
            )
        return f"venv:{path.name}"

    def build(self, flavor: Flavor, on_log: LineSink) -> Path:
        """Create the flavor's environment from the images' pins (cached by their digest)."""
        path = self.env_path(flavor)
        if self.state(flavor) is not None:
            return path
        if path.is_symlink():
            path.unlink()
        shutil.rmtree(path, ignore_errors=True)
        pins = docker_dir() / "flavors"
        steps = [
            [sys.executable, "-m", "venv", str(path)],
            [str(path / "bin" / "pip"), "install", "--disable-pip-version-check",
             "-r", str(pins / f"{flavor.value}.txt"), "-c", str(pins / f"{flavor.value}.lock")],
        ]  # fmt: skip
        for step in steps:
            proc = subprocess.Popen(
                step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            tail: list[str] = []
            for line in proc.stdout:
                on_log(line.rstrip())
                tail = [*tail[-8:], line.strip()]
            if proc.wait() != 0:
                raise UsageError(
                    f"making the {flavor.value} environment failed: {' | '.join(tail)}",
                    "check that this host reaches PyPI (behind a proxy, set PIP_CERT)",
                )
        (path / "ready").write_text(datetime.now(UTC).isoformat())
        return path

    def adopt(self, flavor: Flavor, prefix: Path) -> Path:
        """Use an environment made elsewhere (an image's /opt/venv, a cluster's module) for
        ``flavor``, once its packages are checked against the flavor's pins."""
        python = prefix / "bin" / "python"
        installed = installed_versions(python)
        differ = pin_differences(read_pins(flavor), installed)
        if differ:
            raise UsageError(
                f"{prefix} is not kit's {flavor.value} environment: {'; '.join(differ[:4])}"
                + (f" (and {len(differ) - 4} more)" if len(differ) > 4 else ""),
                f"install docker/flavors/{flavor.value}.txt with -c {flavor.value}.lock there, "
                f"or let kit make its own (`kit envs build {flavor.value}`)",
            )
        path = self.env_path(flavor)
        if (path / "ready").is_file() and not path.is_symlink():
            raise UsageError(
                f"kit already made the {flavor.value} environment in {path}",
                f"remove that folder first to use {prefix} instead",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.symlink_to(prefix.resolve(), target_is_directory=True)
        self.adopted_path(flavor).write_text(
            f"{prefix.resolve()}\nchecked {datetime.now(UTC).isoformat()}\n", encoding="utf-8"
        )
        return path

    def run(self, spec: RunSpec, session_id: str, log_path: Path, on_line: LineSink) -> RunOutcome:
        started = datetime.now(UTC)
        python = self.env_path(flavor_of(spec.image.reference)) / "bin" / "python"
        argv = list(spec.host_command(str(python)))
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=local_environment(spec, self.workload_path())
                | owner_environment(session_id, spec.index),  # found again if kit is killed
                start_new_session=True,  # its own process group: a timeout ends all of it
            )  # fmt: skip
        except OSError as exc:
            log_path.write_text("")
            error = f"cannot start {argv[0]}: {exc.strerror}"
            return RunOutcome(started, datetime.now(UTC), None, log_path, error=error)
        spawned = time.monotonic()
        watchdog = Watchdog(spec.timeout_s, lambda: _kill_group(proc))
        try:
            with self._running.tracked(str(proc.pid), proc), watchdog:
                _copy_output(proc, log_path, on_line)
                exit_code = proc.wait()
        finally:
            _kill_group(proc)  # nothing it started outlives the run
        return RunOutcome(
            started=started,
            ended=datetime.now(UTC),
            exit_code=exit_code,
            log_path=log_path,
            image_id=f"venv:{python.parent.parent.name}",
            timed_out=watchdog.fired,
            process_s=time.monotonic() - spawned,
        )

    def begin(self, specs, session_id: str, folder: Path) -> None:
        pass  # each run starts when it is run

    def cancel(self) -> None:
        for proc in self._running.snapshot():
            _kill_group(proc)

    def remove_strays(self) -> int:
        return len(end_orphaned_processes())  # a live kit's processes end with their runs

    def remove_orphans(self) -> list[str]:
        return end_orphaned_processes()


# What an environment holds, as each distribution names itself.
_VERSIONS = """
import importlib.metadata as m
for d in m.distributions():
    print(d.metadata["Name"], d.version)
"""


def installed_versions(python: Path) -> dict[str, str]:
    """Each distribution an environment's Python has (normalized name -> version)."""
    try:
        done = subprocess.run([str(python), "-c", _VERSIONS], capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    except OSError as exc:
        raise UsageError(
            f"cannot run {python}: {exc.strerror}",
            "give the environment's prefix (it holds bin/python)",
        ) from None
    if done.returncode:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"{python} failed: {said}", "give the prefix of a working environment")
    return {
        _normal(n): v for n, _, v in (line.partition(" ") for line in done.stdout.splitlines()) if v
    }


def read_pins(flavor: Flavor) -> dict[str, str]:
    """The flavor's pins: its requirements and its lock (normalized name -> version)."""
    pins: dict[str, str] = {}
    folder = docker_dir() / "flavors"
    for suffix in ("lock", "txt"):
        for line in (folder / f"{flavor.value}.{suffix}").read_text(encoding="utf-8").splitlines():
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pins[_normal(name)] = version.split(";")[0].strip()
    return pins


def pin_differences(pins: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """What an environment has otherwise than the pins say (missing or another version)."""
    return [
        f"{name} {installed.get(name, 'missing')} (pinned {version})"
        for name, version in sorted(pins.items())
        if installed.get(name) != version
    ]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copy_output(proc: subprocess.Popen, log_path: Path, on_line: LineSink) -> None:
    assert proc.stdout is not None
    with log_path.open("wb") as log:
        for raw in proc.stdout:
            log.write(raw)
            log.flush()
            on_line(raw.decode("utf-8", "replace").rstrip("\n"))


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
