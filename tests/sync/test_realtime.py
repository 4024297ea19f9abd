"""realtime-sync on both change feeds (slapd's access log, 389-DS's retro changelog) against
the real scim2-server: every change type, renames and moves, scope changes, group
membership, op types not synchronized, exclusion classes, and the sync log's account.
"""

from __future__ import annotations

import json

import ldap3
import pytest

from tests.support.faults import FaultProxy
from tests.support.realtime_env import (
    OUT,
    PEOPLE,
    SUFFIX,
    Rt,
    default_classes,
    make_rt,
    position,
)
from toolkit.plan.model import OUT_OF_SCOPE, UNCHANGED
from toolkit.sync import synclog
from toolkit.sync.batch import RunOptions, dry_run
from toolkit.sync.state import StateStore

FEEDS = ["slapd", "dirsrv"]


@pytest.fixture(params=FEEDS)
def feed(request):
    """(feed name, the directory fixture of that feed)."""
    return request.param, request.getfixturevalue(request.param)


@pytest.fixture
def rt(feed, scim_server, tmp_path):
    name, server = feed
    rt = make_rt(name, server, scim_server, tmp_path / "pipe")
    yield rt
    rt.close()


def outcome_types(rt: Rt, start: str) -> list[tuple[str, str, str]]:
    """(kind, dn, outcome) of every change after `start`, checking each has exactly one."""
    outcomes = rt.outcomes()
    out = []
    for change in rt.feed_changes(start):
        logged = outcomes.get(position(change))
        assert logged and len(logged) == 1, (change.kind, change.dn, logged)
        out.append((change.kind, change.dn.lower(), logged[0]))
    return out


def link_of(rt: Rt, entry_uuid: str):
    store = StateStore(rt.state_dir / "state.db")
    try:
        return store.link("ldap-to-scim", entry_uuid)
    finally:
        store.close()


def test_every_change_type(rt):
    start = rt.cursor()
    before = rt.users()
    modified, renamed, moved, deleted, leaver = (p["dn"][0] for p in rt.loners()[:5])
    uid = {dn: dn.split(",")[0].split("=")[1] for dn in (modified, renamed, moved, deleted, leaver)}
    uuid_renamed, uuid_moved = rt.entry_uuid(renamed), rt.entry_uuid(moved)
    staff, former = f"ou=staff,{PEOPLE}", f"ou=former,{SUFFIX}"

    added = rt.add_user("newcomer", mail="newcomer@example.com", title="Intern")
    rt.replace(modified, title=["Chief Tester"])
    rt.ldap.modify_dn(renamed, f"uid={uid[renamed]}-renamed")
    rt.ldap.add(staff, "organizationalUnit", {"ou": "staff"})
    rt.ldap.modify_dn(moved, f"uid={uid[moved]}", new_superior=staff)
    rt.ldap.delete(deleted)
    rt.ldap.add(former, "organizationalUnit", {"ou": "former"})
    rt.ldap.modify_dn(leaver, f"uid={uid[leaver]}", new_superior=former)

    result = rt.sync()
    assert "stopped after 8 changes" in result.out, result.out

    users = rt.users()
    assert users["newcomer"]["externalId"] == rt.entry_uuid(added)
    assert users["newcomer"]["title"] == "Intern"
    assert users[uid[modified]]["title"] == "Chief Tester"
    assert users[uid[modified]]["id"] == before[uid[modified]]["id"]
    # a rename keeps the resource (same id) and the link, which follows the new DN
    assert uid[renamed] not in users
    assert users[uid[renamed] + "-renamed"]["id"] == before[uid[renamed]]["id"]
    link = link_of(rt, uuid_renamed)
    assert link.scim_id == before[uid[renamed]]["id"]
    assert link.dn.lower() == f"uid={uid[renamed]}-renamed,{PEOPLE}"
    # a move within the class's base keeps the resource; nothing mapped changed, but the link
    # follows the entry (deletes and references find entries by DN through it)
    assert users[uid[moved]]["id"] == before[uid[moved]]["id"]
    assert link_of(rt, uuid_moved).dn.lower() == f"uid={uid[moved]},{staff}"
    # a delete, and a move out of every class's base, delete the resource
    assert uid[deleted] not in users and uid[leaver] not in users
    assert len(users) == len(before) - 1

    logged = outcome_types(rt, start)
    assert logged == [
        ("add", added.lower(), synclog.CHANGE_APPLIED),
        ("modify", modified.lower(), synclog.CHANGE_APPLIED),
        ("modrdn", renamed.lower(), synclog.CHANGE_APPLIED),
        ("add", staff.lower(), synclog.DROPPED_OUT_OF_SCOPE),
        ("modrdn", moved.lower(), synclog.NO_CHANGE_NEEDED),
        ("delete", deleted.lower(), synclog.CHANGE_APPLIED),
        ("add", former.lower(), synclog.DROPPED_OUT_OF_SCOPE),
        ("modrdn", leaver.lower(), synclog.CHANGE_APPLIED),
    ]
    detected = [line for line in rt.log() if line["type"] == synclog.CHANGE_DETECTED]
    assert len(detected) == 8
    # nothing left to do: the target is what a resync would make it
    totals = rt.dry_run_totals()
    assert totals["unchanged"] == len(users) + len(rt.sample_groups())
    assert sum(totals.values()) == totals["unchanged"], totals


