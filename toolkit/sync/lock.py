"""One writer per pipe: the lock that resync, realtime-sync and notebook applies take.

Two writers on one pipe race each other's plans: two concurrent resyncs each created the
same 40 groups, and the extra copies were never seen again. The lock is an flock(2) on
`<pipe>-writer.lock` in the state folder, which the kernel releases when its holder ends,
even by kill -9. The file names the holder (pid, process start time, boot, command, host,
start) for the refusal's message; a named holder whose process is gone, or whose pid now
belongs to another process (a different start time), is stale and recovered. A named holder
on this host that is still alive refuses too, even where the file lock is not held (a file
system whose locks were lost): the flock and the name are two checks, not one.

A dry run is a reader and takes no lock. One thread may take the lock again while it holds
it (realtime's process, then its loop); another thread of the same process is a second writer.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from toolkit import processes
from toolkit.config.private import private_dir
from toolkit.errors import FatalError
from toolkit.sync.files import PipeFiles

#: How long a refusal waits for the lock's new holder to write its name (seconds).
NAME_WAIT = 1.0

RESYNC = "resync"
REALTIME = "realtime-sync"


def lock_file(state_dir: Path, pipe: str) -> Path:
    return PipeFiles(state_dir, pipe).writer_lock


class PipeLocked(FatalError):
    """Another writer holds the pipe: a failed check (exit 1), like the delete guards."""

    exit_code = 1


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a pipe's lock, as its lock file says."""

    pid: int
    command: str
    host: str
    started_at: str  # ISO 8601 UTC
    start_time: str | None = None  # /proc/<pid>/stat field 22: the pid's process, not a reuse
    boot_id: str | None = None  # start times count from this boot

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on host {self.host}"
        return f"{self.command} (pid {self.pid}{where}, started {self.started_at})"

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> Holder | None:
        """The holder a lock file names; None for an empty or unreadable one."""
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                command=str(data["command"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                start_time=data.get("start_time"),
                boot_id=data.get("boot_id"),
            )
        except (ValueError, KeyError, TypeError):
            return None


def process_start(pid: int) -> str | None:
    """The start time of process `pid` as a lock file holds it (None: gone, or no /proc)."""
    started = processes.start_time(pid)
    return None if started is None else str(started)


def _pid_exists(pid: int) -> bool:
    return processes.alive(pid, None)


def is_stale(
    holder: Holder,
    host: str,
    boot: str | None,
    start_of: Callable[[int], str | None],
    exists: Callable[[int], bool] = _pid_exists,
) -> bool:
    """True when the named holder is surely gone: this host, and its pid is gone, was reused
    (another start time) or belongs to an earlier boot. Another host's holder cannot be
    checked from here: never stale (its flock decides)."""
    if holder.host != host:
        return False
    if holder.boot_id and boot and holder.boot_id != boot:
        return True
    if holder.start_time is not None:
        now = start_of(holder.pid)
        return now is None or now != holder.start_time
    return not exists(holder.pid)


def _me(command: str) -> Holder:
    return Holder(
        pid=os.getpid(),
        command=command,
        host=socket.gethostname(),
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        start_time=process_start(os.getpid()),
        boot_id=processes.boot_id(),
    )


def _stale(holder: Holder) -> bool:
    return is_stale(holder, socket.gethostname(), processes.boot_id(), process_start)


def _surely_alive(holder: Holder) -> bool:
    """Alive, as far as this host can tell: its own process, started when the file says."""
    return holder.host == socket.gethostname() and not _stale(holder)


def _refusal(pipe: str, holder: Holder | None, path: Path) -> PipeLocked:
    if holder is None:
        who = f"another process (its lock file {path} names none yet)"
    else:
        who = holder.describe()
    if holder is not None and holder.command == REALTIME:
        hint = f"stop it first (scimsync realtime-sync stop --pipe-name {pipe})"
    else:
        hint = "wait for it to finish"
    return PipeLocked(f"pipe {pipe} is locked by {who}; {hint}: one writer per pipe ({path})")


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int = 1


_held: dict[Path, _Held] = {}  # the locks this process holds, by file
_guard = threading.Lock()


def _open(path: Path) -> int:
    private_dir(path.parent)  # 0700, and a clear error where .scimsync is a file
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _read(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return Holder.loads(os.read(fd, 4096).decode("utf-8", "replace"))


def _take(fd: int, path: Path, pipe: str) -> None:
    """flock the open lock file, or raise PipeLocked naming the holder (also a live holder
    the file names although its flock is not held)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise FatalError(f"{path}: cannot lock: {exc.strerror}") from None
        # a new holder writes its name just after its flock: give it a moment to, so that
        # the refusal names it rather than "another process" (or a dead one's name)
        named, deadline = _read(fd), time.monotonic() + NAME_WAIT
        while (named is None or _stale(named)) and time.monotonic() < deadline:
            time.sleep(0.02)
            named = _read(fd)
        raise _refusal(pipe, None if named is None or _stale(named) else named, path) from None
    named = _read(fd)
    if named is not None and named.pid != os.getpid() and _surely_alive(named):
        raise _refusal(pipe, named, path)
    # else a holder named here ended without releasing (kill -9): its lock is recovered


def _mine(path: Path, pipe: str) -> _Held | None:
    """This process's hold of the lock; PipeLocked if another thread of it holds it."""
    mine = _held.get(path)
    if mine is not None and mine.thread != threading.get_ident():
        raise _refusal(pipe, _read(mine.fd), path)
    return mine


def acquire(state_dir: Path, pipe: str, command: str) -> Path:
    """Take the pipe's writer lock for this thread, or raise PipeLocked naming the holder.
    Returns the lock file (release() takes it)."""
    path = lock_file(state_dir, pipe).absolute()
    with _guard:
        mine = _mine(path, pipe)
        if mine is not None:
            mine.depth += 1
            return path
        fd = _open(path)
        try:
            _take(fd, path, pipe)
            os.ftruncate(fd, 0)
            os.pwrite(fd, _me(command).dumps().encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)  # releases the flock, if taken
            raise
        _held[path] = _Held(fd, threading.get_ident())
        return path


def release(path: Path) -> None:
    """Give the lock up (the outermost release of the holding thread): the file stays, empty,
    as removing it would let two writers lock two different files."""
    with _guard:
        mine = _held.get(path)
        if mine is None:
            return
        mine.depth -= 1
        if mine.depth:
            return
        del _held[path]
        try:
            os.ftruncate(mine.fd, 0)
        finally:
            os.close(mine.fd)


@contextmanager
def writer(state_dir: Path, pipe: str, command: str) -> Iterator[Path]:
    """Hold the pipe's writer lock for the block."""
    path = acquire(state_dir, pipe, command)
    try:
        yield path
    finally:
        release(path)


def check_free(state_dir: Path, pipe: str) -> None:
    """Raise PipeLocked if another writer holds the pipe (before starting one that would
    only be refused once detached). Takes nothing."""
    path = lock_file(state_dir, pipe).absolute()
    with _guard:
        if _mine(path, pipe) is not None:
            return
        fd = _open(path)
        try:
            _take(fd, path, pipe)
        finally:
            os.close(fd)
