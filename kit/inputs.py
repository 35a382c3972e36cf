"""Files a person hands kit (profiles, topologies, CA bundles), read safely: a regular file (a
FIFO would block forever, a folder is no file), of bounded size, decoded as UTF-8; every way it
can fail is one UsageError that names the option, the file and the fix."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from kit.errors import KitError, UsageError

MAX_TEXT_BYTES = 4 * 2**20


def stat_of(path: Path, option: str) -> os.stat_result | None:
    """What is at a path a person gave (None: nothing); a path the system cannot even look up
    (too long, a loop of links, no permission) is refused in one line."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UsageError(
            f"{option} {str(path)[:120]!r}: {exc.strerror}", f"give {option} a usable path"
        ) from None


def read_text_file(path: Path, option: str, hint: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    try:
        info = path.stat()  # follows links: a link to a regular file is a regular file
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise UsageError(f"{option} {path} is {what}", hint)
        if info.st_size > max_bytes:
            raise UsageError(
                f"{option} {path} is {info.st_size} bytes, more than the {max_bytes} kit reads",
                hint,
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {exc.strerror}", hint) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{option} {path} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})", hint
        ) from None


def check_output_file(path: Path, option: str) -> None:
    """A file kit is about to write after long work: refused now if it cannot be written
    there (a folder, a missing folder, somewhere read-only)."""
    hint = f"give {option} a file path in a writable folder"
    info = stat_of(path, option)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{option} {path} is a folder", hint)
    folder = path.parent if str(path.parent) else Path(".")
    found = stat_of(folder, option)
    if found is None or not stat.S_ISDIR(found.st_mode):
        raise UsageError(f"{option} {path}: folder {folder} does not exist", hint)
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path} is not writable", hint)
    probe_file(folder, f"{option} {path}", hint)


def probe_file(folder: Path, what: str, hint: str) -> None:
    """Create and remove a small file in ``folder``: permissions can say yes where the
    filesystem says no (/proc, a read-only mount), and only writing there tells."""
    probe = folder / f".kit-write-probe-{os.getpid()}"
    try:
        with probe.open("xb") as handle:
            handle.write(b"kit")
    except FileExistsError:
        pass  # our own, from a moment ago
    except OSError as exc:
        raise UsageError(f"{what} cannot be written: {exc.strerror or exc}", hint) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def write_text(path: Path, text: str, option: str) -> None:
    """Write a file an option named (checked up front by ``check_output_file``)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KitError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def prepare_folder(path: Path, option: str) -> Path:
    """A folder kit will write into, made now and a file written and removed in it, so a path
    that cannot hold files (read-only, /proc, a file's name) is refused before any work."""
    hint = f"give {option} a folder kit can create and write"
    info = stat_of(path, option)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{option} {path} is a file, not a folder", hint)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path} cannot be made: {exc.strerror or exc}", hint) from None
    probe_file(path, f"{option} {path}", hint)
    return path
