"""Delete guards: the max-deletes threshold, the empty and the shrunken read, deactivation,
and resources this pipe does not manage (never deleted)."""

from __future__ import annotations

import html

import pytest

from tests.support.plan_env import dn_of, make_env, totals, uid_of


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
    # 12% allows 5 of 43 in total but 4 of the users class's 40: per class, 13% is needed
    twelve = env.cli("resync", "--max-deletes", "12%")
    assert twelve.code == 1
    assert "class users: 5 deletes exceed max-deletes 12% (allows 4 of 40" in twelve.err
    assert env.cli("resync", "--max-deletes", "13%").code == 0
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


def _set_class(env, name: str, prop: str) -> None:
    """`dsconfig set-sync-class-prop` on the env's pipe, as an operator would edit it."""
    result = env.cli(
        "dsconfig", "set-sync-class-prop", "--pipe-name", "ldap-to-scim", "--class-name", name,
        "--set", prop,
    )  # fmt: skip
    assert result.code == 0, result.err


def test_a_class_whose_filter_matches_nothing_deletes_nothing(slapd, scim_server, tmp_path):
    """A typo in the groups filter: 3 of 43 managed is within 10% in total, but the class
    reads nothing while it manages 3 groups."""
    env = _env(slapd, scim_server, tmp_path)
    assert env.cli_json("resync")["failed"] == 0
    before = env.snapshot()
    _set_class(env, "groups", "include-filter:(objectClass=groupOfNamesTypo)")
    assert env.cli("config", "validate").code == 0  # a filter that matches nothing is valid

    dry = env.cli("dry-run", "--json")
    assert dry.code == 0 and dry.json()["classes"]["groups"]["delete"] == env.groups
    (refused,) = dry.json()["refused"]
    assert refused == {
        "text": f"class groups read no entries while this pipe manages {env.groups} of its "
        "resources: does its scope match nothing ((objectClass=groupOfNamesTypo) under "
        "ou=groups,dc=example,dc=com)? Applying would delete them all",
        "override": "--allow-deletes",
    }
    text = env.cli("dry-run")
    assert f"resync would refuse: {refused['text']} (unless --allow-deletes)" in text.out
    resync = env.cli("resync")
    assert resync.code == 1 and "class groups read no entries" in resync.err
    assert env.snapshot() == before  # not one group deleted
    env.close()


def test_a_wiped_server_is_not_silently_recreated(slapd, scim_server, tmp_path):
    env = _env(slapd, scim_server, tmp_path)
    assert env.cli_json("resync")["failed"] == 0
    scim_server.reset()  # the tenant was wiped (or the URL now names another tenant)

    dry = env.cli_json("dry-run")
    assert dry["totals"]["create"] == env.users + env.groups
    (refused,) = dry["refused"]  # the 3 groups alone would be recreated (below VANISHED_MIN)
    assert refused["override"] == "--allow-recreate"
    assert refused["text"].startswith(
        "none of the 40 User resources this pipe linked is on the server any more"
    )
    for args in (("resync",), ("resync", "--allow-deletes")):
        refused = env.cli(*args)
        assert refused.code == 1 and "--allow-recreate" in refused.err, args
        assert env.scim_users() == {} and env.scim_groups() == {}
    done = env.cli_json("resync", "--allow-recreate")
    assert (done["applied"], done["failed"]) == (env.users + env.groups, 0)
    assert len(env.scim_users()) == env.users
    assert env.cli_json("dry-run")["refused"] == []  # linked again
    env.close()


def test_a_mapping_that_empties_an_attribute_warns(slapd, scim_server, tmp_path):
    """title read from an attribute no entry has (the schema knows it): every user would
    lose its title. The plan warns in the text, --json and the report; it is not refused."""
    from tests.support.plan_env import SUFFIX
    from toolkit.mapping import default_mapping_text

    env = _env(slapd, scim_server, tmp_path)
    assert env.cli_json("resync")["failed"] == 0
    titled = sum(1 for u in env.scim_users().values() if u.get("title"))
    text = default_mapping_text(SUFFIX)
    assert text.count('ldapAttribute="title"') == 1
    (env.folder / "typo.xml").write_text(
        text.replace('ldapAttribute="title"', 'ldapAttribute="roomNumber"')
    )
    env.config_path.write_text(
        env.config_path.read_text().replace(
            "    server: [test-scim]\n",
            "    server: [test-scim]\n    resource-mapping-file: typo.xml\n",
        )
    )
    warning = (
        f"class users: title would be removed from {titled} of {env.users} objects "
        f"({titled / env.users:.0%}); check the mapping's source of title"
    )
    assert titled > env.users / 2
    dry = env.cli("dry-run", "--output", str(env.folder / "plan.html"))
    assert dry.code == 0 and f"WARNING: {warning}" in dry.out
    assert html.escape(warning) in (env.folder / "plan.html").read_text()
    assert env.cli_json("dry-run")["warnings"] == [warning]
    env.close()
