"""Realtime's delete guard (toolkit.plan.guards.DeleteBudget through realtime-sync): deletes
past max-deletes within delete-guard-window are held back, said so, kept for the operator and
applied only with --allow-deletes (real slapd and scim2-server)."""

from __future__ import annotations

from tests.support.realtime_env import make_rt, read_store
from toolkit.sync import synclog


def _failures(rt):
    return read_store(rt, lambda store: store.failures("ldap-to-scim"))


def test_realtime_holds_deletes_past_the_guard_until_allowed(slapd, scim_server, tmp_path):
    # 40 users: max-deletes 10% allows 4 deletes of the users class per window
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=40, groups=2)
    before = rt.users()
    gone = [p["dn"][0] for p in rt.loners()[:10]]
    for dn in gone:
        rt.ldap.delete(dn)

    held = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
    assert held.code == 1  # a scheduler sees that something was held back
    assert "6 deletes held back by the delete guard" in held.err
    assert len(rt.users()) == len(before) - 4  # the first 4 went through
    failures = _failures(rt)
    assert len(failures) == 6 and {f.kind for f in failures} == {"held-delete"}
    assert failures[0].error.startswith(
        "held back by the delete guard: class users had 4 deletes in the last 1 h, "
        "max-deletes 10% allows 4 of the 40 resources it managed"
    )
    logged = [x for x in rt.log() if x["type"] == synclog.CHANGE_FAILED]
    assert len(logged) == 6 and all("held back by the delete guard" in x["detail"] for x in logged)
    status = rt.cli_json("status")
    assert len(status["failures"]) == 6

    # a restart counts the window's deletes already applied: still held, nothing retried
    again = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
    assert again.code == 0 and len(rt.users()) == len(before) - 4
    assert len(_failures(rt)) == 6

    rt.cli_ok("realtime-sync", "start", "--foreground", "--until-idle", "--allow-deletes")
    assert len(rt.users()) == len(before) - 10
    assert _failures(rt) == []
    totals = rt.dry_run_totals()  # realtime ends where a resync would
    assert sum(totals.values()) == totals["unchanged"], totals


def test_held_deletes_applied_by_a_resync_are_forgotten(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=40, groups=2)
    for person in rt.loners()[:6]:
        rt.ldap.delete(person["dn"][0])
    assert rt.cli("realtime-sync", "start", "--foreground", "--until-idle").code == 1
    assert len(_failures(rt)) == 2
    assert rt.cli_json("resync", "--allow-deletes")["failed"] == 0
    rt.cli_ok("realtime-sync", "start", "--foreground", "--until-idle")
    assert _failures(rt) == []


def test_status_shows_the_cursor_as_a_position_and_the_held_deletes(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=40, groups=2)
    for person in rt.loners()[:5]:
        rt.ldap.delete(person["dn"][0])
    assert rt.cli("realtime-sync", "start", "--foreground", "--until-idle").code == 1
    data = rt.cli_json("status")
    assert data["position"].startswith("after the change of ")
    assert data["position"].endswith(" UTC") and data["cursor"] not in data["position"]
    text = rt.cli_ok("status").out
    assert f"  position      {data['position']}\n" in text
    assert data["cursor"] not in text  # never the raw state
    assert "  failures      1\n" in text and "held back by the delete guard" in text
