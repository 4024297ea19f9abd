"""Progress events (toolkit.progress) and their terminal face (toolkit.terminal)."""

from __future__ import annotations

import io
import threading

from toolkit import progress
from toolkit.progress import Phase, ProgressEvent, counted
from toolkit.terminal import TerminalBars


def test_a_phase_emits_its_start_throttled_steps_and_its_end(monkeypatch):
    clock = iter(x * 0.04 for x in range(1000))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    events: list[ProgressEvent] = []
    phase = Phase(events.append, progress.APPLY, "applying", "objects", total=10)
    for _ in range(10):
        phase.advance()
    phase.close()
    assert events[0].done == 0 and not events[0].finished
    middle = [e.done for e in events[1:-1]]
    assert any(0 < d < 10 for d in middle)  # values strictly between start and end
    assert len(middle) < 10  # throttled: not one event per step
    assert (events[-1].done, events[-1].total, events[-1].finished) == (10, 10, True)
    assert events[-1].rate > 0 and events[-1].fraction == 1.0


def test_a_counter_learns_its_total_at_the_end():
    events: list[ProgressEvent] = []
    assert list(counted(iter("abc"), events.append, progress.READ_LDAP, "reading", "x")) == [
        "a",
        "b",
        "c",
    ]
    assert events[0].total is None and (events[-1].done, events[-1].total) == (3, 3)


def test_nobody_listening_counts_nothing():
    items = ["a"]
    assert counted(items, None, progress.READ_SCIM, "reading", "x") is items
    phase = Phase(None, progress.PLAN, "planning", "objects")
    phase.advance(5)
    assert phase.done == 0


def test_events_from_many_threads_are_counted_once_each():
    events: list[ProgressEvent] = []
    phase = Phase(events.append, progress.APPLY, "applying", "objects", total=4000)
    threads = [
        threading.Thread(target=lambda: [phase.advance() for _ in range(1000)]) for _ in "abcd"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.close()
    assert events[-1].done == 4000


def test_terminal_bars_draw_a_bar_per_label_and_nothing_for_empty_work():
    stream = io.StringIO()
    bars = TerminalBars(stream)
    Phase(bars, progress.APPLY, "applying", "objects", total=0).close()
    assert stream.getvalue() == ""
    with Phase(bars, progress.APPLY, "applying", "objects", total=3) as phase:
        phase.advance(3)
    with Phase(bars, progress.READ_LDAP, "reading LDAP (users)", "entries") as phase:
        phase.advance(7)
    text = stream.getvalue().replace("\r", "\n")
    assert "applying: 100%" in text and "3/3" in text
    assert "reading LDAP (users): 7 entries [" in text
