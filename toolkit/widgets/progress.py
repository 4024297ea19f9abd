"""Progress events drawn as an ipywidgets bar that moves: the widgets' face of toolkit.progress.

One bar and one line of text: the phase's label, done out of total (or a count while the
total is unknown), and the rate. The widget models are written from whichever thread emits
(the Applier's workers among them); the kernel sends each change to the browser as it comes,
at most every toolkit.progress.INTERVAL per phase.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from toolkit.progress import ProgressEvent
from toolkit.widgets.common import View


class ProgressView(View):
    """A progress listener (call it with events) and its bar."""

    def __init__(self) -> None:
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, description="idle", layout=widgets.Layout(width="30em")
        )
        self.bar.style.description_width = "initial"
        self.text = widgets.HTML()
        self.events: list[ProgressEvent] = []  # the last event of each phase seen, in order
        self.box = widgets.HBox([self.bar, self.text])

    def __call__(self, event: ProgressEvent) -> None:
        if self.events and self.events[-1].label == event.label:
            self.events[-1] = event
        else:
            self.events.append(event)
        total = event.total if event.total else max(1, event.done)
        if self.bar.max != total:
            self.bar.max = total
        self.bar.value = min(event.done, total) if event.total or event.finished else 0
        self.bar.description = event.label
        self.bar.bar_style = "success" if event.finished else "info"
        count = f"{event.done:,} / {event.total:,}" if event.total else f"{event.done:,}"
        rate = f" · {event.rate:,.0f} {event.unit}/s" if event.rate else ""
        self.text.value = html.escape(f"{count} {event.unit}{rate}")

    def show(self, label: str, done: int, total: int, style: str) -> None:
        """A state of the view's own (idle, failed, done) rather than a phase's event."""
        self.bar.max = max(1, total)
        self.bar.value = min(done, self.bar.max)
        self.bar.description = label
        self.bar.bar_style = style
        if style == "danger" or not done:
            self.text.value = ""
