"""The sync log: one JSON object per line, with PingDataSync's message types.

change-detected, change-applied, change-failed-detailed, dropped-out-of-scope,
dropped-op-type-not-synchronized, no-change-needed. Each line carries the pipe, the change's
position in the feed and the entry's DN, so the log accounts for every change read.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from toolkit.config.private import open_private, private_dir

CHANGE_DETECTED = "change-detected"
CHANGE_APPLIED = "change-applied"
CHANGE_FAILED = "change-failed-detailed"
DROPPED_OUT_OF_SCOPE = "dropped-out-of-scope"
DROPPED_OP_TYPE = "dropped-op-type-not-synchronized"
NO_CHANGE_NEEDED = "no-change-needed"
OUTCOMES = (CHANGE_APPLIED, CHANGE_FAILED, DROPPED_OUT_OF_SCOPE, DROPPED_OP_TYPE, NO_CHANGE_NEEDED)


# one encoder for every line: json.dumps with options builds a new one per call
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _stamp(now: float) -> str:
    """`now` (read once: two readings would disagree across a second's boundary) in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


class SyncLog:
    """Appends lines to `path`; thread-safe; each line is flushed as it is written."""

    def __init__(self, path: Path, pipe: str):
        self.path = path
        self.pipe = pipe
        private_dir(path.parent)  # the sync log lives in the state folder
        self._file = open_private(path, "a")
        self._lock = threading.Lock()

    def write(self, msg_type: str, **fields: Any) -> None:
        record = {
            "time": _stamp(time.time()),
            "pipe": self.pipe,
            "type": msg_type,
            **{k: v for k, v in fields.items() if v is not None},
        }
        line = _ENCODE(record)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def write_many(self, msg_type: str, items: list[dict[str, Any]]) -> None:
        """One line per item, all of the same type and time, in one write (a batch's
        change-detected lines)."""
        if not items:
            return
        stamp = _stamp(time.time())
        lines = [
            _ENCODE(
                {
                    "time": stamp,
                    "pipe": self.pipe,
                    "type": msg_type,
                    **{k: v for k, v in fields.items() if v is not None},
                }
            )
            for fields in items
        ]
        with self._lock:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def tail_log(path: Path, max_lines: int = 2000, chunk: int = 1 << 16) -> list[dict[str, Any]]:
    """The last `max_lines` lines of the log, read from its end (a long-running pipe's log
    grows without bound; a panel refreshing every few seconds reads only what it shows). A
    line being written (no newline yet) is left for the next read."""
    if not path.exists():
        return []
    with open(path, "rb") as log:
        log.seek(0, 2)
        end = position = log.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= max_lines:
            position = max(0, position - chunk)
            log.seek(position)
            data = log.read(end - position)
    lines = data.split(b"\n")
    if position > 0:
        lines = lines[1:]  # the first is cut
    complete = lines[:-1]  # the last is empty, or a line still being written
    out = []
    for line in complete[-max_lines:]:
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn line (a process killed mid-write): not the panel's to judge
    return out
