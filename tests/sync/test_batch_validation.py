"""The dry run checks every request against the server's schema, as a real run would meet it,
and resync never sends a request known to be refused (real slapd and scim2-server)."""

from __future__ import annotations

from tests.support.plan_env import make_env, with_badge_mapping
from toolkit.plan.plan import Plan


def test_refused_requests_are_shown_and_never_sent(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    with_badge_mapping(env)

    report = env.folder / "plan.json"
    dry = env.cli("dry-run", "--output", str(report))
    assert dry.code == 0, dry.err
    plan = Plan.load(report)
    users = [r for r in plan.rows if r.resource_type == "User"]
    groups = [r for r in plan.rows if r.resource_type == "Group"]
    assert users and all(r.situation == "create" for r in users)
    for row in users:
        assert row.problems == [
            "badgeNumber: not in the server's schema (urn:ietf:params:scim:schemas:core:2.0:User)"
        ], row.problems
    assert all(not r.problems for r in groups)
    assert f"resync would not send {len(users)} objects" in dry.out
    assert env.scim_users() == {}  # a dry run writes nothing

    applied = env.cli("resync", "--json")
    assert applied.code == 1  # failures
    result = applied.json()
    assert (result["applied"], result["failed"]) == (len(groups), len(users))
    assert env.scim_users() == {}  # not one refused request was sent
    assert set(env.scim_groups()) == {g.dn.split(",")[0].split("=")[1] for g in groups}
    failed = (env.folder / ".scimsync" / "ldap-to-scim-failed-dns.txt").read_text().split("\n")
    assert {r.dn for r in users} <= set(failed)
    env.close()
