"""kit's one error hierarchy. The CLI catches KitError once, prints one line, exits non-zero.

Every message says what went wrong *and* what to do about it.
"""

from __future__ import annotations


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


class RunFailed(KitError):
    """One or more runs of a session failed (the others are kept)."""
