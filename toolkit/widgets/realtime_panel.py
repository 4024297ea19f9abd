"""The realtime panel: set the start point, run until idle, start and stop in the background,
the status (started, cursor, lag, counters, failures) as `scimsync status` shows it, the
recent changes from the sync log (DN, operation, attributes, outcome), and lag and rate over
time; with "refresh while running" ticked, all of it is read again every few seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import pandas as pd

from toolkit.config import Config
from toolkit.ldap.changes import describe_cursor
from toolkit.plan import charts
from toolkit.sync import realtime, startpoint, synclog
from toolkit.sync.files import pipe_files
from toolkit.widgets.common import Log, View, error_text, fitted, table_html
from toolkit.widgets.progress import ProgressView

STARTPOINTS = [
    ("end of the change feed", "end"),
    ("beginning of the change feed", "beginning"),
    ("change number", "change-number"),
    ("rewind by a duration (2h30m)", "rewind"),
    ("time (RFC 3339)", "time"),
]


OUTCOME_WORDS = {
    synclog.CHANGE_APPLIED: "applied",
    synclog.CHANGE_FAILED: "FAILED",
    synclog.DROPPED_OUT_OF_SCOPE: "out of scope",
    synclog.DROPPED_OP_TYPE: "operation not synchronized",
    synclog.NO_CHANGE_NEEDED: "no change needed",
}
RECENT_COLUMNS = ["time", "dn", "operation", "attributes", "outcome", "detail"]
RATE_COLUMNS = [
    "from (UTC)",
    "changes",
    "applied",
    "failed",
    "per second",
    "lag p50 (s)",
    "lag max (s)",
]
#: the rate table's and chart's time bucket
BUCKET = "10s"


def recent_changes(lines: list[dict[str, Any]], limit: int = 50) -> pd.DataFrame:
    """The last `limit` outcomes of the sync log, newest first: when, which entry, the LDAP
    operation, the attributes it changed on the SCIM side, and what came of it."""
    rows = []
    for line in reversed(lines):
        if line.get("type") not in OUTCOME_WORDS:
            continue
        attributes = [c.get("attribute") for c in line.get("changes") or [] if isinstance(c, dict)]
        rows.append(
            {
                "time": line.get("time", "").replace("T", " ").removesuffix("Z"),
                "dn": line.get("dn", ""),
                "operation": line.get("kind") or line.get("situation") or "",
                "attributes": ", ".join(dict.fromkeys(a for a in attributes if a)),
                "outcome": OUTCOME_WORDS[line["type"]]
                + (f" ({line['situation']})" if line.get("situation") else ""),
                "detail": (line.get("detail") or "").splitlines()[0] if line.get("detail") else "",
            }
        )
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=RECENT_COLUMNS)


def rates_table(activity: pd.DataFrame) -> pd.DataFrame:
    """toolkit.plan.charts.activity (outcomes per time bucket of the sync log) as the panel's
    table: how many, applied, failed, per second, and the lag from the directory's change
    (else its detection) to its outcome."""
    if activity.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    out = pd.DataFrame(
        {
            "from (UTC)": activity["time"].dt.strftime("%H:%M:%S"),
            "changes": activity["done"].astype(int),
            "applied": activity["applied"].astype(int),
            "failed": activity["failed"].astype(int),
            "per second": activity["rate"].round(1),
            "lag p50 (s)": activity["lag_median"].round(2),
            "lag max (s)": activity["lag_max"].round(2),
        }
    )
    return out[out["changes"] > 0][RATE_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class LagSample:
    """The status as one refresh saw it: the lag and rate over time while the panel watches."""

    at: float
    lag_changes: int | None
    lag_seconds: float | None
    ops_per_second: float
    changes_processed: int


def lag_frame(samples: list[LagSample]) -> pd.DataFrame:
    """One line per sample."""

    def known(value: float | None, digits: int = 1) -> object:
        return "unknown" if value is None else round(value, digits)

    return pd.DataFrame(
        {
            "time (UTC)": [time.strftime("%H:%M:%S", time.gmtime(s.at)) for s in samples],
            "changes waiting": [known(s.lag_changes) for s in samples],
            "oldest waiting (s)": [known(s.lag_seconds) for s in samples],
            "ops per second": [round(s.ops_per_second, 1) for s in samples],
            "changes processed": [s.changes_processed for s in samples],
        }
    )


def status_frame(status: realtime.RealtimeStatus) -> pd.DataFrame:
    """A pipe's realtime status as a two-column table (failures listed apart)."""
    facts = status.facts()
    return pd.DataFrame({"value": [value for _, value in facts]}, index=[n for n, _ in facts])


