"""One kit session at a time per host: pinned runs that overlap measure each other."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from kit.errors import UsageError
from kit.settings import lock_file


def check_lock(allow_concurrent: bool = False) -> None:
    """The lock file can be made (or opened) where it lives: refused before any engine is
    asked, not when the first run is about to start."""
    if allow_concurrent:
        return
    path = lock_file()
    try:
        path.open("a+", encoding="utf-8").close()
    except PermissionError:
        if not path.is_file():
            raise UsageError(
                f"the session lock {path} cannot be created: permission denied",
                "point KIT_LOCK_FILE at a file in a writable folder",
            ) from None
    except OSError as exc:
        raise UsageError(
            f"the session lock {path} cannot be created: {exc.strerror or exc}",
            "point KIT_LOCK_FILE at a file in a writable folder",
        ) from None


@contextlib.contextmanager
def session_lock(path: Path | None = None, *, allow_concurrent: bool = False) -> Iterator[None]:
    """Hold the host's session lock for the block; UsageError naming the holder if taken.

    An flock is released by the kernel when its holder dies, so a crash leaves no stale lock.
    """
    if allow_concurrent:
        yield
        return
    path = path or lock_file()  # KIT_LOCK_FILE moves it (tests give each test its own)
    try:
        handle = path.open("a+", encoding="utf-8")
    except PermissionError:  # another user's lock file: flock works on a read-only handle too
        handle = path.open(encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(
                f"another kit session is running on this host ({holder}); its pinned runs "
                "would disturb this one's",
                "wait for it to finish, or pass --allow-concurrent",
            ) from None
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
        yield
    finally:
        handle.close()
