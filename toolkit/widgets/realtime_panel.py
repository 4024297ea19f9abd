"""The realtime panel: set the start point, run until idle, start and stop in the background,
and the status (started, cursor, lag, counters, failures) as `scimsync status` shows it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd

from toolkit.config import Config
from toolkit.ldap.changes import describe_cursor
from toolkit.sync import realtime, startpoint
from toolkit.widgets.common import Log, View, error_text, fitted, table_html
from toolkit.widgets.progress import ProgressView

STARTPOINTS = [
    ("end of the change feed", "end"),
    ("beginning of the change feed", "beginning"),
    ("change number", "change-number"),
    ("rewind by a duration (2h30m)", "rewind"),
    ("time (RFC 3339)", "time"),
]


def status_frame(status: realtime.RealtimeStatus) -> pd.DataFrame:
    """A pipe's realtime status as a two-column table (failures listed apart)."""
    facts = status.facts()
    return pd.DataFrame({"value": [value for _, value in facts]}, index=[n for n, _ in facts])


class RealtimePanel(View):
    """Headless: `set_button.click()`, `run_button.click()`, `refresh_button.click()`, ..."""

    def __init__(self, config: Config, pipe_name: str | None = None):
        self.config = config
        self.pipe_name = config.pipe(pipe_name).name
        self.status: realtime.RealtimeStatus | None = None
        self.stats: realtime.Stats | None = None
        self.cursor: str | None = None
        self.error: str | None = None
        self.startpoint = fitted(
            widgets.Dropdown(options=STARTPOINTS, value="end", description="start at")
        )
        self.startpoint_value = fitted(
            widgets.Text(description="value", placeholder="for number, rewind, time")
        )
        self.set_button = fitted(widgets.Button(description="Set start point", icon="map-marker"))
        self.max_changes = fitted(
            widgets.IntText(value=0, description="max changes", tooltip="0: no limit")
        )
        self.run_button = fitted(
            widgets.Button(description="Run until idle", button_style="primary", icon="play")
        )
        self.start_button = fitted(
            widgets.Button(description="Start in background", icon="play-circle")
        )
        self.stop_button = fitted(widgets.Button(description="Stop", icon="stop"))
        self.refresh_button = fitted(widgets.Button(description="Refresh status", icon="refresh"))
        for button, handler in (
            (self.set_button, self._set_startpoint),
            (self.run_button, self._run),
            (self.start_button, self._start),
            (self.stop_button, self._stop),
            (self.refresh_button, self._refresh),
        ):
            button.on_click(handler)
        self.progress = ProgressView()  # a run until idle, as it goes
        self.status_html = widgets.HTML()
        self.failures_html = widgets.HTML()
        self.log = Log()
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>realtime sync of pipe {self.pipe_name}</h3>"),
                widgets.HBox([self.startpoint, self.startpoint_value, self.set_button]),
                widgets.HBox([self.max_changes, self.run_button]),
                self.progress.box,
                widgets.HBox([self.start_button, self.stop_button, self.refresh_button]),
                self.status_html,
                self.failures_html,
                self.log.output,
            ]
        )

    def _guarded(self, action: str, call: Any) -> Any:
        """Run one API call; show (and keep) its error instead of raising into the frontend."""
        self.error = None
        try:
            return call()
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self.error = f"{action}: {error_text(exc)}"
            self.log.say(self.error)
            return None

    def _set_startpoint(self, _button: widgets.Button | None = None) -> None:
        how, value = self.startpoint.value, self.startpoint_value.value.strip() or None
        cursor = self._guarded(
            "set-startpoint",
            lambda: startpoint.set_startpoint(self.config, self.pipe_name, how, value),
        )
        if cursor is not None:
            self.cursor = cursor
            self.log.say(f"start point set ({how}): {describe_cursor(cursor)}")
            self._refresh()

    def _run(self, _button: widgets.Button | None = None) -> None:
        limit = self.max_changes.value or None
        self.run_button.disabled = True
        try:
            stats = self._guarded(
                "realtime-sync",
                lambda: realtime.run_foreground(
                    self.config,
                    self.pipe_name,
                    until_idle=True,
                    max_changes=limit,
                    on_progress=self.progress,
                ),
            )
        finally:
            self.run_button.disabled = False
        if stats is not None:
            self.stats = stats
            done = ", ".join(f"{k} {v}" for k, v in sorted(stats.completed.items())) or "no changes"
            self.log.say(f"realtime sync stopped after {stats.changes} changes ({done})")
            self._refresh()

    def _start(self, _button: widgets.Button | None = None) -> None:
        pid = self._guarded("start", lambda: realtime.start_detached(self.config, self.pipe_name))
        if pid is not None:
            self.log.say(f"realtime sync started in the background (pid {pid})")
            self._refresh()

    def _stop(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        try:
            pid = realtime.stop(self.config, self.pipe_name)
        except Exception as exc:
            self.error = f"stop: {error_text(exc)}"
            self.log.say(self.error)
            return
        self.log.say(f"stopped (pid {pid})" if pid else "it was not running")
        self._refresh()

    def _refresh(self, _button: widgets.Button | None = None) -> None:
        status = self._guarded("status", lambda: realtime.status(self.config, self.pipe_name))
        if status is None:
            return
        self.status = status
        self.status_html.value = table_html(status_frame(status))
        failures = pd.DataFrame(
            [(f.dn, f.error, f.attempts, f.background_retries) for f in status.failures],
            columns=["dn", "error", "attempts", "background_retries"],
        )
        self.failures_html.value = table_html(failures, 50, index=False) if len(failures) else ""
