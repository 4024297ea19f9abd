"""Adoption: a SCIM resource that exists already is linked and corrected, never duplicated.

Two paths: the plan sees the unlinked target (situation `adopt`), or the target appears
between plan and apply and the create answers 409 (the race path).
"""

from __future__ import annotations

import ldap3
import pytest

from tests.support.plan_env import PEOPLE, make_env, totals, uid_of
from toolkit.sync.apply import Applier
from toolkit.sync.batch import RunOptions, make_plan, open_session


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=30, groups=3)
    yield env
    env.close()


def test_existing_user_with_the_same_username_is_adopted_not_duplicated(env):
    person = env.people()[5]
    existing = env.post_user({"userName": uid_of(person), "title": "Stale Title"})

    dry = env.cli_json("dry-run")
    assert dry["totals"] == totals(create=env.users + env.groups - 1, adopt=1)
    plan_file = env.folder / "plan.json"
    env.cli("dry-run", "--output", str(plan_file))
    from toolkit.plan.plan import Plan

    row = next(r for r in Plan.load(plan_file).rows if r.situation == "adopt")
    assert row.scim_id == existing["id"] and row.dn == person["dn"][0]
    changed = {c["attribute"]: c for c in row.changes}
    assert changed["title"] == {
        "attribute": "title",
        "old": "Stale Title",
        "new": person["title"][0],
    }
    assert [r.method for r in row.requests] == ["PATCH"]

    result = env.cli_json("resync")
    assert (result["applied"], result["failed"]) == (env.users + env.groups, 0)
    users = env.scim_users()
    assert len(users) == env.users  # not duplicated
    adopted = users[uid_of(person)]
    assert adopted["id"] == existing["id"]
    assert adopted["title"] == person["title"][0]
    assert adopted["externalId"] == env.entry_uuid(person["dn"][0])
    # linked now: a member of a group, a manager's report, and unchanged next time
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


def test_create_answered_409_adopts_the_resource_that_appeared_meanwhile(env):
    person = env.people()[7]
    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        row = next(r for r in plan.rows if r.dn == person["dn"][0])
        assert row.situation == "create"
        # someone else creates the user between the plan and its application
        raced = env.post_user({"userName": uid_of(person), "title": "Raced"})
        result = Applier(plan, session.client, session.store, workers=4).run()
        link = session.store.link(plan.pipe, row.entry_uuid)
    assert (result.applied, result.failed) == (env.users + env.groups, 0)
    users = env.scim_users()
    assert len(users) == env.users
    assert users[uid_of(person)]["id"] == raced["id"] == link.scim_id
    assert link.created is False  # adopted, not created by this pipe
    assert users[uid_of(person)]["title"] == person["title"][0]
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


def test_two_entries_racing_for_one_username_never_share_a_resource(env):
    """A 409 whose match another entry of the run created fails that entry instead; the
    failed-DNs file then works as --source-input-file once the data is fixed."""
    twin_of = env.people()[0]  # no manager: it is ready before the twin
    twin = f"cn=Twin Entry,{PEOPLE}"
    env.ldap.add(
        twin, ["inetOrgPerson"], {"cn": "Twin Entry", "sn": "Entry", "uid": uid_of(twin_of)}
    )
    failed_file = env.folder / "failed.txt"
    # one worker: ready rows go in read order, so the sample user wins and its twin loses
    result = env.cli("resync", "--json", "--workers", "1", "--failed-dns-file", str(failed_file))
    assert result.code == 1, result.err
    data = result.json()
    assert (data["applied"], data["failed"]) == (env.users + env.groups, 1)
    text = failed_file.read_text()
    assert "belongs to another entry" in text
    assert [line for line in text.splitlines() if not line.startswith("#")] == [twin]
    assert len(env.scim_users()) == env.users
    ids = [link.scim_id for link in _links(env).values()]
    assert len(ids) == len(set(ids)) == env.users + env.groups

    env.ldap.modify(twin, {"uid": [(ldap3.MODIFY_REPLACE, ["twin.entry"])]})
    retry = env.cli_json("resync", "--source-input-file", str(failed_file))
    assert retry["totals"] == totals(create=1)
    assert (retry["applied"], retry["failed"]) == (1, 0)
    assert env.scim_users()["twin.entry"]["name"]["formatted"] == "Twin Entry"
    everything = env.users + env.groups + 1
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=everything)


def _links(env):
    from toolkit.sync.state import StateStore

    store = StateStore(env.config().state_dir / "state.db")
    try:
        return store.links("ldap-to-scim")
    finally:
        store.close()
