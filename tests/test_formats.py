"""The same output options on every command that prints data: each format is what it says (JSON
that parses, with its schema; CSV that parses; a Markdown table), the rows the same in each."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from kit import cli
from kit.reporting.table import LISTING_SCHEMA, json_key
from tests.conftest import invoke, invoke_with, session_dirs
from tests.fakes import FakeEngine

RATES = {"stock:default": 5.0, "stock:tuned": 6.0}


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as env:  # a lock of its own, as every test has
        env.setenv("KIT_LOCK_FILE", str(results / "kit.lock"))
        _two_compares(results)
    first, second = sorted(p.name for p in session_dirs(results))
    return results, first, second


def _two_compares(results) -> None:
    for _ in range(2):
        code, text = invoke_with(FakeEngine(RATES), "compare", "stock", "-p", "default", "-p",
                                 "tuned", "--repeats", "2", "--results", str(results))  # fmt: skip
        assert code == 0, text


def stdout(*args: str, engines=None) -> str:
    """What the command printed to stdout alone (progress goes to stderr)."""
    from tests.fakes import GivenEngines

    obj = GivenEngines(engines) if engines is not None else None
    result = CliRunner().invoke(cli.app, list(args), obj=obj)
    assert result.exit_code == 0, result.output
    return result.stdout


def commands(two_sessions) -> dict[str, tuple[tuple[str, ...], str]]:
    results, first, second = two_sessions
    where = ("--results", str(results))
    return {
        "knobs": (("knobs",), "knobs"),
        "profiles list": (("profiles", "list"), "profiles"),
        "profiles show": (("profiles", "show", "tuned", "--cpus", "0"), "profile"),
        "diff": (("diff", first, second, *where), "cells"),
        "history": (("history", *where), "sessions"),
    }


NAMES = ("knobs", "profiles list", "diff")


def test_history_and_a_profile_are_typed_data(two_sessions):
    """Numbers as numbers, lists as lists, times in ISO 8601 (the text keeps its columns)."""
    args, _ = commands(two_sessions)["history"]
    (first, *_) = json.loads(stdout(*args, "--format", "json"))["sessions"]
    assert isinstance(first["runs"], int) and isinstance(first["images"], list)
    assert "T" in first["started"] and first["best"]["images_per_sec"] > 0
    assert next(csv.reader(io.StringIO(stdout(*args, "--format", "csv"))))[0] == "session"
    args, _ = commands(two_sessions)["profiles show"]
    shown = json.loads(stdout(*args, "--format", "json"))
    assert shown["cpuset"] == [0] and shown["env"]["OMP_NUM_THREADS"] == "1"
    assert shown["inter_op"] == 2 and isinstance(shown["numactl"], list)


@pytest.mark.parametrize("name", NAMES)
def test_every_format_of_a_listing_holds_the_same_rows(two_sessions, name):
    args, array = commands(two_sessions)[name]
    data = json.loads(stdout(*args, "--format", "json"))
    assert data["schema"] == LISTING_SCHEMA and data[array]
    rows = data[array]
    keys = list(rows[0])
    assert all(k == json_key(k) for k in keys)  # snake case
    parsed = list(csv.reader(io.StringIO(stdout(*args, "--format", "csv"))))
    assert [json_key(h) for h in parsed[0]] == keys and len(parsed) == len(rows) + 1
    markdown = stdout(*args, "--format", "markdown")
    assert markdown.count("\n|") >= len(rows) and "|---" in markdown.replace(":", "-")


def test_diff_json_names_both_sessions_and_what_differs(two_sessions):
    results, first, second = two_sessions
    data = json.loads(stdout("diff", first, second, "--results", str(results), "-f", "json"))
    assert data["there"].startswith(first) or first in data["there"]
    assert {row["cell"] for row in data["cells"]} >= {"stock:default", "stock:tuned"}
    assert isinstance(data["machines"], list)


def test_topology_formats():
    data = json.loads(stdout("topology", "--format", "json"))
    assert data["cpus"] and "nodes" in data
    rows = list(csv.DictReader(io.StringIO(stdout("topology", "--format", "csv"))))
    assert [int(r["cpu"]) for r in rows] == sorted(int(r["cpu"]) for r in rows) and rows
    assert set(rows[0]) == {"cpu", "core", "socket", "node"}


def test_a_format_that_does_not_exist_is_refused():
    code, text = invoke("knobs", "--format", "yaml")
    assert code == 2 and "--format" in text and "yaml" in text


def test_a_plans_csv_has_a_row_a_cell_with_its_rerun_line():
    args = ("plan", "stock", "-p", "default", "-p", "tuned", "--repeats", "3", "--cpus", "0")
    text = stdout(*args, "--format", "csv", engines=FakeEngine({}, name="docker"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["cell"] for r in rows] == ["stock:default", "stock:tuned"]
    assert all(len(r["runs"].split(",")) == 3 and r["rerun"] for r in rows)
    markdown = stdout(*args, "--format", "markdown", engines=FakeEngine({}, name="docker"))
    assert markdown.startswith("| cell")
