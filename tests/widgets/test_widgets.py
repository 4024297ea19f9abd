"""The widgets on a real lab: each button's handler, run by `click()`, changes what it should."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

from tests.support.widget_lab import ldap_connection, scim_user, set_title
from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.sync import realtime
from toolkit.sync.batch import RunOptions, dry_run, resync
from toolkit.widgets import ConfigViewer, PlanExplorer, RealtimePanel, ResyncPanel, SetupWizard

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def ro_lab(tmp_path_factory):
    """A lab that the tests only read: 30 users, 3 groups."""
    folder = tmp_path_factory.mktemp("widgets-lab") / "lab"
    state = lab.up(folder, users=30, groups=3)
    yield state
    lab.down(folder)


@pytest.fixture(scope="module")
def ro_plan(ro_lab):
    return dry_run(load_config(ro_lab.config), RunOptions())


@pytest.fixture
def rw_lab(tmp_path):
    """A lab for one test that writes to it: 20 users, 2 groups."""
    folder = tmp_path / "lab"
    state = lab.up(folder, users=20, groups=2)
    yield state
    lab.down(folder)


def secrets_of(state: lab.LabState) -> list[str]:
    return [p.read_text().strip() for p in (Path(state.folder) / "secrets").iterdir()]


def shown_json(value: str) -> object:
    """The JSON a <pre> block of a view shows."""
    assert value.startswith("<pre") and value.endswith("</pre>")
    return json.loads(html.unescape(value[value.index(">") + 1 : -6]))


# --- config viewer and setup wizard -------------------------------------------------------------


def test_config_viewer_shows_references_only_and_validates(ro_lab, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(ro_lab.folder, folder, ignore=shutil.ignore_patterns("servers"))
    viewer = ConfigViewer(str(folder / "sync.yaml"))
    servers, yaml = viewer.tab_html("servers"), viewer.tab_html("YAML")
    assert "${file:secrets/scim-token}" in servers and "${file:secrets/ldap-password}" in yaml
    for secret in secrets_of(ro_lab):
        assert all(secret not in child.value for child in viewer.tabs.children)
    classes = viewer.tab_html("classes")
    assert classes.index("users") < classes.index("groups") < classes.index("DEFAULT")

    viewer.validate_button.click()
    assert viewer.problems == [] and "sync.yaml: valid" in viewer.result.value

    text = (
        (folder / "sync.yaml")
        .read_text()
        .replace("    sync-source: lab-source", "    sync-source: nowhere")
    )
    (folder / "sync.yaml").write_text(text)
    viewer.validate_button.click()
    assert len(viewer.problems) == 1
    assert "nowhere" in viewer.problems[0].message and viewer.problems[0].line
    assert "1 problem(s)" in viewer.result.value and "sync.yaml:" in viewer.result.value


def test_setup_wizard_writes_the_config_the_form_describes(ro_lab, tmp_path):
    target = tmp_path / "new" / "sync.yaml"
    defaults = SetupWizard.defaults_from_config(load_config(ro_lab.config))
    wizard = SetupWizard(target, defaults)
    assert wizard.scim_token.value == str(Path(ro_lab.folder) / "secrets" / "scim-token")
    assert wizard.scim_token.layout.display is None and wizard.scim_user.layout.display == "none"

    wizard.preview_button.click()
    assert "Configuration summary" in wizard.summary.value and not target.exists()
    wizard.pipe_name.value = "to-scim"
    wizard.write_button.click()
    assert wizard.error is None, wizard.error
    assert wizard.result.path == target and wizard.log.lines[0] == f"wrote {target}"
    written = load_config(target)
    assert list(written.sync_pipes) == ["to-scim"]
    assert written.external_servers["scim"].oauth_token.reference == (
        f"${{file:{Path(ro_lab.folder) / 'secrets' / 'scim-token'}}}"
    )
    for secret in secrets_of(ro_lab):
        assert secret not in target.read_text() and secret not in wizard.summary.value

    wizard.write_button.click()  # a second time: refused without "overwrite"
    assert "already exists" in wizard.error
    wizard.force.value = True
    wizard.write_button.click()
    assert wizard.error is None


def test_setup_wizard_shows_what_is_wrong_and_writes_nothing(ro_lab, tmp_path):
    target = tmp_path / "sync.yaml"
    wizard = SetupWizard(target, SetupWizard.defaults_from_config(load_config(ro_lab.config)))

    wizard.scim_token.value = ""
    wizard.write_button.click()
    assert "scim-token" in wizard.error

    wizard.scim_token.value = str(tmp_path / "no-such-token")  # cleared: not a file
    assert wizard.scim_token.value == "" and "no such file" in wizard.scim_token.note.value

    wizard.scim_token.value = str(Path(ro_lab.folder) / "secrets" / "scim-token")
    wizard.source_servers.value = "127.0.0.1:notaport"
    wizard.preview_button.click()
    assert "Servers (host:port)" in wizard.error and "notaport" in wizard.error

    wizard.source_servers.value = ro_lab.ldap_url.split("//")[1]
    wizard.scim_url.value = "http://127.0.0.1:9/v2"  # nothing listens on the discard port
    wizard.write_button.click()
    assert wizard.error.startswith("connection test failed")
    assert "SCIM server scim" in wizard.summary.value
    assert not target.exists() and not (tmp_path / "scim-resources.xml").exists()

    wizard.scim_auth.value = "basic"
    assert wizard.scim_user.layout.display is None and wizard.scim_token.layout.display == "none"


# --- plan explorer --------------------------------------------------------------------------------


def test_plan_explorer_filters_rows_and_shows_one_object(ro_plan):
    explorer = PlanExplorer(ro_plan, max_rows=10)
    assert len(explorer.filtered) == 33 and "10 of 33" not in explorer.count.value
    assert list(explorer.situation_filter.options) == ["(all)", "create"]
    assert "showing 10 of 33 rows" in explorer.table.value

    explorer.class_filter.value = "groups"
    assert len(explorer.filtered) == 3 and set(explorer.filtered["class"]) == {"groups"}
    group = explorer.selected
    assert group.class_name == "groups" and group.dn in explorer.diff.value
    assert shown_json(explorer.request.value) == [r.as_dict() for r in group.requests]
    assert "displayName" in explorer.diff.value

    explorer.dn_filter.value = "no-such-entry"
    assert explorer.filtered.empty and explorer.selected is None
    assert "no object selected" in explorer.diff.value

    user = next(r for r in ro_plan.rows if r.class_name == "users")
    assert explorer.select(user.dn) is user and explorer.selected is user
    assert explorer.class_filter.value == "(all)"
    for change in user.changes:
        assert change["attribute"] in explorer.diff.value
    assert ro_plan.desired(user)["userName"] in explorer.records.value
    assert user.source["uid"][0] in explorer.entry.value
    with pytest.raises(KeyError, match="uid=nobody"):
        explorer.select("uid=nobody,ou=people,dc=example,dc=com")


# --- resync panel ---------------------------------------------------------------------------------


def test_resync_panel_applies_exactly_the_previewed_plan(rw_lab):
    config = load_config(rw_lab.config)
    panel = ResyncPanel(config)
    assert panel.confirm_button.disabled
    panel.confirm_button.click()  # click() runs the handler even when disabled
    assert panel.result is None and "no preview yet" in panel.error

    panel.preview_button.click()
    assert panel.error is None and panel.pending == 22 and panel.plan_path.is_file()
    assert not panel.confirm_button.disabled
    assert panel.confirm_button.description == "Apply 22 objects (22 create)"
    panel.confirm_button.click()
    assert panel.error is None
    assert (panel.result.applied.applied, panel.result.applied.failed) == (22, 0)
    bar = panel.progress.bar
    assert bar.value == bar.max == 22 and bar.bar_style == "success"
    # the bar followed the run's phases as events: reads, planning, then the apply
    phases = [(e.phase, e.label, e.done, e.total, e.finished) for e in panel.progress.events]
    assert ("apply", "applying", 22, 22, True) == phases[-1], phases
    assert {p[0] for p in phases} >= {"read-ldap", "read-scim", "plan", "apply"}
    assert "22 / 22 objects" in panel.progress.text.value
    assert panel.confirm_button.disabled and panel.plan is None

    panel.preview_button.click()
    assert panel.pending == 0 and panel.confirm_button.description == "Nothing to apply"

    set_title(rw_lab, "yusuf.leroy0", "Head of Widgets")
    panel.preview_button.click()
    assert panel.confirm_button.description == "Apply 1 object (1 modify)"
    explorer = PlanExplorer(panel.plan)
    explorer.situation_filter.value = "modify"
    assert explorer.selected.dn.startswith("uid=yusuf.leroy0,")
    assert "Head of Widgets" in explorer.diff.value and "PATCH" in explorer.request.value

    set_title(rw_lab, "yusuf.leroy0", "Changed After The Preview")
    panel.confirm_button.click()
    assert panel.result is None and "out of date" in panel.error
    assert panel.confirm_button.disabled  # a new preview is needed
    assert scim_user(rw_lab.config, "yusuf.leroy0")["title"] != "Head of Widgets"


def test_resync_panel_holds_deletes_past_the_guard_until_allowed(rw_lab):
    config = load_config(rw_lab.config)
    resync(config, RunOptions())
    conn = ldap_connection(rw_lab)
    conn.search(f"ou=people,{rw_lab.suffix}", "(objectClass=inetOrgPerson)", attributes=["uid"])
    leavers = sorted(str(e.uid) for e in conn.entries)[:5]
    for uid in leavers:
        conn.delete(f"uid={uid},ou=people,{rw_lab.suffix}")
    conn.unbind()

    panel = ResyncPanel(config)
    panel.preview_button.click()
    assert panel.plan.totals()["delete"] == 5
    assert "exceed max-deletes" in panel.guard.value and "allow deletes" in panel.guard.value
    assert panel.confirm_button.disabled and "exceed max-deletes" in panel.confirm_button.tooltip
    panel.confirm_button.click()
    assert panel.result is None and "exceed max-deletes" in panel.error

    panel.allow_deletes.value = True
    assert not panel.confirm_button.disabled
    panel.confirm_button.click()
    assert panel.error is None and panel.result.applied.failed == 0
    assert all(scim_user(rw_lab.config, uid) is None for uid in leavers)


# --- realtime panel -------------------------------------------------------------------------------


def test_realtime_panel_sets_the_start_point_runs_and_shows_status(rw_lab):
    config = load_config(rw_lab.config)
    panel = RealtimePanel(config)
    panel.startpoint.value = "time"
    panel.startpoint_value.value = "not a time"
    panel.set_button.click()
    assert panel.error.startswith("set-startpoint:") and panel.cursor is None

    panel.startpoint.value = "end"
    panel.set_button.click()
    assert panel.error is None and panel.cursor
    assert panel.status.cursor == panel.cursor and ">stopped</td>" in panel.status_html.value
    assert panel.cursor not in panel.status_html.value  # a position for people, not its state

    resync(config, RunOptions())
    set_title(rw_lab, "yusuf.leroy0", "Realtime Tester")
    panel.run_button.click()
    assert panel.error is None and panel.stats.changes >= 1
    last = panel.progress.events[-1]
    assert (last.phase, last.done, last.finished) == ("realtime", panel.stats.changes, True)
    assert scim_user(rw_lab.config, "yusuf.leroy0")["title"] == "Realtime Tester"
    assert panel.status.links == 22 and not panel.status.started

    try:
        panel.start_button.click()
        assert panel.error is None and panel.status.started and panel.status.pid
        pid = panel.status.pid
        panel.stop_button.click()
        assert panel.error is None and not panel.status.started
        assert f"stopped (pid {pid})" in panel.log.lines
    finally:
        realtime.stop(config, None)  # by its pid file, if the test failed while it ran


def test_resync_panel_confirms_a_saved_plan_only_while_it_is_current(rw_lab, tmp_path):
    config = load_config(rw_lab.config)
    saved = dry_run(config, RunOptions()).save(tmp_path / "plan.json")
    panel = ResyncPanel(config)
    assert panel.use_saved_plan(tmp_path / "missing.json") is None and panel.error
    assert panel.use_saved_plan(saved) is not None and panel.error is None
    assert panel.confirm_button.description == "Apply 22 objects (22 create)"
    set_title(rw_lab, "yusuf.leroy0", "Changed After The Dry Run")
    panel.confirm_button.click()
    assert panel.result is None and "out of date" in panel.error
    assert scim_user(rw_lab.config, "yusuf.leroy0") is None

    saved = dry_run(config, RunOptions()).save(tmp_path / "plan.json")
    panel.use_saved_plan(saved)
    panel.confirm_button.click()
    assert panel.error is None and panel.result.applied.applied == 22
    assert scim_user(rw_lab.config, "yusuf.leroy0")["title"] == "Changed After The Dry Run"
