"""realtime-sync from a real Samba AD DC through DirSync to the real scim2-server: the first
resync, then each kind of change carried by realtime-sync, a group of 3,000 members, and a
kill -9 with a restart from the persisted cookie."""

from __future__ import annotations

import signal
import time

import ldap3
import pytest

from tests.support.ad_env import ELSEWHERE, GROUPS, PEOPLE, AdRt, make_ad_rt
from tests.support.realtime_env import wait_for
from toolkit.lab.samba import ENABLED


@pytest.fixture
def rt(samba, scim_server, tmp_path):
    rt = make_ad_rt(samba, scim_server, tmp_path / "pipe")
    yield rt
    rt.close()


def test_first_resync_takes_users_groups_and_objectguid(rt: AdRt):
    users, groups = rt.users(), rt.groups()
    people = [e for e in rt.entries if "user" in e["objectClass"]]
    assert set(users) == {p["sAMAccountName"] for p in people}
    some = people[1]
    user = users[some["sAMAccountName"]]
    assert user["externalId"] == rt.guid(some["dn"][0])
    assert user["emails"][0]["value"] == some["mail"]
    assert user["active"] is True
    assert set(groups) == {
        e["description"] and e["dn"][0].split(",")[0][3:]
        for e in rt.entries
        if "group" in e["objectClass"]
    }


def test_realtime_carries_create_modify_rename_disable(rt: AdRt):
    dn = rt.add_user("newbie", mail="newbie@example.test", department="Sales")
    rt.sync()
    user = rt.users()["newbie"]
    assert user["externalId"] == rt.guid(dn)
    assert user["emails"][0]["value"] == "newbie@example.test"
    assert user[ENTERPRISE]["department"] == "Sales"

    rt.replace(dn, mail=["changed@example.test"], telephoneNumber=["+1 512 555 0100"])
    rt.sync()
    user = rt.users()["newbie"]
    assert user["emails"][0]["value"] == "changed@example.test"
    assert user["phoneNumbers"][0]["value"] == "tel:+1-512-555-0100"

    rt.ldap.modify_dn(dn, "CN=newbie-renamed")  # the SCIM resource stays, its DN link moves
    rt.replace(f"CN=newbie-renamed,{PEOPLE}", displayName=["Renamed Newbie"])
    rt.sync()
    user = rt.users()["newbie"]
    assert user["displayName"] == "Renamed Newbie"
    assert user["id"] == rt.users()["newbie"]["id"]

    rt.replace(f"CN=newbie-renamed,{PEOPLE}", userAccountControl=["546"])  # ACCOUNTDISABLE
    rt.sync()
    assert rt.users()["newbie"]["active"] is False


def test_realtime_moves_out_of_scope_and_deletes_from_groups(rt: AdRt):
    groups = [e for e in rt.entries if "group" in e["objectClass"] and e.get("member")]
    group = groups[0]
    member_dn = group["member"][0]
    name = member_dn.split(",")[0][3:]
    group_name = group["dn"][0].split(",")[0][3:]
    assert name in rt.members_of(group_name)
    other = next(e for e in rt.entries if "user" in e["objectClass"] and not _referenced(rt, e))
    other_name = other["sAMAccountName"]

    rt.ldap.modify_dn(other["dn"][0], f"CN={other_name}", new_superior=ELSEWHERE)
    rt.sync()
    assert other_name not in rt.users()

    rt.ldap.delete(member_dn)  # AD drops it from its groups without a change of the groups
    rt.sync()
    assert name not in rt.users()
    assert name not in rt.members_of(group_name)
    assert all(not m.startswith("dangling:") for m in rt.members_of(group_name))
    users = rt.users()
    reports = [
        e["sAMAccountName"]
        for e in rt.entries
        if e.get("manager") == member_dn and e["sAMAccountName"] in users
    ]
    assert reports, "the deleted user managed nobody: the test proves nothing on managers"
    for report in reports:  # AD dropped their manager silently too
        assert "manager" not in users[report].get(ENTERPRISE, {}), users[report]