class RealtimePanel(View):
    """Headless: `set_button.click()`, `run_button.click()`, `refresh_button.click()`, ..."""

    def __init__(self, config: Config, pipe_name: str | None = None, refresh_seconds: float = 3.0):
        self.config = config
        self.pipe_name = config.pipe(pipe_name).name
        self.log_path = pipe_files(config, config.pipe(pipe_name)).log
        self.refresh_seconds = refresh_seconds
        self.samples: list[LagSample] = []  # one per refresh: lag and rate over time
        self.recent = pd.DataFrame(columns=RECENT_COLUMNS)
        self._watching: threading.Event | None = None
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
        self.auto_refresh = fitted(
            widgets.Checkbox(value=False, description="refresh while running")
        )
        self.auto_refresh.observe(self._auto_changed, names="value")
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
        self.recent_html = widgets.HTML()
        self.rates_html = widgets.HTML()
        self.lag_html = widgets.HTML()
        # throughput and lag over time, drawn from the sync log (an <img>: an HTML widget,
        # not an Output, whose display a background refresh could not replace safely)
        self.chart = widgets.HTML()
        self.log = Log()
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>realtime sync of pipe {self.pipe_name}</h3>"),
                widgets.HBox([self.startpoint, self.startpoint_value, self.set_button]),
                widgets.HBox([self.max_changes, self.run_button]),
                self.progress.box,
                widgets.HBox(
                    [self.start_button, self.stop_button, self.refresh_button, self.auto_refresh]
                ),
                self.status_html,
                self.failures_html,
                widgets.HTML("<b>Recent changes</b> (newest first, from the sync log)"),
                self.recent_html,
                widgets.HTML("<b>Rate over time</b> (outcomes per 10 s)"),
                self.rates_html,
                widgets.HTML("<b>Lag over time</b> (one line per refresh)"),
                self.lag_html,
                self.chart,
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
            self.auto_refresh.value = True  # watch it work

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
        self.samples.append(
            LagSample(
                time.time(),
                status.lag_changes,
                status.lag_seconds,
                status.ops_per_second,
                status.changes_processed,
            )
        )
        self.samples = self.samples[-500:]
        self._show_log()

    def _show_log(self) -> None:
        lines = synclog.tail_log(self.log_path)
        activity = charts.activity(lines, BUCKET)
        rates, recent = rates_table(activity), recent_changes(lines)
        self.chart.value = charts.realtime(activity).img_html() if len(rates) else ""
        self.rates_html.value = table_html(rates.tail(30), 30, index=False)
        self.lag_html.value = table_html(lag_frame(self.samples[-30:]), 30, index=False)
        self.recent_html.value = table_html(recent, 50, index=False)
        # the frames last: a reader that sees them sees every view drawn from the same lines
        self.rates, self.recent = rates, recent

    # --- refreshed while running -----------------------------------------------------------

    def _auto_changed(self, _change: object = None) -> None:
        if self.auto_refresh.value and self._watching is None:
            stop = self._watching = threading.Event()
            threading.Thread(
                target=self._watch, args=(stop,), name="scimsync-realtime-panel", daemon=True
            ).start()
        elif not self.auto_refresh.value and self._watching is not None:
            self._watching.set()
            self._watching = None

    def _watch(self, stop: threading.Event) -> None:
        """Refresh every few seconds until unticked; after the process stops, once more."""
        while not stop.wait(self.refresh_seconds):
            self._refresh()
            if self.status is not None and not self.status.started:
                self.log.say("realtime sync is not running: stopped refreshing")
                self.auto_refresh.value = False
                return
