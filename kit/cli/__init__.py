"""kit's command line: options -> spec -> core -> print. Thin on purpose: each module holds one
group of commands (measure, sessions, hosts, images); `common` holds what they share."""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import typer

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
from kit.cli.help import use_kit_help
from kit.errors import KitError, did_you_mean
from kit.reporting.fit import fit

__all__ = ["app", "main"]

use_kit_help(app)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a session the way Ctrl-C does: cleanly


def crash_log(exc: BaseException) -> Path:
    """Where an unexpected error's traceback goes: one file per crash, beside the temp files."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(tempfile.gettempdir()) / f"kit-error-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(exc))
    path.write_text(f"kit {__version__}\nargv: {sys.argv!r}\n\n{text}", encoding="utf-8")
    return path


def usage_line(exc: typer.TyperException) -> str:
    """A usage error the framework found (a bad option value, an unknown option), as kit's one
    line: what is wrong, a near name where there is one, and where the options are listed."""
    message = exc.format_message().replace("Value error, ", "")
    hint = ""
    given = re.search(r"'([^']*)' is not one of (.*)", message)
    if given:
        hint = did_you_mean(given.group(1), re.findall(r"'([^']*)'", given.group(2)))
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "kit"
    return f"{message} ({hint}see `{command} --help`)"


def error_line(exc: KitError) -> str:
    """How kit says an error: one sentence (what went wrong, then what to do), fitted to kit's
    width."""
    return fit(f"kit: error: {exc}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        if exc.format_message():  # none: the framework showed the help instead
            err.print(f"kit: error: {usage_line(exc)}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C outside a session (a session says what it kept itself)
        err.print("Aborted!", markup=False)
        sys.exit(1)
    except KitError as exc:
        err.print(error_line(exc), markup=False)
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
    sys.exit(code if isinstance(code, int) else 0)
