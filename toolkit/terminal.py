"""Progress events drawn as terminal bars (tqdm) on stderr: the CLI's face of toolkit.progress.

stderr, never stdout, which `--json` owns. A bar per label; a phase of unknown length is a
counter ("reading LDAP (users): 41200 entries [00:09, 4521.3 entries/s]").
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from toolkit.progress import ProgressEvent


class TerminalBars:
    """A progress listener that draws a tqdm bar per label."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            bar = self._bars.get(event.label)
            if bar is None:
                if event.total == 0:
                    return  # nothing is to be done: no bar at all
                bar = self._bars[event.label] = self._bar(event)
            if event.total is not None and bar.total != event.total and not event.finished:
                bar.total = event.total
            bar.update(event.done - bar.n)
            if event.finished:
                bar.close()
                del self._bars[event.label]

    def _bar(self, event: ProgressEvent) -> Any:
        from tqdm import tqdm

        unit = event.unit if event.total is not None else f" {event.unit}"
        return tqdm(total=event.total, unit=unit, desc=event.label, file=self.stream)


def terminal_bars() -> TerminalBars | None:
    """Bars when stderr is a terminal; None (nothing counted) otherwise."""
    return TerminalBars() if sys.stderr.isatty() else None