@pytest.mark.parametrize("policy", ["delete", "deactivate"])
def test_scope_changes_follow_the_include_filter(feed, scim_server, tmp_path, policy):
    name, server = feed
    rt = make_rt(name, server, scim_server, tmp_path / "pipe", delete_policy=policy)
    start = rt.cursor()
    before = rt.users()
    leaving = rt.loners()[0]
    dn, uid = leaving["dn"][0], leaving["uid"][0]
    outsider = rt.add_user("outsider", description=OUT)

    rt.replace(dn, description=[OUT])  # out of the users class: delete or deactivate
    rt.sync()
    users = rt.users()
    assert "outsider" not in users
    if policy == "delete":
        assert uid not in users
    else:
        assert users[uid]["active"] is False and users[uid]["id"] == before[uid]["id"]
    logged = outcome_types(rt, start)
    assert logged == [
        ("add", outsider.lower(), synclog.DROPPED_OUT_OF_SCOPE),
        ("modify", dn.lower(), synclog.CHANGE_APPLIED),
    ]
    left = [line for line in rt.log() if line["type"] == synclog.CHANGE_APPLIED][-1]
    assert left["situation"] == "delete" and "moved out of scope" in left["detail"]

    middle = rt.cursor()
    rt.ldap.modify(dn, {"description": [(ldap3.MODIFY_DELETE, [])]})  # back in: created again
    rt.ldap.modify(outsider, {"description": [(ldap3.MODIFY_DELETE, [])]})  # in: created
    rt.sync()
    users = rt.users()
    assert users["outsider"]["externalId"] == rt.entry_uuid(outsider)
    assert users[uid].get("active") is not False  # no nsAccountLock: no value for active
    if policy == "delete":
        assert users[uid]["id"] != before[uid]["id"]
    else:
        assert users[uid]["id"] == before[uid]["id"]
    situations = [
        line["situation"]
        for line in rt.log()
        if line["type"] == synclog.CHANGE_APPLIED and line.get("kind") == "modify"
    ][1:]
    # two entries of one batch run in parallel: their lines may come in either order
    assert sorted(situations) == sorted(
        ["create", "create"] if policy == "delete" else ["modify", "create"]
    )
    assert [o for _, _, o in outcome_types(rt, middle)] == [synclog.CHANGE_APPLIED] * 2
    totals = rt.dry_run_totals()
    assert sum(totals.values()) == totals["unchanged"], totals


@pytest.fixture
def recorded(feed, scim_server, tmp_path):
    """A pipe whose SCIM requests pass through a proxy that records them (no faults armed)."""
    name, server = feed
    proxy = FaultProxy("127.0.0.1", scim_server.port).start()
    rt = make_rt(name, server, scim_server, tmp_path / "pipe", scim_url=proxy.url())
    yield rt, proxy
    rt.close()
    proxy.stop()


