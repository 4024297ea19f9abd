"""Incremental LDAP reads through 389-DS's retro changelog (change-detector `changelog`).

389-DS has no entryCSN and stamps modifyTimestamp in whole seconds, so a second write to an
entry in the second of the last read leaves all its stamps as they were: the changelog is
what names it. After each kind of change the incremental plan equals the `--full-read` plan.
Real 389-DS and scim2-server.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import ldap3
import pytest

from tests.support.plan_env import PEOPLE, SUFFIX, Env, dn_of, uid_of
from tests.sync.test_reads import assert_same_plan, modes, plans
from toolkit.lab import sampledata
from toolkit.sync import reads

SENTINEL = 1  # entries re-read by the whole-second rule in each class (see `ds`)


class DsEnv(Env):
    """The plan_env pipe with 389-DS as its source, the retro changelog as its feed."""

    ldap_type = "389-ds"
    change_detector = "changelog"


@pytest.fixture
def ds(dirsrv, scim_server, tmp_path, monkeypatch):
    """As test_reads' `env`, on 389-DS: synced, the last dry run's snapshots left behind."""
    monkeypatch.setattr(reads, "SAFETY", timedelta(0))
    folder = tmp_path / "pipe"
    folder.mkdir()
    env = DsEnv(dirsrv, scim_server, folder, users=40, groups=3)
    env.entries = list(sampledata.generate(40, 3, suffix=SUFFIX))
    for entry in env.entries:  # LDAP adds: 389-DS has no slapadd of ours
        attrs = {k: v for k, v in entry.items() if k not in ("dn", "objectClass")}
        env.ldap.add(entry["dn"][0], entry["objectClass"], attrs)
    # 389-DS stamps whole seconds and has no entryCSN: entries stamped in the newest second of
    # the last read are read again each time (they may have changed unseen). A sentinel of each
    # class written a second after the load is alone in that second, so each incremental read
    # re-reads exactly one entry per class besides what changed.
    time.sleep(1.1)
    for sentinel in (env.people()[-1], env.sample_groups()[-1]):
        env.ldap.modify(dn_of(sentinel), {"description": [(ldap3.MODIFY_REPLACE, ["sentinel"])]})
    env.write_config()
    resync = env.cli_json("resync")
    time.sleep(2.5)  # the server's Date past the resync's writes (see test_reads' `env`)
    assert resync["failed"] == 0 and {r["mode"] for r in resync["reads"]} == {"full"}
    after = env.cli_json("dry-run")
    assert {(r["side"], r["mode"]) for r in after["reads"]} == {
        ("ldap", "incremental"),
        ("scim", "incremental"),
    }
    assert {r["name"]: r["changed"] for r in after["reads"] if r["side"] == "ldap"} == {
        "users": SENTINEL,
        "groups": SENTINEL,
    }
    yield env
    env.close()


def ldap_note(plan: dict[str, Any], name: str = "users") -> dict[str, Any]:
    note = modes(plan)[("ldap", name)]
    assert note["mode"] == "incremental", note
    assert note["why"] == "by the change feed, modifyTimestamp and entryCSN", note
    return note


def modify_timestamp(env: Env, dn: str) -> str:
    env.ldap.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["modifyTimestamp"])
    return str(env.ldap.entries[0].entry_attributes_as_dict["modifyTimestamp"][0])


def test_389_modify(ds):
    person = ds.people()[3]
    ds.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Night Owl"])]})
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    note = ldap_note(incremental)
    assert note["changed"] == SENTINEL + 1 and note["count"] == 40
    assert [r["situation"] for r in incremental["rows"] if r["dn"] == dn_of(person)] == ["modify"]


def test_389_rename(ds):
    person = ds.people()[4]
    ds.ldap.modify_dn(dn_of(person), "uid=renamed.person")
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    assert f"uid=renamed.person,{PEOPLE}" in {r["dn"] for r in incremental["rows"]}
    assert ldap_note(incremental)["changed"] == SENTINEL + 1


def test_389_move_to_a_new_superior_and_out_of_scope(ds):
    person = ds.people()[5]
    ds.ldap.add(f"ou=elsewhere,{PEOPLE}", ["organizationalUnit"], {"ou": "elsewhere"})
    ds.ldap.modify_dn(dn_of(person), f"uid={uid_of(person)}", new_superior=f"ou=elsewhere,{PEOPLE}")
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    moved = f"uid={uid_of(person)},ou=elsewhere,{PEOPLE}"
    assert moved.lower() in {(r["dn"] or "").lower() for r in incremental["rows"]}
    assert ldap_note(incremental)["changed"] == SENTINEL + 1
    ds.ldap.add(f"ou=outside,{SUFFIX}", ["organizationalUnit"], {"ou": "outside"})
    ds.ldap.modify_dn(moved, f"uid={uid_of(person)}", new_superior=f"ou=outside,{SUFFIX}")
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    assert ldap_note(incremental)["removed"] == 1


def test_389_delete(ds):
    gone = ds.loner()
    ds.ldap.delete(dn_of(gone))
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    note = ldap_note(incremental)
    assert note["removed"] == 1 and note["changed"] == SENTINEL and note["count"] == 39
    assert [r["situation"] for r in incremental["rows"] if r["dn"] == dn_of(gone)] == ["delete"]


def test_389_add(ds):
    ds.ldap.add(
        f"uid=new.hire,{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": "new.hire", "cn": "New Hire", "sn": "Hire", "givenName": "New"},
    )
    group = dn_of(ds.sample_groups()[0])
    ds.ldap.modify(group, {"member": [(ldap3.MODIFY_ADD, [f"uid=new.hire,{PEOPLE}"])]})
    incremental, full = plans(ds)
    assert_same_plan(incremental, full)
    assert ldap_note(incremental)["changed"] == SENTINEL + 1
    assert ldap_note(incremental, "groups")["changed"] == SENTINEL + 1
    assert [r["situation"] for r in incremental["rows"] if r["dn"] == f"uid=new.hire,{PEOPLE}"] == [
        "create"
    ]


@pytest.mark.parametrize(
    ("feed", "window"),
    [(True, False), (False, True), (False, False)],
    ids=["changelog-alone", "window-alone", "neither-control"],
)
def test_389_second_modify_in_the_second_of_the_read(ds, monkeypatch, feed, window):
    """Modify, read, modify again, all in one second: the entry's modifyTimestamp does not
    move. Either rule alone re-reads it: the changelog naming it (the whole-second window
    rule turned off), or the window (entries stamped in the newest second of the last read,
    the feed's answer emptied). The control, with neither, shows the test can tell: the
    second write is then missed."""
    if not window:
        monkeypatch.setattr(reads, "_generalized_minus", lambda stamp, by: None)
    if not feed:
        monkeypatch.setattr(reads._Feed, "changed_since", lambda self, cursor: reads._Changed())
    dn = dn_of(ds.people()[6])
    original = reads.LdapReads.read
    for attempt in range(5):
        stamps: list[str] = []

        def read_then_modify(self, name, *args, _stamps=stamps, _n=attempt):
            entries = original(self, name, *args)
            if name == "users":  # the entry read with its first value, then written again
                assert [e["title"] for e in entries if e["dn"] == dn] == [[f"First {_n}"]]
                ds.ldap.modify(dn, {"title": [(ldap3.MODIFY_REPLACE, [f"Second {_n}"])]})
                _stamps.append(modify_timestamp(ds, dn))
            return entries

        time.sleep(1 - time.time() % 1 + 0.02)  # at the start of a second: both writes in it
        ds.ldap.modify(dn, {"title": [(ldap3.MODIFY_REPLACE, [f"First {attempt}"])]})
        stamps.append(modify_timestamp(ds, dn))
        with monkeypatch.context() as patch:
            patch.setattr(reads.LdapReads, "read", read_then_modify)
            run = {(r["side"], r["name"]): r for r in ds.cli_json("dry-run")["reads"]}
        assert run[("ldap", "users")]["mode"] == "incremental", run
        if stamps[0] == stamps[1]:
            break
    assert stamps[0] == stamps[1], f"no two writes within one second in 5 tries: {stamps}"
    incremental, full = plans(ds)
    row = json.dumps([r for r in incremental["rows"] if r["dn"] == dn])
    assert f"Second {attempt}" in json.dumps([r for r in full["rows"] if r["dn"] == dn])
    if feed or window:
        assert_same_plan(incremental, full)
        assert ldap_note(incremental)["changed"] == 1
        assert f"Second {attempt}" in row
    else:  # missed: the second write's value is not in the plan, the first one's is
        assert ldap_note(incremental)["changed"] == 0
        assert f"First {attempt}" in row and f"Second {attempt}" not in row


# --- Active Directory (a real Samba AD DC) ---------------------------------------------------


def test_ad_incremental_plans_equal_full_read_plans(samba, scim_server, tmp_path, monkeypatch):
    """On AD the unique id is objectGUID, which entries carry as text and Windows AD takes in
    a filter only as bytes (Samba takes the text too, so the filters sent are checked): the
    entries an incremental read re-reads by id are found, not taken for gone. After a
    modify, a rename, a disable and a delete the plan is the full read's."""
    from tests.support.ad_env import make_ad_rt
    from toolkit.ldap.source import LdapSource

    monkeypatch.setattr(reads, "SAFETY", timedelta(0))
    by_guid: list[str] = []
    iterate = LdapSource.iter_entries

    def recording(self, base_dn, search_filter="(objectClass=*)", *args, **kwargs):
        if "objectguid=" in search_filter.lower():
            by_guid.append(search_filter)
        return iterate(self, base_dn, search_filter, *args, **kwargs)

    monkeypatch.setattr(LdapSource, "iter_entries", recording)
    rt = make_ad_rt(samba, scim_server, tmp_path / "pipe")
    try:
        time.sleep(1.1)  # past the resync's second: AD stamps whole seconds
        first = {(n["side"], n["name"]): n for n in rt.cli_json("dry-run")["reads"]}
        users = next(name for side, name in first if side == "ldap" and "user" in name.lower())
        people = [e for e in rt.entries if "user" in e["objectClass"]]
        referenced = {m.lower() for e in rt.entries for m in e.get("member", [])}
        loner = next(p for p in people[4:] if p["dn"][0].lower() not in referenced)
        rt.replace(people[1]["dn"][0], mail=["changed@example.test"])
        rt.replace(people[2]["dn"][0], userAccountControl=["546"])  # disabled
        rt.ldap.modify_dn(people[3]["dn"][0], "CN=renamed-one")
        rt.ldap.delete(loner["dn"][0])
        incremental, full = plans(rt)
        assert_same_plan(incremental, full)
        note = modes(incremental)[("ldap", users)]
        assert note["mode"] == "incremental" and note["changed"] >= 3, note
        assert note["removed"] == 1 and note["count"] == len(people) - 1, note
        changed = {r["dn"]: r["situation"] for r in incremental["rows"]}
        assert changed[people[1]["dn"][0]] == "modify"
        assert changed[loner["dn"][0]] == "delete"
        assert by_guid, "no entry was re-read by objectGUID"
        guid = rt.guid(people[1]["dn"][0])
        assert all(re.search(r"\(objectguid=(\\[0-9a-f]{2}){16}\)", f, re.I) for f in by_guid)
        assert not any(guid in f.lower() for f in by_guid)
    finally:
        rt.close()
