"""The environment variables kit reads, each parsed and checked in one place: a bad value is
refused with one line before anything runs (never a traceback at import, or mid-session)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from kit.errors import UsageError

RECONNECT_ENV = "KIT_RECONNECT_S"
LOCK_ENV = "KIT_LOCK_FILE"
DEFAULT_RECONNECT_S = 60.0
MAX_RECONNECT_S = 3600.0
DEFAULT_LOCK = Path(tempfile.gettempdir()) / "kit-session.lock"


def reconnect_seconds() -> float:
    """How long a run waits for an engine that stopped answering (a daemon restart)."""
    text = os.environ.get(RECONNECT_ENV)
    if text is None or not text.strip():
        return DEFAULT_RECONNECT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_RECONNECT_S):
        raise UsageError(
            f"{RECONNECT_ENV}={text!r} is not a number of seconds in [0, {MAX_RECONNECT_S:g}]",
            f"set it like {RECONNECT_ENV}=60, or unset it",
        )
    return value


def lock_file() -> Path:
    """The host's session lock; KIT_LOCK_FILE moves it (it must name a file, not a folder)."""
    path = Path(os.environ.get(LOCK_ENV) or DEFAULT_LOCK)
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(
            f"{LOCK_ENV}={str(path)!r} names no file kit can create (a folder, or in a "
            "missing one)",
            f"point {LOCK_ENV} at a file path in an existing folder, or unset it",
        )
    return path


def check_environment() -> None:
    """Every variable, checked up front."""
    reconnect_seconds()
    lock_file()
