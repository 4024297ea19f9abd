"""Progress as typed events: what the long parts of a run report while they work.

The reads of each side, planning, applying and realtime sync emit `ProgressEvent`s to a
listener that the face gives them: the CLI draws terminal bars (toolkit.terminal), the
widgets draw ipywidgets bars (toolkit.widgets.progress), a test records them. The engine
decides nothing about how, or whether, progress is shown: with no listener nothing is
counted at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Events of one phase come at most this often (seconds), besides its first and last.
INTERVAL = 0.1

READ_LDAP = "read-ldap"
READ_SCIM = "read-scim"
PLAN = "plan"
APPLY = "apply"
REALTIME = "realtime"


@dataclass(frozen=True)
class ProgressEvent:
    phase: str  # READ_LDAP, READ_SCIM, PLAN, APPLY, REALTIME
    label: str  # what a bar is titled: "reading LDAP (users)"
    done: int
    total: int | None  # None: a counter whose end is known only when it comes
    rate: float  # per second since the phase began
    unit: str  # "entries", "resources", "objects", "changes"
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


Listener = Callable[[ProgressEvent], None]


class Phase:
    """One phase's counter: an event when it begins, at most every INTERVAL seconds while it
    advances (from any thread), and one when it is closed."""

    def __init__(
        self,
        listener: Listener | None,
        phase: str,
        label: str,
        unit: str,
        total: int | None = None,
    ):
        self._listener, self.phase, self.label, self.unit = listener, phase, label, unit
        self.total, self.done = total, 0
        self._started = self._last = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False
        self._emit(False)

    def advance(self, n: int = 1) -> None:
        if self._listener is None:
            return
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < INTERVAL:
                return
            self._last = now
        self._emit(False)

    def close(self, done: int | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if done is not None:
                self.done = done
        self._emit(True)

    def _emit(self, finished: bool) -> None:
        if self._listener is None:
            return
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = self.done if finished and self.total is None else self.total
        self._listener(
            ProgressEvent(self.phase, self.label, self.done, total, rate, self.unit, finished)
        )

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def counted(
    items: Iterable[T], listener: Listener | None, phase: str, label: str, unit: str
) -> Iterable[T]:
    """`items`, counted as they come (a read whose length is known at its end); `items`
    itself when nobody listens."""
    if listener is None:
        return items
    return _counting(items, Phase(listener, phase, label, unit))


def _counting(items: Iterable[T], counter: Phase) -> Iterator[T]:
    try:
        for item in items:
            counter.advance()
            yield item
    finally:
        counter.close()
