"""kit's command line: options -> spec -> core -> print. Thin on purpose: each module holds one
group of commands (measure, sessions, hosts, images); `common` holds what they share."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from kit import __version__
from kit.cli import (  # noqa: F401  (importing registers them)
    bundles,
    cluster,
    hosts,
    images,
    measure,
    sessions,
    sweep,
)
from kit.cli.common import app, err
from kit.errors import KitError

__all__ = ["app", "main"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a session the way Ctrl-C does: cleanly


def crash_log(exc: BaseException) -> Path:
    """Where an unexpected error's traceback goes: one file per crash, beside the temp files."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(tempfile.gettempdir()) / f"kit-error-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(exc))
    path.write_text(f"kit {__version__}\nargv: {sys.argv!r}\n\n{text}", encoding="utf-8")
    return path


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KitError as exc:
        err.print(f"kit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # every one that gets here is a bug in kit: say where it is
        try:
            where = f"the traceback is in {crash_log(exc)}"
        except OSError:
            where = "no traceback file could be written"
        err.print(
            f"kit: internal error: {type(exc).__name__}: {str(exc)[:200]} ({where}; please "
            "report it)",
            markup=False,
        )
        sys.exit(1)
