"""The suite itself: a test that hangs fails by name within its limit instead of using up CI's
time, and every test has such a limit; a host of another shape than the real-engine tests read
their figures on is said up front."""

from __future__ import annotations

import subprocess
import sys
import time


def test_every_test_has_a_time_limit(request):
    assert float(request.config.getini("timeout")) == 900


def test_a_hung_test_fails_by_name_within_its_limit(tmp_path):
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_that_hangs():\n    time.sleep(60)\n"
    )
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_hang.py"), "--timeout", "2",
         "-p", "no:cacheprovider", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - began < 40
    assert "Timeout" in done.stdout and "test_that_hangs" in done.stdout, done.stdout


def test_a_host_of_another_shape_is_said_before_any_real_engine_test():
    from tests.conftest import host_shape_problem

    assert host_shape_problem([0, 1], 1) is None  # CI's
    said = host_shape_problem([0, 1, 2, 3], 2)
    assert said is not None and "this one has CPUs 0,1,2,3 and 2 NUMA nodes" in said
    assert "make unit" in said
