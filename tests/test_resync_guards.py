"""Delete guards: the max-deletes threshold, the empty and the shrunken read, deactivation,
and resources this pipe does not manage (never deleted)."""

from __future__ import annotations

import pytest
from test_plan_support import dn_of, make_env, totals, uid_of


def _env(slapd, scim_server, tmp_path, **props):
    return make_env(slapd, scim_server, tmp_path / "pipe", users=40, groups=3, **props)


def _delete_loners(env, count, skip=0):
    """Delete users in no group and managing nobody: the deletes touch nothing else."""
    gone = [env.loner(skip + i) for i in range(count)]
    for person in gone:
        env.ldap.delete(dn_of(person))
    return gone


@pytest.mark.parametrize(
    ("limit", "deletes", "allowed"),
    [("1", 2, 1), ("5%", 3, 2)],  # 43 managed: 5% allows 2
)
def test_max_deletes_refuses_past_the_threshold(
    slapd, scim_server, tmp_path, limit, deletes, allowed
):
    env = _env(slapd, scim_server, tmp_path, max_deletes=limit)
    assert env.cli_json("resync")["failed"] == 0
    before = env.snapshot()
    _delete_loners(env, deletes)
    managed = env.users + env.groups

    dry = env.cli("dry-run")
    assert dry.code == 0
    problem = f"{deletes} deletes exceed max-deletes {limit} (allows {allowed} of {managed} managed resources)"
    assert f"resync would refuse: {problem}" in dry.out

    refused = env.cli("resync")
    assert refused.code == 1  # a refused operation, not a usage error
    assert refused.err.startswith("scimsync: error: resync refused: ")
    assert problem in refused.err and "--allow-deletes" in refused.err
    assert env.snapshot() == before  # nothing was sent

    raised = env.cli_json("resync", "--max-deletes", str(deletes))
    assert raised["totals"]["delete"] == deletes and raised["failed"] == 0
    assert len(env.scim_users()) == env.users - deletes
    env.close()


def test_allow_deletes_and_a_percent_override(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path)  # default max-deletes 10%: 4 of 43
    assert env.cli_json("resync")["failed"] == 0
    _delete_loners(env, 5)
    refused = env.cli("resync")
    assert refused.code == 1 and "5 deletes exceed max-deletes 10%" in refused.err
    assert env.cli("resync", "--max-deletes", "11%").code == 1  # still 4 of 43
    assert env.cli("resync", "--max-deletes", "12%").code == 0  # 5 of 43
    assert len(env.scim_users()) == env.users - 5

    _delete_loners(env, 5, skip=5)
    assert env.cli("resync").code == 1
    done = env.cli_json("resync", "--allow-deletes")
    assert (done["totals"]["delete"], done["failed"]) == (5, 0)
    bad = env.cli("resync", "--max-deletes", "lots")
    assert bad.code == 2  # a usage error
    assert (
        bad.err.startswith("scimsync: error: --max-deletes: expected a count")
        and "'lots'" in bad.err
    )
    for command in (("resync", "--dry-run"), ("resync", "--allow-deletes")):
        bad = env.cli(*command, "--max-deletes", "150%")
        assert bad.code == 2 and "--max-deletes: expected a count" in bad.err, command
    env.close()


def test_an_empty_read_is_refused_even_with_allow_deletes(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path, max_deletes="100%")
    assert env.cli_json("resync")["failed"] == 0
    before = env.snapshot()
    env.close()
    slapd.reset()  # the directory comes back empty (a wrong restore, a new replica)

    dry = env.cli("dry-run", "--json")
    assert dry.code == 0 and dry.json()["totals"]["delete"] == env.users + env.groups
    for args in (("resync",), ("resync", "--allow-deletes")):
        refused = env.cli(*args)
        assert refused.code == 1, args
        assert "the source read returned no entries while this pipe manages 43 resources" in (
            refused.err
        )
        assert "--allow-deletes" not in refused.err
    assert env.snapshot() == before


def test_a_sharply_shrunken_read_is_refused(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path, max_deletes="100%")
    assert env.cli_json("resync")["failed"] == 0
    before = env.snapshot()
    people = env.people()
    gone = people[-22:]  # 43 -> 21 entries: more than half gone
    for person in gone:
        env.ldap.delete(dn_of(person))
    refused = env.cli("resync")
    assert refused.code == 1
    assert "the source read returned 21 entries, down from 43 at the last resync" in refused.err
    assert env.snapshot() == before
    applied = env.cli_json("resync", "--allow-deletes")
    assert (applied["totals"]["delete"], applied["failed"]) == (22, 0)
    assert set(env.scim_users()) == {uid_of(p) for p in people} - {uid_of(p) for p in gone}
    env.close()


def test_unmanaged_resources_are_never_deleted(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path, max_deletes="100%")
    outsider = env.post_user({"userName": "not.from.ldap", "title": "Contractor"})
    assert env.cli_json("resync")["failed"] == 0
    gone = _delete_loners(env, 3)
    dry = env.cli_json("dry-run")
    assert dry["totals"] == totals(delete=3, unchanged=env.users + env.groups - 3)
    env.cli_json("resync")
    users = env.scim_users()
    assert users["not.from.ldap"] == outsider  # untouched, not even modified
    assert not {uid_of(p) for p in gone} & set(users)
    env.close()


def test_delete_policy_deactivate_sends_active_false(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path, delete_policy="deactivate")
    assert env.cli_json("resync")["failed"] == 0
    (person,) = _delete_loners(env, 1)
    plan_file = env.folder / "plan.json"
    assert env.cli("dry-run", "--output", str(plan_file)).code == 0
    from toolkit.plan.plan import Plan

    (row,) = [r for r in Plan.load(plan_file).rows if r.situation == "delete"]
    assert row.dn == dn_of(person) and row.reason == "deactivate"
    assert [(r.method, r.body) for r in row.requests] == [
        (
            "PATCH",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
    ]
    applied = env.cli_json("resync")
    assert (applied["totals"]["delete"], applied["applied"]) == (1, 1)
    user = env.scim_users()[uid_of(person)]  # still there, switched off
    assert user["active"] is False and user["id"] == row.scim_id
    again = env.cli_json("dry-run")
    assert again["totals"] == totals(unchanged=env.users + env.groups)
    env.close()


def test_fatal_errors_exit_2_unless_they_are_a_refusal():
    from toolkit.cli import _fatal_exit_code
    from toolkit.config import ConfigError
    from toolkit.plan.guards import GuardRefused

    assert _fatal_exit_code(ConfigError("sync.yaml: no sync pipe is configured")) == 2
    assert _fatal_exit_code(GuardRefused("resync refused: 5 deletes exceed max-deletes 10%")) == 1
