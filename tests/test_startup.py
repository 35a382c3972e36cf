"""`kit --help` and shell completion (which runs kit on every TAB) load only the CLI: none of the
heavy libraries and none of the core, which a command imports when it runs
(benchmarks/startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "numpy", "docker", "requests", "paramiko", "scipy", "optuna", "ruptures",
         "psutil", "tabulate", "zstandard", "sqlite3", "pydantic")  # fmt: skip
CORE = ("kit.campaign.run", "kit.campaign.request", "kit.engines.factory", "kit.engines.docker",
        "kit.judging.stats", "kit.reporting.table", "kit.store.database", "kit.cli.ui",
        "kit.cli.measure_request")  # fmt: skip
SCRIPT = """
import json, sys
sys.argv = ["kit", *sys.argv[1:]]
from kit.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def loaded(*args: str, **env: str) -> tuple[str, set[str]]:
    """What a fresh `kit ARGS` process printed, and the modules it held when it ended."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, **env},
    )  # fmt: skip
    line = done.stderr.rsplit("\nMODULES ", 1)
    assert len(line) == 2, done.stderr[-2000:]
    return done.stdout, set(json.loads(line[1]))


def light(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m in CORE)


@pytest.mark.parametrize(
    "args", [["--help"], ["compare", "--help"], ["images", "build", "--help"], ["--version"]]
)
def test_help_loads_only_the_cli(args):
    printed, modules = loaded(*args)
    assert printed.strip() and "kit.cli.options" in modules
    assert light(modules) == []


@pytest.mark.parametrize(
    ("words", "offered"),
    [("kit comp", "compare"), ("kit compare --pre", "--preset"), ("kit compare --model ", "tiny")],
)
def test_completion_loads_only_the_cli(words, offered):
    printed, modules = loaded(_KIT_COMPLETE="complete_bash", COMP_WORDS=words,
                              COMP_CWORD=str(len(words.split(" ")) - 1))  # fmt: skip
    assert offered in printed.split()
    assert light(modules) == []


def test_a_command_that_runs_loads_its_core(tmp_path):
    _, modules = loaded("history", "--results", str(tmp_path))
    assert "kit.store.database" in modules  # what the check above would miss if it were broken
