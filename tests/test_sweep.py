"""kit sweep end to end on a fake engine: the grid, merged cells said, one column per knob,
stored knob values, the scaling curve, the attribution ladder, and refusals before any run."""

import json
import sqlite3

import pytest

from tests.conftest import invoke_with, json_rows
from tests.fakes import C4, FakeEngine, GivenEngines


def rate_of(spec) -> float:
    """A synthetic grid: intel 1.1x stock, intra 2 1.8x intra 1, blocktime 1 1.05x, else equal."""
    knobs = dict(spec.profile.knobs)
    rate = 10.0 * (1.1 if spec.image.label == "intel" else 1.0)
    rate *= 1.8 if knobs.get("intra") == "2" else 1.0
    if spec.image.label == "intel" and knobs.get("blocktime") == "1":
        rate *= 1.05
    cores = knobs.get("cores")
    return rate * (int(cores) ** 0.9 if cores else 1.0)


def sweep(tmp_path, *args, engine=None):
    engine = engine or FakeEngine(rate_of)
    maker = GivenEngines(engine, topology=engine.topology)
    code, text = invoke_with(
        maker, "sweep", *args, "--results", str(tmp_path / "r"), "--model", "tiny",
        "--repeats", "2",
    )  # fmt: skip
    return code, text, engine


def test_a_grid_runs_each_cell_that_can_differ_once(tmp_path):
    code, text, engine = sweep(
        tmp_path, "stock", "intel", "--knob", "intra=1,2", "--knob", "blocktime=0,1"
    )
    assert code == 0, text
    keys = {s.key for s in engine.ran}
    assert len(keys) == 6  # stock's blocktime cells merged: KMP_* does nothing there
    assert "stock:intra=1 blocktime=1 runs as stock:intra=1 blocktime=0" in text
    header = next(line for line in text.splitlines() if line.startswith("image"))
    assert "intra" in header and "blocktime" in header and "profile" not in header
    assert "Ladder from baseline to best" in text
    assert "image stock -> intel" in text and "intra 1 -> 2" in text


def test_knob_values_are_stored_and_exported(tmp_path):
    code, text, _ = sweep(tmp_path, "intel", "-k", "intra=1,2", "--format", "json")
    assert code == 0, text
    rows = json_rows(text)
    assert [r["knobs"] for r in rows] == [{"intra": "1"}, {"intra": "2"}]
    with sqlite3.connect(tmp_path / "r" / "kit.db") as db:
        stored = db.execute("SELECT cell, knob, value FROM knobs ORDER BY cell").fetchall()
    assert stored == [("intel:intra=1", "intra", "1"), ("intel:intra=2", "intra", "2")]
    records = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*/0*-*.json")]
    record = next(r for r in records if r["profile"] == "intra=1")
    assert record["knobs"] == [["intra", "1"]]  # pairs, in the order the knobs were given


def test_report_of_a_sweep_has_its_knob_columns(tmp_path):
    code, text, _ = sweep(tmp_path, "intel", "-k", "intra=1,2")
    assert code == 0, text
    code, text = invoke_with(None, "report", "latest", "--results", str(tmp_path / "r"))
    assert code == 0, text
    header = next(line for line in text.splitlines() if line.startswith("image"))
    assert "intra" in header
    code, text = invoke_with(None, "history", "--results", str(tmp_path / "r"))
    assert code == 0 and "knobs intra" in text, text


def test_cores_give_a_scaling_curve_with_its_ideal_line(tmp_path):
    engine = FakeEngine(rate_of, topology=C4)
    code, text, _ = sweep(tmp_path, "intel", "-k", "cores=1,2,4", engine=engine)
    assert code == 0, text
    block = text.split("Scaling", 1)[1]
    lines = [line.split() for line in block.splitlines()[3:6]]
    assert [line[0] for line in lines] == ["1", "2", "4"]
    assert lines[0][3] == "100%" and lines[2][3] == f"{4**0.9 / 4:.0%}"
    assert float(lines[2][2]) == pytest.approx(44.0)  # 4x the 1-core 11.0


def test_where_keeps_only_matching_cells(tmp_path):
    code, text, engine = sweep(
        tmp_path, "intel", "-k", "inter=1,2", "-k", "intra=1,2", "--where", "inter*intra<=threads"
    )
    assert code == 0, text
    assert len({s.key for s in engine.ran}) == 3 and "--where left out 1" in text


def test_images_may_be_a_knob(tmp_path):
    code, text, engine = sweep(tmp_path, "-k", "image=stock,intel", "-k", "intra=1,2")
    assert code == 0, text
    assert {s.image.label for s in engine.ran} == {"stock", "intel"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["intel", "-k", "nope=1"], "unknown knob 'nope'"),
        (["intel", "-k", "cores=64"], "asks for more than the 2 physical cores"),
        (["intel", "-k", "intra=1,2", "--where", "intra > 5"], "leaves no cell"),
        (["intel", "-k", "intra=1", "--where", "sockets > 1"], "neither a swept knob"),
        (["intel"], "a sweep needs a knob"),
        (["-k", "intra=1"], "no image to sweep"),
        (["intel", "-k", "image=stock"], "images are named twice"),
        (["intel", "-k", "intra=0"], "not a positive whole number"),
        (["intel", "-k", "numa=everywhere"], "unknown policy"),
        (["intel", "-k", "intra=1", "--knobs", "/nonexistent.toml"], "--knobs"),
    ],
)
def test_bad_input_is_one_line_before_any_run(tmp_path, args, says):
    code, text, engine = sweep(tmp_path, *args)
    assert code == 2 and says in text, text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text
    assert engine.ran == []


def test_a_compare_tells_the_build_and_the_settings_apart(tmp_path):
    rates = {"stock:default": 5.48, "stock:tuned": 6.0, "intel:default": 6.6, "intel:tuned": 33.62}
    code, text = invoke_with(
        FakeEngine(rates), "compare", "stock", "intel", "-p", "default", "-p", "tuned",
        "--model", "tiny", "--repeats", "2", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    ladder = text.split("Ladder from baseline to best", 1)[1]
    assert ladder.index("image stock -> intel") < ladder.index("+ profile default -> tuned")
    assert "6.14x" in text
