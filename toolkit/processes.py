"""Whether the process that wrote a record (a run, a pid file) is still the one running.

A PID alone is not enough: after a crash the number may be reused by another process. The
process's start time (Linux: /proc/PID/stat, in clock ticks since boot) tells the two apart.
Where it cannot be read, liveness falls back to the PID alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessId:
    pid: int
    started: int | None  # start time in clock ticks since boot; None where unknown


def start_time(pid: int) -> int | None:
    """The start time of process `pid`, or None if it is gone, a zombie or unknowable here."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "PID (COMMAND) STATE ..." where COMMAND may hold spaces and parentheses
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has ended
        return None
    return int(fields[19])


def boot_id() -> str | None:
    """This boot's id: start times count from a boot, so they compare only within one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def this_process() -> ProcessId:
    return ProcessId(os.getpid(), start_time(os.getpid()))


def alive(pid: int | None, started: int | None) -> bool:
    """True if process `pid` runs and, when `started` is known, is the one started then."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        now = start_time(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
