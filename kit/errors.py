"""kit's one error hierarchy. The CLI catches KitError once, prints one line, exits non-zero.

Every message says what went wrong *and* what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KitError(Exception):
    """Base of every error kit reports to the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(KitError):
    """Bad input, refused before anything runs."""

    exit_code = 2


class ConfigError(UsageError):
    """A profiles file that cannot be used."""


class EngineUnavailable(KitError):
    """No container engine answers."""

    exit_code = 2


class ImageNotFound(KitError):
    exit_code = 2


class BuildError(KitError):
    """An image build failed; the message quotes the build log's last lines."""


class ParseError(KitError):
    """A workload's output held no throughput; the message quotes the output's tail."""


class Interrupted(KitError):
    """Ctrl-C or SIGTERM: what finished is kept, the running container is gone."""

    exit_code = 130


class HostBusy(KitError):
    """Run after run was disturbed by other work: the session stopped rather than spend its
    plan on runs that cannot count (what finished is kept)."""


class RunFailed(KitError):
    """One or more runs of a session failed (the others are kept)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean X? "`` when one of the choices is close to the word, else ``""``: the
    start of a hint, for a typo."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close and close[0] != word else ""
