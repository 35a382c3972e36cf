"""Sweep and tune against the real Docker engine, real images and real TensorFlow (tiny model):
end to end, stored, reported, and the saved winner rerun by compare."""

from __future__ import annotations

import sqlite3

import pytest

from kit.campaign.schedules.budget import MAX_ROUNDS
from kit.campaign.schedules.confirm import CONFIRM_REPEATS
from kit.store.folder import load_session
from tests.conftest import TINY, json_rows, only_session, session_dirs
from tests.conftest import invoke as kit

pytestmark = pytest.mark.docker


def test_a_sweep_of_stock_and_intel_in_real_containers(kit_images, kit_containers, tmp_path):
    code, text = kit(
        "sweep", "stock", "intel", "--knob", "intra=1,2", *TINY, "--repeats", "2",
        "--results", str(tmp_path), "--format", "json",
    )  # fmt: skip
    assert code == 0, text
    rows = json_rows(text)
    assert [(r["image"], r["knobs"]) for r in rows] == [
        (image, {"intra": v}) for image in ("stock", "intel") for v in ("1", "2")
    ]
    assert all(r["images_per_sec"] > 0 and r["repeats"] == 2 for r in rows)
    # The pool size really changed inside the container.
    runs = load_session(only_session(tmp_path))
    assert {r.knobs["intra"]: r.provenance["threads"]["intra_op"] for r in runs} == {
        "1": 1, "2": 2,
    }  # fmt: skip
    with sqlite3.connect(tmp_path / "kit.db") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM knobs WHERE knob = 'intra'").fetchone()
    assert count == 4
    code, text = kit("report", "latest", "--results", str(tmp_path), "--format", "html", "--plot")
    assert code == 0, text
    assert (only_session(tmp_path) / "plot-knobs-heatmap.png").is_file()


def test_a_tune_of_intel_then_its_winner_rerun_by_compare(kit_images, kit_containers, tmp_path):
    saved = tmp_path / "best.toml"
    code, text = kit(
        "tune", "intel", "--knob", "intra=1,2", "--knob", "inter=1,2", "--budget", "8runs",
        *TINY, "--results", str(tmp_path / "tune"), "--save-profile", str(saved),
    )  # fmt: skip
    assert code == 0, text
    (session,) = session_dirs(tmp_path / "tune")
    runs = load_session(session)
    searched = [r for r in runs if r.repeat < MAX_ROUNDS]  # the last repeats confirm the best
    assert len(searched) == 8 and len(runs) == 8 + 4 * CONFIRM_REPEATS and all(r.ok for r in runs)
    assert "Best: intel:" in text and "It took 20 runs" in text and "fresh runs" in text
    assert "intel:interleave runs as intel:tuned" in text  # one NUMA node here
    assert "[best-intel]" in saved.read_text()
    code, text = kit(
        "compare", "intel", "--profiles", str(saved), "-p", "default", "-p", "best-intel",
        *TINY, "--repeats", "1", "--results", str(tmp_path / "again"), "--format", "json",
    )  # fmt: skip
    assert code == 0, text
    assert [r["profile"] for r in json_rows(text)] == ["default", "best-intel"]
