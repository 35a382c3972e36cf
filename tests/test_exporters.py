"""Every exporter from the same typed rows, as golden files: a session with a baseline, faster
cells, a noisy one and failed ones, on the seed's topology."""

import json
import os
import re
from dataclasses import replace

import pytest

from kit.campaign.session import open_session, run_session
from kit.reporting.files import bars
from kit.reporting.formats import Format
from kit.reporting.rows import ROW_SCHEMA, Row, RowKind, RowStatus, rows
from kit.reporting.table import render
from tests.conftest import DATA
from tests.fakes import C4, FakeEngine
from tests.test_campaign import request

GOLDEN = DATA / "exports"
EXPORTS = DATA.parent.parent / "docs" / "exports.md"


class Drifting(FakeEngine):
    """Rates per repeat, so a cell can be noisy."""

    def __init__(self, rates, **kw):
        super().__init__({k: v[0] for k, v in rates.items()}, **kw)
        self.by_repeat = rates

    def run(self, spec, session_id, log_path, on_line):
        series = self.by_repeat.get(spec.key)
        if series is not None:
            self.rates[spec.key] = series[spec.repeat % len(series)]
        return super().run(spec, session_id, log_path, on_line)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from kit.campaign.placing import place

    tmp = tmp_path_factory.mktemp("exports")
    rates = {
        "stock:default": [5.48, 5.50, 5.46],
        "intel:tuned": [33.62, 33.70, 33.55],
        "intel:interleave": [34.18, 30.10, 37.90],  # noisy
    }
    engine = Drifting(rates, name="docker", topology=C4, machine="seed")
    what = request(tmp, ("stock", "intel"), ("default", "tuned", "interleave"), repeats=3).what
    plan = place(what, C4, ["docker"])
    store, _ = open_session(plan, engine, tmp)
    found = run_session(plan, engine, store, host_records={"docker": engine.host_facts("x").record})
    # stock:tuned, stock:interleave and intel:default have no rate: they fail
    return found


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize(
    ("fmt", "wide", "name"),
    [(Format.table, False, "table.txt"), (Format.table, True, "table-wide.txt"),
     (Format.markdown, False, "table.md"), (Format.csv, False, "rows.csv"),
     (Format.json, False, "rows.json")],
)  # fmt: skip
def test_exporters_from_typed_rows(results, fmt, wide, name):
    _golden(name, render(results, fmt, wide=wide) + "\n")


def test_rows_are_typed(results):
    table = rows(results)
    assert all(isinstance(r, Row) for r in table)
    by = {(r.image, r.profile): r for r in table}
    assert by["stock", "default"].baseline and by["stock", "default"].status is RowStatus.ok
    assert by["intel", "interleave"].status is RowStatus.noisy
    assert by["intel", "default"].status is RowStatus.failed
    assert isinstance(by["intel", "tuned"].speedup, float) and by["intel", "interleave"].best
    assert {r.kind for r in table} == {RowKind.cell}


def test_the_terminal_table_fits_120_columns_and_wide_keeps_every_column(results):
    narrow, wide = render(results, Format.table), render(results, Format.table, wide=True)
    assert max(len(line) for line in narrow.splitlines()) <= 120
    assert "[1] " in narrow and "memory policy" not in narrow
    assert "memory policy" in wide and "GFLOP/s" in wide


def test_the_json_schema_is_the_documented_one(results):
    data = json.loads(render(results, Format.json))
    assert data["schema"] == ROW_SCHEMA
    section = EXPORTS.read_text()
    assert f"schema {ROW_SCHEMA}" in section
    documented = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert documented == ["schema", *data["rows"][0]]


def test_plots_read_the_same_rows(results):
    drawn = {b.label: b for b in bars(results)}
    assert drawn["intel:interleave"].noisy and not drawn["intel:tuned"].noisy
    assert drawn["intel:tuned"].speedup.startswith("6.14x [")


def test_a_wide_table_fits_with_its_long_values_as_notes():
    from kit.reporting.table import fit_with_notes

    isa = "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX " * 2
    body = [["stock", "default", isa, "-"], ["intel", "tuned", isa, "KMP_AFFINITY " * 12]]
    text = fit_with_notes(["image", "profile", "ISA", "notes"], body, ("ISA", "notes"))
    assert max(len(line) for line in text.splitlines()) <= 120
    lines = text.splitlines()
    assert lines[2].split()[2] == lines[3].split()[2] == "[1]"  # one note for one value
    assert lines[3].split()[3] == "[2]" and lines[2].split()[3] == "-"
    assert "[1] Intel AVX-512" in text and "[2] KMP_AFFINITY" in text


def test_the_best_cell_is_placed_per_cpu_against_recorded_systems_of_its_workload(results):
    table = rows(results)
    tuned = next(r for r in table if r.image == "intel" and r.profile == "tuned")
    assert tuned.per_cpu == pytest.approx(33.62 / 36, rel=0.01)
    said = render(results, Format.table)
    assert "reference: none recorded for tiny train" in said
    seed = [replace(r, workload=replace(r.workload, model="resnet50", batch_size=128))
            for r in results]  # fmt: skip
    text = render(seed, Format.table)
    assert "reference, resnet50 train, batch 128, fp32:" in text
    assert "0.93 on 2-socket Intel Xeon (Haswell), 36 logical CPUs" in " ".join(text.split())