def test_group_membership_changes_are_patches(recorded):
    rt, proxy = recorded
    group = max(rt.sample_groups(), key=lambda g: len(g["member"]))
    gdn, gname = group["dn"][0], group["cn"][0]
    members = {m.lower() for m in group["member"]}
    joiner = next(p["dn"][0] for p in rt.people() if p["dn"][0].lower() not in members)
    leaver = group["member"][0]
    ids = {u["userName"]: u["id"] for u in rt.users().values()}
    proxy.clear()

    # one joins and one leaves; a user created in the same batch joins too
    newcomer = rt.add_user("newcomer")
    rt.ldap.modify(
        gdn,
        {"member": [(ldap3.MODIFY_ADD, [joiner, newcomer]), (ldap3.MODIFY_DELETE, [leaver])]},
    )
    rt.sync()
    ids["newcomer"] = rt.users()["newcomer"]["id"]
    group_id = rt.groups()[gname]["id"]
    writes = [s for s in proxy.seen if s.method != "GET" and "/Groups" in s.path]
    assert writes and all(s.method == "PATCH" for s in writes), writes
    assert all(s.path.endswith(f"/Groups/{group_id}") for s in writes)
    ops = [op for s in writes for op in json.loads(s.body)["Operations"]]
    added = {v["value"] for op in ops if op["op"] == "add" for v in op["value"]}
    assert added == {ids[uid_of_dn(joiner)], ids["newcomer"]}  # never the whole member list
    removed = [op for op in ops if op["op"] == "remove"]
    assert len(removed) == 1 and ids[uid_of_dn(leaver)] in removed[0]["path"]

    want = (members | {joiner.lower(), newcomer.lower()}) - {leaver.lower()}
    got = {m["value"] for m in rt.groups()[gname]["members"]}
    assert got == {ids[uid_of_dn(dn)] for dn in want}
    totals = rt.dry_run_totals()
    assert sum(totals.values()) == totals["unchanged"], totals


def uid_of_dn(dn: str) -> str:
    return dn.split(",")[0].split("=", 1)[1]


def test_op_types_not_synchronized_are_dropped(rt):
    classes = default_classes()
    loners = rt.loners()
    modified, deleted = loners[0]["dn"][0], loners[1]["dn"][0]
    before = rt.users()

    for flag, change in (
        ("synchronize-creates", lambda: rt.add_user("not-created")),
        ("synchronize-modifies", lambda: rt.replace(modified, title=["Not Modified"])),
        ("synchronize-deletes", lambda: rt.ldap.delete(deleted)),
    ):
        rt.write_config({**classes, "users": {**classes["users"], flag: False}})
        start = rt.cursor()
        change()
        rt.sync()
        ((kind, _, outcome),) = outcome_types(rt, start)
        assert outcome == synclog.DROPPED_OP_TYPE, (flag, kind)
        line = [x for x in rt.log() if x["type"] == synclog.DROPPED_OP_TYPE][-1]
        assert line["class"] == "users" and flag.split("-")[1] in line["detail"], line

    assert rt.users() == before  # nothing reached the target
    assert rt.cli_json("status")["completed"][synclog.DROPPED_OP_TYPE] == 1


def test_exclusion_class_drops_out_of_scope(rt):
    classes = default_classes()
    # evaluated before users: contractors are never synchronized
    classes = {
        "contractors": {
            "evaluation-order-index": 50,
            "include-base-dn": [PEOPLE],
            "include-filter": ["(employeeType=Excluded Contractor)"],
            "synchronize-creates": False,
            "synchronize-modifies": False,
            "synchronize-deletes": False,
            "resource": "User",  # its filter names no objectClass: every run must be told
        },
        **classes,
    }
    rt.write_config(classes)
    start = rt.cursor()
    contractor = rt.add_user("contractor", employeeType="Excluded Contractor")
    rt.replace(contractor, title=["Still Excluded"])
    other = rt.ldap.add(f"cn=printer,{SUFFIX}", "device", {"cn": "printer"})  # the DEFAULT class
    assert other
    rt.sync()
    assert "contractor" not in rt.users()
    logged = outcome_types(rt, start)
    assert [(k, o) for k, _, o in logged] == [
        ("add", synclog.DROPPED_OUT_OF_SCOPE),
        ("modify", synclog.DROPPED_OUT_OF_SCOPE),
        ("add", synclog.DROPPED_OUT_OF_SCOPE),
    ]