def _referenced(rt: AdRt, entry) -> bool:
    dn = entry["dn"][0].lower()
    return any(
        dn in [m.lower() for m in e.get("member", [])] or str(e.get("manager", "")).lower() == dn
        for e in rt.entries
    )


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_member_add_and_remove_in_a_group_of_3000(samba, scim_server, tmp_path):
    rt = make_ad_rt(samba, scim_server, tmp_path / "pipe", users=2, groups=0, resync=False)
    try:
        names = [f"bulk{i:04d}" for i in range(3001)]
        for name in names:
            rt.ldap.add(
                f"CN={name},{PEOPLE}",
                ["top", "person", "organizationalPerson", "user"],
                {"sAMAccountName": name, "sn": name, "userAccountControl": ENABLED},
            )
        big = f"CN=big,{GROUPS}"
        rt.ldap.add(
            big,
            ["top", "group"],
            {"sAMAccountName": "big", "member": [f"CN={n},{PEOPLE}" for n in names[:3000]]},
        )
        rt.resync()
        rt.set_startpoint("--end-of-changelog")
        assert len(rt.members_of("big")) == 3000

        rt.ldap.modify(
            big,
            {
                "member": [
                    (ldap3.MODIFY_ADD, [f"CN={names[3000]},{PEOPLE}"]),
                    (ldap3.MODIFY_DELETE, [f"CN={names[0]},{PEOPLE}"]),
                ]
            },
        )
        changes = rt.feed_changes(rt.cursor())
        assert [(c.kind, c.changed_attributes) for c in changes] == [("modify", ("member",))]
        assert changes[0].raw["member;range=1-1"] and changes[0].raw["member;range=0-0"]
        rt.sync()
        members = rt.members_of("big")
        assert len(members) == 3000
        assert names[3000] in members and names[0] not in members
    finally:
        rt.close()


def test_kill_9_during_realtime_then_restart_from_the_cookie_loses_nothing(rt: AdRt):
    people = [e for e in rt.entries if "user" in e["objectClass"] and not _referenced(rt, e)]
    people = people[:6]
    start = rt.cursor()
    proc = rt.spawn("realtime-sync", "start", "--foreground")
    try:
        for round_ in range(3):
            for i, person in enumerate(people):
                rt.replace(person["dn"][0], title=[f"round {round_} #{i}"])
            time.sleep(0.4)
        # the process has applied (and committed) some of it by now
        wait_for(lambda: rt.cursor() != start, 30, "a cookie committed by realtime-sync")
        rt.replace(people[0]["dn"][0], title=["just before the kill"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9
    rt.replace(people[1]["dn"][0], title=["while it was down"])
    rt.add_user("latecomer", mail="late@example.test")
    rt.ldap.delete(people[2]["dn"][0])

    rt.sync()  # restarts from the persisted cookie
    users = rt.users()
    assert users[people[0]["sAMAccountName"]]["title"] == "just before the kill"
    assert users[people[1]["sAMAccountName"]]["title"] == "while it was down"
    assert people[2]["sAMAccountName"] not in users
    assert users["latecomer"]["emails"][0]["value"] == "late@example.test"
    for i, person in enumerate(people[3:], start=3):
        assert users[person["sAMAccountName"]]["title"] == f"round 2 #{i}"
    assert rt.feed_changes(rt.cursor()) == []  # nothing left behind the cookie


def test_set_startpoint_beginning_replays_a_full_dirsync_and_time_is_refused(rt: AdRt):
    refused = rt.cli("realtime-sync", "set-startpoint", "--startpoint-rewind", "1h")
    assert refused.code == 2 and "DirSync cookie holds no time" in refused.err
    assert "Traceback" not in refused.err
    before = rt.normalized()
    rt.set_startpoint("--beginning-of-changelog")
    rt.sync()  # every object again: found in sync, nothing to write
    assert rt.normalized() == before
    applied = [line for line in rt.log() if line["type"] == "change-applied"]
    assert applied == []


def test_usnchanged_carries_changes_too(samba, scim_server, tmp_path):
    """The fallback detector end to end (the admin can read the tombstones)."""
    rt = make_ad_rt(samba, scim_server, tmp_path / "pipe", change_detector="usnchanged")
    try:
        group = next(e for e in rt.entries if "group" in e["objectClass"] and e.get("member"))
        group_name = group["dn"][0].split(",")[0][3:]
        member_dn = group["member"][0]
        name = member_dn.split(",")[0][3:]
        dn = rt.add_user("polled", mail="polled@example.test")
        rt.replace(dn, title=["Polled"])
        rt.ldap.delete(member_dn)
        rt.sync()
        users = rt.users()
        assert users["polled"]["title"] == "Polled"
        assert users["polled"]["externalId"] == rt.guid(dn)
        assert name not in users
        members = rt.members_of(group_name)
        assert name not in members and not [m for m in members if m.startswith("dangling:")]
    finally:
        rt.close()
