"""zentf, AMD's ZenDNN plugin on TensorFlow 2.21, in real containers: with AMD's settings (the
zentf profile) its own log proves ZenDNN ran; without them it says it did not. Inference is its
mode: training on it is refused before anything runs."""

from __future__ import annotations

import pytest

from kit.store.database import ResultsDB
from tests.conftest import TINY
from tests.conftest import invoke as kit

pytestmark = pytest.mark.docker


def test_zendnn_runs_with_amds_settings_and_its_log_says_so(kit_images, kit_containers, tmp_path):
    code, text = kit(
        "compare", "zentf", "-p", "default", "-p", "zentf", "--mode", "infer", *TINY,
        "--repeats", "2", "--verify", "--results", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    with ResultsDB(tmp_path / "kit.db") as db:
        (session,) = db.sessions()
        runs = db.runs(session.id)
    assert len(runs) == 4 and all(r["status"] == "ok" for r in runs), runs
    verify = {v["profile"]: v for v in session.meta["verify"]}
    zen = verify["zentf"]
    assert zen["zendnn_ops"].get("_ZenFusedConv2D", 0) + zen["zendnn_ops"].get("_ZenConv2D", 0) > 0
    assert any(w.startswith("ZenDNN ran: ") for w in zen["warnings"]), zen["warnings"]
    assert zen["runtime"] == "OpenMP"  # ZenDNN's own oneDNN, on the plugin's OpenMP
    assert verify["default"]["zendnn_ops"] == {}
    assert any("ZenDNN did not run" in w for w in verify["default"]["warnings"])
    # AMD's OpenMP settings act on zentf: nothing said of them before the runs
    assert "do nothing on zentf" not in text


def test_training_on_zentf_is_refused_before_anything_runs(tmp_path):
    code, text = kit("compare", "zentf", "stock", *TINY, "--results", str(tmp_path))
    assert code == 2 and "zentf is an inference build" in text and "--mode infer" in text
    assert not any(tmp_path.iterdir())
