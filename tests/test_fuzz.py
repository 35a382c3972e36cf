"""Hostile command lines, generated from kit's own option grammar: for every command that runs
through the engine seam, random options with hostile values (empty, huge, negative, non-finite,
non-ASCII, control characters, FIFOs, folders, missing and binary files). Whatever comes in, the
exit status is 0, 1 or 2, never a traceback; and exit 2 (refused) means no engine was called.

The seed is fixed (derandomized), so CI runs the same cases every time; KIT_FUZZ_EXAMPLES sets
how many."""

import os
from enum import Enum
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kit.cli import app
from tests.conftest import invoke_with
from tests.fakes import EPYC, FakeEngine, GivenEngines

EXAMPLES = int(os.environ.get("KIT_FUZZ_EXAMPLES", "400"))
# The commands whose every effect goes through the engine seam (images and envs talk to Docker
# and PyPI themselves; doctor inspects this machine): all of them, with every option.
COMMANDS = ("compare", "run", "verify", "plan", "report", "history", "peak", "topology", "clean",
            "profiles show", "profiles list")  # fmt: skip
RATES = {f"{i}:{p}": 5.0 for i in ("stock", "intel", "latest") for p in ("default", "tuned")}

TEXT = st.sampled_from(
    ["", " ", "-", "--", "-1", "0", "1", "2", "1e309", "nan", "inf", "-inf", "1.5",
     "99999999999999999999", "0-1", "1-0", "0-", "all", "per-node", "latest", "stock", "intel",
     "default", "tuned", "{cores}", "UPPER/Case:bad", "kit/tensorflow:", "x;y", "tëst", "\t",
     "a\nb", "\x1b[31m", "x" * 300, "tcp://127.0.0.1:99999", "ssh://", "unix://", "local",
     "stock:default", "stock:default@docker", "%s%n", "..", "/", "/proc", "/dev/null"]
) | st.text(max_size=12)  # fmt: skip
INTS = st.sampled_from(["-1", "0", "1", "3", "99999999999999999999", "abc", "1.5", ""])
FLOATS = st.sampled_from(["nan", "inf", "-inf", "-0", "0", "1e309", "-5", "abc", "0.001", "600"])


# What a person would plausibly pass, so that generated lines also get past the checks and run.
PLAUSIBLE = {
    "--profile": ["default", "tuned", "interleave", "node0", "one-per-core"],
    "--cpus": ["0", "1", "0-1"], "--nodes": ["0"], "--cores": ["1", "2"],
    "--interleave": ["all", "0"], "--membind": ["0"], "--preferred": ["0"],
    "--cpunodebind": ["0"], "--physcpubind": ["0", "1"], "--instances": ["1", "2", "per-node"],
    "--memory": ["2g"], "--pids-limit": ["4096"], "--repeats": ["1", "2"],
    "--timeout": ["600"], "--batch-size": ["4"], "--num-batches": ["2"],
    "--num-warmup-batches": ["1"], "--baseline": ["stock:default", "intel:default"],
    "--limit": ["5"], "--engine": ["docker", "auto"],
}  # fmt: skip


def _files(root: Path) -> dict[str, str]:
    """Hostile paths: a FIFO, a folder, a missing file, binary and non-UTF-8 files."""
    fifo = root / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    (root / "binary").write_bytes(bytes(range(256)) * 4)
    (root / "latin1.toml").write_bytes("[p]\ndescription = 'caf\xe9'\n".encode("latin-1"))
    (root / "empty").write_bytes(b"")
    (root / "folder").mkdir(exist_ok=True)
    return {n: str(root / n) for n in ("fifo", "binary", "latin1.toml", "empty", "folder",
                                       "missing")}  # fmt: skip


def _grammar() -> dict[str, list]:
    """Each command's parameters, as Click sees them."""
    root = typer.main.get_command(app)
    found = {}
    for name in COMMANDS:
        command = root
        for part in name.split():
            command = command.commands[part]
        found[name] = [p for p in command.params if p.name not in ("help",)]
    return found


GRAMMAR = _grammar()


def _values(param, files: dict[str, str]) -> st.SearchStrategy:
    plausible = PLAUSIBLE.get(param.opts[0])
    hostile = _hostile(param, files)
    if not plausible:
        return hostile
    likely = st.sampled_from(plausible)
    return likely | likely | likely | hostile