def test_a_linked_entry_moving_into_an_exclusion_class_keeps_its_resource_as_resync_does(rt):
    classes = {
        "contractors": {
            "evaluation-order-index": 50,
            "include-base-dn": [PEOPLE],
            "include-filter": ["(employeeType=Excluded Contractor)"],
            "synchronize-creates": False,
            "synchronize-modifies": False,
            "synchronize-deletes": False,
            "resource": "User",
        },
        **default_classes(),
    }
    rt.write_config(classes)
    person = rt.people()[5]
    before = rt.users()[person["uid"][0]]
    start = rt.cursor()
    rt.replace(person["dn"][0], employeeType=["Excluded Contractor"], title=["Contractor"])
    rt.sync()
    assert [o for _, _, o in outcome_types(rt, start)] == [synclog.DROPPED_OUT_OF_SCOPE]
    assert rt.users()[person["uid"][0]] == before  # neither deleted nor changed
    plan = dry_run(rt.config(), RunOptions())  # what resync makes of it: the same
    (row,) = [r for r in plan.rows if r.dn == person["dn"][0]]
    assert (row.class_name, row.situation, row.scim_id) == (
        "contractors",
        OUT_OF_SCOPE,
        before["id"],
    )
    assert not [r for r in plan.rows if r.situation not in (UNCHANGED, OUT_OF_SCOPE)]


def test_same_dn_in_one_batch_runs_in_feed_order(rt):
    """A delete and a re-add of one DN, and a user taking the name another left, in one batch:
    different entries sharing a DN must not run in parallel."""
    start = rt.cursor()
    before = rt.users()
    gone, a, b = (p for p in rt.loners()[:3])
    gone_dn, gone_uid = gone["dn"][0], gone["uid"][0]
    rt.ldap.delete(gone_dn)
    rt.add_user(gone_uid, title="Second Of The Name")
    a_dn, a_uid, b_dn, b_uid = a["dn"][0], a["uid"][0], b["dn"][0], b["uid"][0]
    rt.ldap.modify_dn(a_dn, f"uid={a_uid}-left")
    rt.ldap.modify_dn(b_dn, f"uid={a_uid}")  # userName is unique: only after a's rename
    rt.sync()

    users = rt.users()
    again = users[gone_uid]
    assert again["title"] == "Second Of The Name"
    assert again["externalId"] == rt.entry_uuid(gone_dn) != before[gone_uid]["externalId"]
    # each entry kept its own resource
    assert users[a_uid + "-left"]["id"] == before[a_uid]["id"]
    assert users[a_uid]["id"] == before[b_uid]["id"]
    assert b_uid not in users and len(users) == len(before)
    assert all(o != synclog.CHANGE_FAILED for _, _, o in outcome_types(rt, start))
    totals = rt.dry_run_totals()
    assert sum(totals.values()) == totals["unchanged"], totals


def detected_since(rt: Rt, mark: int) -> list[str]:
    """DNs of the changes detected after log line `mark`, in order (lower case)."""
    return [
        line["dn"].lower() for line in rt.log()[mark:] if line["type"] == synclog.CHANGE_DETECTED
    ]


