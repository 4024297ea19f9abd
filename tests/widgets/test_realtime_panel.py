"""The realtime panel's recent changes and rates: from the sync log, refreshed while a
background realtime process runs against a real lab."""

from __future__ import annotations

import time

import pytest

from tests.support.widget_lab import set_title
from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.plan.charts import activity
from toolkit.sync import realtime
from toolkit.sync.batch import RunOptions, resync
from toolkit.widgets import RealtimePanel
from toolkit.widgets.realtime_panel import rates_table, recent_changes

pytestmark = pytest.mark.timeout(180)


def test_recent_changes_newest_first_with_operation_attributes_and_outcome():
    lines = [
        {"time": "2026-12-06T10:00:00.000Z", "type": "change-detected", "dn": "uid=a", "change_number": 1},
        {"time": "2026-12-06T10:00:00.500Z", "type": "change-applied", "kind": "modify", "dn": "uid=a",
         "change_number": 1, "situation": "modify", "changes": [{"attribute": "title"}, {"attribute": "title"}]},
        {"time": "2026-12-06T10:00:01.000Z", "type": "change-detected", "dn": "uid=b", "change_number": 2},
        {"time": "2026-12-06T10:00:03.000Z", "type": "change-failed-detailed", "kind": "add", "dn": "uid=b",
         "change_number": 2, "detail": "409 Conflict\nmore"},
        {"time": "2026-12-06T10:00:12.000Z", "type": "no-change-needed", "kind": "modify", "dn": "uid=c"},
    ]  # fmt: skip
    recent = recent_changes(lines)
    assert list(recent["dn"]) == ["uid=c", "uid=b", "uid=a"]
    a = recent.iloc[2]
    assert (a["operation"], a["attributes"], a["outcome"]) == (
        "modify",
        "title",
        "applied (modify)",
    )
    assert (recent.iloc[1]["outcome"], recent.iloc[1]["detail"]) == ("FAILED", "409 Conflict")
    assert len(recent_changes(lines, limit=1)) == 1

    rates = rates_table(activity(lines, "10s"))
    assert list(rates["from (UTC)"]) == ["10:00:00", "10:00:10"]
    assert list(rates["changes"]) == [2, 1] and list(rates["applied"]) == [1, 0]
    assert list(rates["failed"]) == [1, 0] and list(rates["per second"]) == [0.2, 0.1]
    assert rates["lag p50 (s)"].iloc[0] == 1.25  # 0.5 s and 2 s from detection


def test_panel_shows_changes_of_a_background_sync_as_they_happen(tmp_path):
    state = lab.up(tmp_path / "lab", users=10, groups=1)
    config = load_config(state.config)
    panel = RealtimePanel(config, refresh_seconds=0.5)
    try:
        assert resync(config, RunOptions()).applied.failed == 0
        panel.start_button.click()  # ticks "refresh while running"
        assert panel.error is None and panel.auto_refresh.value and panel.status.started
        set_title(state, "yusuf.leroy0", "Watched Live")
        set_title(state, "giulia.nakamura1", "Also Watched")
        deadline = time.monotonic() + 60
        applied: set[str] = set()
        while time.monotonic() < deadline:  # the panel's own thread refreshes it
            shown = panel.recent
            applied = set(shown[shown["outcome"].str.startswith("applied")]["dn"])
            if len(applied) >= 2:
                break
            time.sleep(0.3)
        assert {dn.split(",")[0] for dn in applied} >= {"uid=yusuf.leroy0", "uid=giulia.nakamura1"}
        row = panel.recent[panel.recent["dn"].str.startswith("uid=yusuf.leroy0")].iloc[0]
        assert (row["operation"], row["attributes"]) == ("modify", "title")
        assert "Watched Live" not in panel.recent_html.value  # attribute names, never values
        assert "uid=yusuf.leroy0" in panel.recent_html.value
        assert panel.rates["applied"].sum() >= 2 and len(panel.samples) >= 2
        assert panel.chart.value.startswith("<img")  # throughput and lag, drawn
        assert "changes waiting" in panel.lag_html.value
    finally:
        panel.auto_refresh.value = False
        realtime.stop(config, None)
        lab.down(tmp_path / "lab")