def _hostile(param, files: dict[str, str]) -> st.SearchStrategy:
    kind = param.type_descriptor.annotation
    inner = getattr(kind, "__args__", (kind,))
    base = next((t for t in inner if t is not type(None)), str)
    base = getattr(base, "__args__", (base,))[0] if hasattr(base, "__args__") else base
    if isinstance(base, type) and issubclass(base, Enum):
        return st.sampled_from([m.value for m in base]) | TEXT
    if base is int:
        return INTS
    if base is float:
        return FLOATS
    if base is Path:
        return st.sampled_from(list(files.values())) | TEXT
    return TEXT


@st.composite
def command_lines(draw, files: dict[str, str], results: str, commands=COMMANDS) -> list[str]:
    name = draw(st.sampled_from(commands))
    argv = name.split()
    params = GRAMMAR[name]
    for param in params:
        if param.param_type_name == "argument":
            count = draw(st.sampled_from([0, 1, 1, 1, 2, 2])) if param.nargs == -1 else 1
            likely = st.sampled_from(["latest"] if param.name == "session" else ["stock", "intel"])
            argv += [draw(likely | likely | likely | TEXT) for _ in range(count)]
        elif draw(st.integers(0, 4 if param.opts[0] in PLAUSIBLE else 12)) == 0:
            flag = param.opts[0]
            if getattr(param, "is_flag", False):
                argv.append(flag)
            else:
                argv += [flag, draw(_values(param, files))]
    if any("--results" in p.opts for p in params if p.param_type_name == "option"):
        argv += ["--results", results]
    return argv


class Watched(FakeEngine):
    """A fake engine that counts every call made of it."""

    def __init__(self) -> None:
        super().__init__(RATES, name="docker", topology=EPYC)
        self.calls = 0

    def __getattribute__(self, name):
        if name in ("check", "host_facts", "image_id", "run", "remove_strays"):
            object.__setattr__(self, "calls", object.__getattribute__(self, "calls") + 1)
        return object.__getattribute__(self, name)


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return root, _files(root)


@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(data=st.data())
def test_hostile_command_lines_get_an_exit_status_never_a_traceback(arena, data, monkeypatch):
    root, files = arena
    monkeypatch.chdir(root)
    monkeypatch.setenv("KIT_LOCK_FILE", str(root / "lock"))
    argv = data.draw(command_lines(files, str(root / "results")))
    engine = Watched()
    _alarm(60)
    try:
        code, text = invoke_with(GivenEngines(engine), *argv)  # an unexpected exception fails
    finally:
        _alarm(0)
    event(f"{argv[0]}: exit {code}")  # --hypothesis-show-statistics shows what ran
    assert code in (0, 1, 2), (argv, code, text[-2000:])
    assert "Traceback (most recent call last)" not in text, (argv, text[-2000:])
    if code == 2:
        assert engine.calls == 0, (argv, text[-2000:])


def _alarm(seconds: int):
    import signal

    def expire(signum, frame):
        raise TimeoutError(f"a command line took over {seconds}s (a hang)")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


REAL_COMMANDS = ("run", "plan", "verify")


@pytest.mark.docker
@settings(
    max_examples=int(os.environ.get("KIT_FUZZ_REAL_EXAMPLES", "12")), derandomize=True,
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(data=st.data())
def test_hostile_command_lines_on_the_real_engine(kit_images, kit_containers, arena, data):
    """A smaller sample on the real engine and images (the tiny model, whatever else is drawn):
    the same promises, and no container left behind (kit_containers)."""
    root, files = arena
    argv = data.draw(command_lines(files, str(root / "real-results"), REAL_COMMANDS))
    tiny = ["--model", "tiny", "--batch-size", "4", "--num-batches", "2", "--num-warmup-batches",
            "1", "--timeout", "300"]  # fmt: skip
    _alarm(600)
    try:
        code, text = invoke_with(None, *argv, *(tiny if argv[0] != "verify" else tiny[:2]))
    finally:
        _alarm(0)
    event(f"{argv[0]}: exit {code}")
    assert code in (0, 1, 2), (argv, code, text[-2000:])
    assert "Traceback (most recent call last)" not in text, (argv, text[-2000:])
