"""Data as data: every command's `--format json` validates against the JSON Schema kit ships
(kit/schemas), with numbers as numbers, lists as lists and ISO 8601 times; the rows' schema is
the Row record's own fields."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import jsonschema
import pytest

from kit.reporting.rows import BestRow, Row
from tests.conftest import DATA, invoke_with
from tests.fakes import FakeEngine

RATES = {"stock:default": 5.0, "stock:tuned": 6.0, "intel:default": 9.0, "intel:tuned": 10.0}


def schema(name: str) -> dict:
    return json.loads((resources.files("kit") / "schemas" / f"{name}.schema.json").read_text())


def document(text: str) -> dict:
    return json.loads(text[text.index("{") : text.rindex("}") + 1])


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Two sessions on a fake engine, in one results folder."""
    results = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as patch:  # its own session lock, as every test's
        patch.setenv("KIT_LOCK_FILE", str(results / "kit.lock"))
        for _ in range(2):
            code, text = invoke_with(
                FakeEngine(RATES), "compare", "stock", "intel", "-p", "default", "-p", "tuned",
                "--repeats", "2", "--model", "tiny", "--results", str(results),
            )  # fmt: skip
            assert code == 0, text
    return results


def commands(results) -> list[tuple[str, list[str]]]:
    r = ["--results", str(results)]
    lscpu = str(DATA / "topology" / "c4.8xlarge.lscpu")
    return [
        ("rows", ["report", "latest", "-f", "json", *r]),
        ("history", ["history", "-f", "json", *r]),
        ("trend", ["history", "--cell", "stock:default", "-f", "json", *r]),
        ("plan", ["plan", "stock", "intel", "--topology", lscpu, "-f", "json"]),
        ("topology", ["topology", "-f", "json"]),
        ("profile", ["profiles", "show", "tuned", "-f", "json"]),
        ("listing", ["profiles", "list", "-f", "json"]),
        ("listing", ["knobs", "-f", "json"]),
    ]


def test_every_json_output_validates_against_its_shipped_schema(stored):
    for name, args in commands(stored):
        code, text = invoke_with(FakeEngine(RATES), *args)
        assert code == 0, (args, text)
        jsonschema.validate(document(text), schema(name))


def test_a_compare_and_a_diff_validate_too(stored, tmp_path):
    code, text = invoke_with(
        FakeEngine(RATES), "compare", "stock", "-p", "default", "-p", "tuned", "--repeats", "2",
        "--model", "tiny", "--results", str(tmp_path), "-f", "json",
    )  # fmt: skip
    assert code == 0, text
    jsonschema.validate(document(text), schema("rows"))
    sessions = sorted(p.name for p in stored.iterdir() if p.is_dir())
    code, text = invoke_with(None, "diff", *sessions, "-f", "json", "--results", str(stored))
    assert code == 0, text
    jsonschema.validate(document(text), schema("listing"))


def test_the_schemas_would_fail_a_wrong_document(stored):
    code, text = invoke_with(FakeEngine(RATES), "history", "-f", "json", "--results", str(stored))
    assert code == 0, text
    data = document(text)
    data["sessions"][0]["runs"] = str(data["sessions"][0]["runs"])  # a number as a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema("history"))


def test_the_rows_schema_is_the_row_records_own_fields():
    rows = schema("rows")["properties"]
    assert list(rows["rows"]["items"]["properties"]) == [f.name for f in dataclasses.fields(Row)]
    best = rows["best_per_engine"]["items"]["properties"]
    assert list(best) == [f.name for f in dataclasses.fields(BestRow)]
