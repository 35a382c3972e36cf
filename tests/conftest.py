"""Shared fixtures. Tests marked ``docker`` use the real engine and kit's real images.

Without an engine they are skipped with the reason shown, unless KIT_REQUIRE_DOCKER=1 (set by
`make test` and CI), in which case they fail: an engine feature is never "tested" by skipping.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


TINY = ["--model", "tiny", "--batch-size", "8", "--num-batches", "3", "--num-warmup-batches", "1"]


def session_dirs(root: Path) -> list[Path]:
    """The session folders under a results directory (kit.db lies beside them)."""
    return sorted(p for p in root.iterdir() if p.is_dir())


def only_session(root: Path) -> Path:
    (session,) = session_dirs(root)
    return session


def json_rows(text: str) -> list[dict]:
    """The rows of `--format json` output (a versioned document) out of a command's output."""
    import json

    from kit.reporting.rows import ROW_SCHEMA

    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    assert data["schema"] == ROW_SCHEMA
    return data["rows"]


def invoke(*args: str) -> tuple[int, str]:
    """Run the CLI as `kit` does: a KitError becomes its one line and its exit code."""
    return invoke_with(None, *args)


def invoke_with(engines, *args: str) -> tuple[int, str]:
    """The CLI on the given engines: an EngineMaker, or engines for tests.fakes.GivenEngines
    (None: the real ones)."""
    from typer.testing import CliRunner

    from kit import cli
    from kit.cli import error_line
    from kit.errors import KitError

    if engines is not None and not hasattr(engines, "this_host"):
        from tests.fakes import GivenEngines

        engines = GivenEngines(*(engines if isinstance(engines, list | tuple) else [engines]))
    try:
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False, obj=engines)
    except KitError as exc:
        _check_width(args, error_line(exc))
        return exc.exit_code, Said(str(exc))
    _check_width(args, result.output)
    return result.exit_code, Said(result.output)


class Said(str):
    """What kit printed. ``phrase in said`` holds wherever kit wrapped the phrase's words to fit
    its width (kit.reporting.fit): a line break and its indent read as one space."""

    def __contains__(self, phrase: object) -> bool:
        if not isinstance(phrase, str):
            return NotImplemented
        return str.__contains__(self, phrase) or " ".join(phrase.split()) in " ".join(self.split())


DATA_FORMATS = ("json", "csv", "markdown")  # documents, for a program or a viewer to lay out


def one_message(printed: str) -> str:
    """The one message kit printed, its words joined: a first line, then only the lines kit
    wrapped it onto to fit its width (each indented). Fails on anything else (a traceback, a
    framework's box, a second message)."""
    first, *rest = printed.strip().splitlines()
    assert all(line.startswith("  ") and line.strip() for line in rest), printed
    return " ".join([first, *(line.strip() for line in rest)])


def _check_width(args: tuple[str, ...], output: str) -> None:
    """Every line kit printed for a person fits kit's width: every invocation in the suite is
    checked. Exempt: data (JSON, CSV), a table asked --wide, and a line of one word (a path)."""
    from kit.reporting.fit import WIDTH

    given = dict(itertools.pairwise(args))
    if given.get("-f", given.get("--format")) in DATA_FORMATS or "--wide" in args:
        return
    wide = [line for line in output.splitlines() if len(line) > WIDTH and " " in line.strip()]
    assert not wide, f"kit {' '.join(args)} printed lines over {WIDTH} columns: {wide[:3]}"


def _require_docker() -> bool:
    return os.environ.get("KIT_REQUIRE_DOCKER", "") not in ("", "0")


@pytest.fixture(autouse=True)
def _own_session_lock(tmp_path, monkeypatch):
    """Each test has its own session lock, so parallel test runs do not refuse each other."""
    monkeypatch.setenv("KIT_LOCK_FILE", str(tmp_path.parent / f"{tmp_path.name}.lock"))


HOST_SHAPE = "2 CPUs numbered 0-1 on one NUMA node"


def host_shape_problem(cpus: list[int], nodes: int) -> str | None:
    """What differs from the host the real-engine tests read their figures on (CI's: placements
    on CPUs 0-1, memory on node 0), said up front instead of in an assertion deep in a test;
    None on such a host."""
    found = [f"CPUs {','.join(map(str, cpus))}"] if cpus != [0, 1] else []
    found += [f"{nodes} NUMA nodes"] if nodes != 1 else []
    if not found:
        return None
    return (f"the real-engine tests assume a host of {HOST_SHAPE}; this one has "
            f"{' and '.join(found)}: run them on a 2-vCPU VM (as CI does), or `make unit` "
            "here")  # fmt: skip


def _this_host_shape() -> str | None:
    from pathlib import Path

    nodes = len(list(Path("/sys/devices/system/node").glob("node[0-9]*"))) or 1
    return host_shape_problem(sorted(os.sched_getaffinity(0)), nodes)


@pytest.fixture(scope="session")
def docker_client():
    from kit.engines.reach import connect
    from kit.errors import EngineUnavailable

    if (problem := _this_host_shape()) is not None:
        pytest.fail(problem)
    try:
        return connect()
    except EngineUnavailable as exc:
        if _require_docker():
            pytest.fail(f"KIT_REQUIRE_DOCKER is set but {exc}")
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def kit_images(docker_client):
    """Every flavor's image, built through kit's own build path from this checkout, so tests
    never run on a stale image (unchanged layers come from the cache in seconds)."""
    from kit.images.build import DEFAULT_BASE, build_image, default_ca_bundle
    from kit.model.flavors import Flavor

    return {
        flavor.value: build_image(
            docker_client, flavor, DEFAULT_BASE, default_ca_bundle(), print, lambda line: None
        )
        for flavor in Flavor
    }


@pytest.fixture
def kit_containers(docker_client):
    """Asserts the test left no container with kit's labels behind (and removes only those: a
    kit session running beside the suite keeps its own)."""
    from kit.engines.container import LABEL_MANAGED
    from kit.engines.orphans import LABEL_OWNER, boot_id, held, owner

    def beside(labels: dict) -> bool:  # another live kit's, not this suite's own sessions
        return held(labels, boot_id()) and labels.get(LABEL_OWNER) != owner()

    def kit_owned() -> dict:
        found = docker_client.containers.list(all=True, filters={"label": LABEL_MANAGED})
        return {c.id: c for c in found if not beside(c.labels or {})}

    before = kit_owned()
    yield
    left = [c for cid, c in kit_owned().items() if cid not in before]
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry (distribution 2.8) on loopback, with its own storage."""
    from tests.engines import start_registry

    try:
        proc, address = start_registry(tmp_path_factory.mktemp("registry"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    before = _tags_of(address)
    yield address
    proc.terminate()
    proc.wait(timeout=30)
    _untag(_tags_of(address) - before)


def _tags_of(address: str) -> set[str]:
    """This host's engine's tags for the registry at ``address`` (a pushed image keeps its
    registry tag: it holds the digest kit records for replays)."""
    import docker

    with contextlib.suppress(docker.errors.DockerException):
        images = docker.from_env().images.list()
        return {t for i in images for t in i.tags if t.startswith(f"{address}/")}
    return set()


def _untag(tags: set[str]) -> None:
    """Remove the tags the suite's pushes added; the images stay."""
    import docker

    with contextlib.suppress(docker.errors.DockerException):
        client = docker.from_env()
        for tag in tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, noprune=True)
