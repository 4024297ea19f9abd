"""References (managers, group members) in a realtime batch, against the real slapd and
389-DS feeds and scim2-server: the links a large batch's entries refer to are read at once
when the batch starts, and a reference to an entry created in the same batch is still named
(by the batch's second pass, which reads the links written meanwhile)."""

from __future__ import annotations

import pytest

from tests.support.realtime_env import ENTERPRISE, make_rt
from toolkit.sync.state import StateStore

FEEDS = ["slapd", "dirsrv"]


@pytest.fixture(params=FEEDS)
def rt(request, scim_server, tmp_path):
    server = request.getfixturevalue(request.param)
    rt = make_rt(request.param, server, scim_server, tmp_path / "pipe")
    yield rt
    rt.close()


def manager_id(user: dict) -> str | None:
    return ((user.get(ENTERPRISE) or {}).get("manager") or {}).get("value")


def test_a_batch_reads_the_links_its_entries_refer_to_at_once(rt, monkeypatch):
    boss, *reports = rt.people()[:11]
    for report in reports:
        rt.replace(report["dn"][0], manager=[boss["dn"][0]])
    lookups = []
    links_by_dns = StateStore.links_by_dns

    def spy(self, pipe, dns):
        dns = list(dns)
        lookups.append(dns)
        return links_by_dns(self, pipe, dns)

    monkeypatch.setattr(StateStore, "links_by_dns", spy)
    rt.sync()
    users = rt.users()
    assert {manager_id(users[r["uid"][0]]) for r in reports} == {users[boss["uid"][0]]["id"]}
    # one read for the whole batch (the ten entries name one manager), none per entry
    assert lookups == [[boss["dn"][0]]], lookups


def test_a_manager_created_in_the_same_batch_is_named(rt):
    boss = rt.add_user("newboss")
    reports = [rt.add_user(f"newreport{i}", manager=boss) for i in range(6)]
    moved = rt.people()[:4]
    for person in moved:
        rt.replace(person["dn"][0], manager=[boss])
    rt.sync()
    users = rt.users()
    boss_id = users["newboss"]["id"]
    named = [manager_id(users[f"newreport{i}"]) for i in range(len(reports))]
    named += [manager_id(users[person["uid"][0]]) for person in moved]
    assert named == [boss_id] * (len(reports) + len(moved))
