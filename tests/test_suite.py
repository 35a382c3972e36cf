"""The suite itself: a test that hangs fails by name within its limit instead of using up CI's
time, and every test has such a limit."""

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
