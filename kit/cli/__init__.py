"""kit's command line: options -> spec -> core -> print. Thin on purpose: each module holds one
group of commands (measure, sessions, hosts, images); `common` holds what they share."""

from __future__ import annotations

import signal
import sys

from kit.cli import hosts, images, measure, sessions  # noqa: F401  (importing registers them)
from kit.cli.common import app, err
from kit.errors import KitError

__all__ = ["app", "main"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a session the way Ctrl-C does: cleanly


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KitError as exc:
        err.print(f"kit: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