def test_set_startpoint_at_each_start_point(rt):
    import time
    from datetime import UTC, datetime

    first = rt.add_user("first")
    time.sleep(2.2)  # start points by time have one-second precision
    middle_time = datetime.now(UTC)
    time.sleep(1.1)
    second = rt.add_user("second")
    both, only_second = [first.lower(), second.lower()], [second.lower()]

    def replay(*how: str) -> list[str]:
        mark = len(rt.log())
        rt.set_startpoint(*how)
        # a replay from the beginning meets the deletes of other tests' entries (the fixture
        # reuses their DNs), many more than the delete guard lets through
        rt.sync("--allow-deletes")
        return [dn for dn in detected_since(rt, mark) if dn in both]

    assert replay("--end-of-changelog") == []
    assert replay("--beginning-of-changelog") == both
    assert replay("--startpoint-time", middle_time.strftime("%Y-%m-%dT%H:%M:%SZ")) == only_second
    rewind = f"{(datetime.now(UTC) - middle_time).total_seconds():.0f}s"
    assert replay("--startpoint-rewind", rewind) == only_second
    assert replay("--startpoint-rewind", "1h") == both
    if rt.feed == "dirsrv":
        number = next(
            line["change_number"]
            for line in rt.log()
            if line["type"] == synclog.CHANGE_DETECTED and line["dn"].lower() == second.lower()
        )
        assert replay("--change-number", str(number)) == only_second
    else:  # the access log has no change numbers: a usage error that says so
        result = rt.cli("realtime-sync", "set-startpoint", "--change-number", "5")
        assert result.code == 2 and "no change numbers" in result.err, result.err
    for bad, message in (
        (("--startpoint-rewind", "2 fortnights"), "2h30m"),
        (("--startpoint-time", "yesterday"), "RFC 3339"),
    ):
        result = rt.cli("realtime-sync", "set-startpoint", *bad)
        assert result.code == 2 and message in result.err, result.err
    assert set(rt.users()) >= {"first", "second"}


def test_max_changes_stops_after_n_and_resumes_there(rt):
    people = rt.loners()[:5]
    for i, person in enumerate(people):
        rt.replace(person["dn"][0], title=[f"Title {i}"])
    mark = len(rt.log())
    result = rt.cli_ok("realtime-sync", "start", "--foreground", "--max-changes", "2")
    assert "stopped after 2 changes" in result.out, result.out
    assert detected_since(rt, mark) == [p["dn"][0].lower() for p in people[:2]]
    users = rt.users()
    assert [users[p["uid"][0]]["title"] for p in people[:2]] == ["Title 0", "Title 1"]
    assert all(users[p["uid"][0]]["title"] != f"Title {i}" for i, p in enumerate(people) if i > 1)
    assert rt.cli_json("status")["lag"]["changes"] == 3

    mark = len(rt.log())
    result = rt.sync()
    assert "stopped after 3 changes" in result.out, result.out
    assert detected_since(rt, mark) == [p["dn"][0].lower() for p in people[2:]]
    users = rt.users()
    assert [users[p["uid"][0]]["title"] for p in people] == [f"Title {i}" for i in range(5)]
    assert rt.cli_json("status")["lag"] == {"changes": 0, "seconds": 0.0}


def test_a_large_batch_reads_its_entries_with_a_few_searches(rt, monkeypatch):
    """Entries of a batch are re-read with OR searches on their unique ids, not one each."""
    from toolkit.ldap.changes import ChangeDetector
    from toolkit.ldap.source import LdapSource

    single, bulk = [], []
    find_entries, read_page = LdapSource.find_entries, ChangeDetector.read_page

    def spy_find(self, *args, **kwargs):
        single.append(args)
        return find_entries(self, *args, **kwargs)

    def spy_read(self, base, flt, *args, **kwargs):
        if base.lower() == SUFFIX.lower():  # not the feed's own reads
            bulk.append(flt)
        return read_page(self, base, flt, *args, **kwargs)

    monkeypatch.setattr(LdapSource, "find_entries", spy_find)
    monkeypatch.setattr(ChangeDetector, "read_page", spy_read)
    people = rt.people()[:20]
    for person in people:
        rt.replace(person["dn"][0], title=["Batched"])
    gone = rt.loners()[-1]
    rt.ldap.delete(gone["dn"][0])
    rt.sync()
    users = rt.users()
    assert all(users[p["uid"][0]]["title"] == "Batched" for p in people)
    assert gone["uid"][0] not in users
    assert single == [] and len(bulk) == 1, (single, bulk)
    attribute = "entryuuid" if rt.feed == "slapd" else "nsuniqueid"
    assert (bulk[0].attribute.lower(), len(bulk[0].values)) == (attribute, len(people))
