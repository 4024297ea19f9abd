"""Private files: the one owner of the modes of what scimsync writes.

The state folder (`.scimsync/`) holds each resource's form, logs with DNs and values, and
failures: it is created 0700 and every file in it 0600, as are plans and executed notebooks.
The user's umask still applies on top, so a stricter umask gives stricter files. Folders and
files left 0755/0644 by earlier versions are tightened when they are opened again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

from toolkit.errors import FatalError

#: The state folder beside the config file.
STATE_DIR_NAME = ".scimsync"
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, tighten_existing: bool = True) -> Path:
    """scimsync's own folder `path` (the state folder, its secrets), created 0700 (parents as
    usual), or tightened if it exists. A folder the user named (the parent of an --output
    file) is created as usual instead, never tightened."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise FatalError(
            f"{path}: is a file, not a folder; scimsync keeps its state in this folder "
            "(move the file away)"
        ) from None
    except OSError as exc:
        raise FatalError(f"{path}: cannot create the state folder: {exc.strerror}") from None
    if tighten_existing:
        tighten(path)
    return path


def state_folder(path: Path) -> Path:
    """The folder of the state database, created 0700; a `.scimsync` folder left 0755 by an
    earlier version is tightened (a database put elsewhere, a test's, leaves its folder be)."""
    return private_dir(path, tighten_existing=path.name == STATE_DIR_NAME)


def tighten_state_files(path: Path) -> None:
    """The files of a `.scimsync` folder left 0644 by an earlier version, made 0600; called
    once the database in it is known to be scimsync's."""
    if path.name != STATE_DIR_NAME:
        return
    for child in path.iterdir():
        if child.is_file() and not child.is_symlink():
            tighten(child)


def open_private(path: Path, mode: str = "w", encoding: str = "utf-8") -> IO[Any]:
    """`open(path, mode)` for writing ("w", "a", "wb" or "ab"), the file created 0600 and an
    existing one tightened to 0600. FatalError names the path when it cannot be written."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise FatalError(f"{path}: cannot write: {exc.strerror}") from None
    _tighten_fd(fd)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)


def create_private(path: Path) -> Path:
    """Make `path` exist as a private file (its content kept) before a writer that opens it
    by name (pandas, papermill, SQLite) fills it: truncating a file keeps its mode."""
    with open_private(path, "ab"):
        pass
    return path


def tighten(path: Path) -> None:
    """Take group and other bits off an existing file or folder (no-op if none, or missing)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
    except FileNotFoundError:
        pass
    except PermissionError:  # another user's file: not ours to change
        pass


def _tighten_fd(fd: int) -> None:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        try:
            os.fchmod(fd, mode & FILE_MODE)
        except PermissionError:
            pass
