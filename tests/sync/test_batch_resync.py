"""resync against the real slapd and scim2-server: create, converge, apply LDAP edits.

Each test loads sample data into slapd with slapadd (entries carry entryUUID), writes a
pipe config for the two fixtures, and drives `scimsync dry-run` / `scimsync resync`.
"""

from __future__ import annotations

import ldap3
import pytest

from tests.support.plan_env import (
    ENTERPRISE,
    GROUPS,
    PEOPLE,
    SUFFIX,
    assert_summary_shape,
    dn_of,
    make_env,
    totals,
    uid_of,
)
from toolkit.config.dn import normalize_dn


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe")
    yield env
    env.close()


def test_first_resync_creates_everything_and_second_finds_nothing(env):
    dry = env.cli_json("dry-run")
    assert_summary_shape(dry)
    assert dry["totals"] == totals(create=env.users + env.groups)
    assert dry["classes"]["users"] == totals(create=env.users)

    first = env.cli_json("resync")
    assert_summary_shape(first, resync=True)
    assert first["totals"] == totals(create=env.users + env.groups)
    assert (first["applied"], first["failed"]) == (env.users + env.groups, 0)

    users, groups = env.scim_users(), env.scim_groups()
    assert set(users) == {uid_of(p) for p in env.people()}
    assert set(groups) == {g["cn"][0] for g in env.sample_groups()}
    # references resolved to the ids of resources created in the same run
    ids = {normalize_dn(dn_of(p)): users[uid_of(p)]["id"] for p in env.people()}
    for person in env.people():
        if "manager" in person:
            manager = users[uid_of(person)][ENTERPRISE]["manager"]["value"]
            assert manager == ids[normalize_dn(person["manager"][0])], dn_of(person)
    for group in env.sample_groups():
        members = {m["value"] for m in groups[group["cn"][0]].get("members", [])}
        assert members == {ids[normalize_dn(m)] for m in group["member"]}, dn_of(group)
    assert all(u["externalId"] == env.entry_uuid(dn_of(p)) for p, u in _pairs(env, users))

    second = env.cli_json("resync")
    assert_summary_shape(second, resync=True)
    assert second["totals"] == totals(unchanged=env.users + env.groups)
    assert (second["applied"], second["failed"]) == (0, 0)
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


def _pairs(env, users):
    return [(p, users[uid_of(p)]) for p in env.people()]


def test_ldap_edits_show_exactly_in_the_dry_run_and_resync_applies_them(env):
    assert env.cli_json("resync")["failed"] == 0
    before = env.scim_users()
    conn = env.ldap
    people = env.people()
    busy = env.member_dns() | env.manager_dns()
    group = env.sample_groups()[1]
    members = {normalize_dn(m) for m in group["member"]}
    in_group = next(p for p in people[1:] if normalize_dn(dn_of(p)) in members)
    outside = [p for p in people if normalize_dn(dn_of(p)) not in busy and p is not in_group]
    modified, moved, deleted, joiner, reportee = outside[:5]
    renamed = in_group

    # modify an attribute
    conn.modify(dn_of(modified), {"title": [(ldap3.MODIFY_REPLACE, ["Chief Tester"])]})
    # rename (modrdn); member values follow, as refint would do it
    new_uid = uid_of(renamed) + "-renamed"
    conn.modify_dn(dn_of(renamed), f"uid={new_uid}")
    new_dn = f"uid={new_uid},{PEOPLE}"
    for g in env.sample_groups():
        if normalize_dn(dn_of(renamed)) in {normalize_dn(m) for m in g["member"]}:
            conn.modify(
                dn_of(g),
                {
                    "member": [
                        (ldap3.MODIFY_DELETE, [dn_of(renamed)]),
                        (ldap3.MODIFY_ADD, [new_dn]),
                    ]
                },
            )
    # move out of scope
    conn.add(f"ou=former,{SUFFIX}", "organizationalUnit", {"ou": "former"})
    conn.modify_dn(dn_of(moved), f"uid={uid_of(moved)}", new_superior=f"ou=former,{SUFFIX}")
    # delete
    conn.delete(dn_of(deleted))
    # group membership: one joins, one leaves
    leaver = next(m for m in group["member"] if normalize_dn(m) != normalize_dn(dn_of(renamed)))
    conn.modify(
        dn_of(group),
        {
            "member": [
                (ldap3.MODIFY_ADD, [dn_of(joiner)]),
                (ldap3.MODIFY_DELETE, [leaver]),
            ]
        },
    )
    # manager change
    conn.modify(dn_of(reportee), {"manager": [(ldap3.MODIFY_REPLACE, [dn_of(modified)])]})

    dry = env.cli_json("dry-run")
    n = env.users + env.groups
    assert dry["totals"] == totals(modify=4, delete=2, unchanged=n - 6)
    assert dry["classes"]["groups"] == totals(modify=1, unchanged=env.groups - 1)

    plan_file = env.folder / "plan.json"
    assert env.cli("dry-run", "--output", str(plan_file)).code == 0
    from toolkit.plan.plan import Plan

    plan = Plan.load(plan_file)
    changed = {r.dn: r for r in plan.rows if r.situation != "unchanged"}
    ids = {uid: u["id"] for uid, u in before.items()}
    manager_id = ids[uid_of(modified)]
    old_manager = before[uid_of(reportee)][ENTERPRISE]["manager"]["value"]
    leaver_uid = leaver.split(",", 1)[0].split("=", 1)[1]
    expected = {
        dn_of(modified): (
            "modify",
            [{"attribute": "title", "old": modified["title"][0], "new": "Chief Tester"}],
        ),
        new_dn: ("modify", [{"attribute": "userName", "old": uid_of(renamed), "new": new_uid}]),
        dn_of(group): (
            "modify",
            [
                {
                    "attribute": "members",
                    "add": [ids[uid_of(joiner)]],
                    "remove": [ids[leaver_uid]],
                }
            ],
        ),
        dn_of(reportee): (
            "modify",
            [
                {
                    "attribute": f"{ENTERPRISE}:manager",
                    "old": {"value": old_manager},
                    "new": {"value": manager_id},
                }
            ],
        ),
        dn_of(moved): ("delete", []),
        dn_of(deleted): ("delete", []),
    }
    assert {dn: (r.situation, r.changes) for dn, r in changed.items()} == expected
    patch = changed[dn_of(group)].requests
    assert [r.method for r in patch] == ["PATCH"]
    assert patch[0].body["Operations"] == [
        {"op": "remove", "path": f'members[value eq "{ids[leaver_uid]}"]'},
        {"op": "add", "path": "members", "value": [{"value": ids[uid_of(joiner)]}]},
    ]
    assert [(r.method, r.path) for r in changed[dn_of(deleted)].requests] == [
        ("DELETE", f"/Users/{ids[uid_of(deleted)]}")
    ]

    applied = env.cli_json("resync")
    assert (applied["applied"], applied["failed"]) == (6, 0)
    assert applied["totals"] == dry["totals"]
    after = env.scim_users()
    assert after[uid_of(modified)]["title"] == "Chief Tester"
    assert uid_of(renamed) not in after and after[new_uid]["id"] == ids[uid_of(renamed)]
    assert uid_of(moved) not in after and uid_of(deleted) not in after
    assert after[uid_of(reportee)][ENTERPRISE]["manager"]["value"] == manager_id
    members_now = {m["value"] for m in env.scim_groups()[group["cn"][0]]["members"]}
    assert ids[uid_of(joiner)] in members_now and ids[leaver_uid] not in members_now
    assert len(after) == env.users - 2

    assert env.cli_json("dry-run")["totals"] == totals(unchanged=n - 2)


def test_conflict_when_the_matching_target_belongs_to_another_entry(env):
    assert env.cli_json("resync")["failed"] == 0
    taken = env.people()[3]
    env.ldap.add(
        f"cn=Same Name,{PEOPLE}",
        ["inetOrgPerson"],
        {"cn": "Same Name", "sn": "Name", "uid": uid_of(taken)},
    )
    dry = env.cli_json("dry-run")
    assert dry["totals"] == totals(conflict=1, unchanged=env.users + env.groups)
    result = env.cli_json("resync")
    assert (result["applied"], result["failed"]) == (0, 0)
    assert len(env.scim_users()) == env.users


def test_a_reference_cycle_creates_each_object_once_and_the_next_run_completes_it(env):
    """g1 has members g2 and g3, which both have g1: all new, none can be named first."""
    user = dn_of(env.people()[1])

    def dn(name):
        return f"cn={name},{GROUPS}"

    env.ldap.add(dn("g1"), ["groupOfNames"], {"cn": "g1", "member": [dn("g2"), dn("g3")]})
    env.ldap.add(dn("g2"), ["groupOfNames"], {"cn": "g2", "member": [dn("g1")]})
    env.ldap.add(dn("g3"), ["groupOfNames"], {"cn": "g3", "member": [dn("g1"), user]})
    n = env.users + env.groups + 3
    first = env.cli_json("resync")
    assert (first["totals"], first["applied"], first["failed"]) == (totals(create=n), n, 0)
    names = sorted(g["displayName"] for g in env.all("/Groups"))
    assert names == sorted([g["cn"][0] for g in env.sample_groups()] + ["g1", "g2", "g3"])
    second = env.cli_json("resync")  # completes what the cycle left out, if anything
    assert second["failed"] == 0 and second["totals"]["create"] == 0
    groups = env.scim_groups()
    ids = {name: groups[name]["id"] for name in ("g1", "g2", "g3")}
    assert {m["value"] for m in groups["g1"]["members"]} == {ids["g2"], ids["g3"]}
    assert {m["value"] for m in groups["g2"]["members"]} == {ids["g1"]}
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=n)


def test_a_reference_to_an_entry_that_is_gone_is_dropped_not_resolved(env):
    """Without refint a group keeps the DN of a deleted user: that member is dropped, rather
    than pointed at the resource this same plan deletes (which never converges)."""
    assert env.cli_json("resync")["failed"] == 0
    group, leaving = env.sample_groups()[2], env.loner()
    ids = {uid: u["id"] for uid, u in env.scim_users().items()}
    env.ldap.modify(dn_of(group), {"member": [(ldap3.MODIFY_ADD, [dn_of(leaving)])]})
    env.ldap.delete(dn_of(leaving))
    dry = env.cli_json("dry-run")
    assert dry["totals"] == totals(delete=1, unchanged=env.users + env.groups - 1)
    applied = env.cli_json("resync")
    assert (applied["applied"], applied["failed"]) == (1, 0)
    members = {m["value"] for m in env.scim_groups()[group["cn"][0]]["members"]}
    assert ids[uid_of(leaving)] not in members
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups - 1)


def test_resync_dn_applies_that_entry_only_and_shows_its_steps(env):
    assert env.cli_json("resync")["failed"] == 0
    one, other = env.loner(0), env.loner(1)
    env.ldap.modify(dn_of(one), {"title": [(ldap3.MODIFY_REPLACE, ["On Demand"])]})
    env.ldap.modify(dn_of(other), {"title": [(ldap3.MODIFY_REPLACE, ["Not Yet"])]})
    before = env.snapshot()

    result = env.cli("resync", "--dn", dn_of(one), "--json")
    assert result.code == 0, result.out + result.err
    out = result.json()
    assert (out["applied"], out["failed"]) == (1, 0)
    [report] = out["objects"]
    assert (report["dn"], report["situation"], report["ok"]) == (dn_of(one), "modify", True)
    assert [s["step"] for s in report["steps"]] == [
        "import",
        "class and scope",
        "correlation",
        "action",
        "request",
        "response",
        "resource",
    ]

    after = env.snapshot()
    changed = {u["userName"]: u for u in after["users"]}
    assert changed[uid_of(one)]["title"] == "On Demand"
    assert changed[uid_of(other)].get("title") != "Not Yet"
    # nothing else moved: every other resource is exactly as it was, version included
    rest = [u for u in after["users"] if u["userName"] != uid_of(one)]
    assert rest == [u for u in before["users"] if u["userName"] != uid_of(one)]
    assert after["groups"] == before["groups"]


def test_resync_dn_text_names_each_step_and_a_dn_out_of_scope_fails(env):
    assert env.cli_json("resync")["failed"] == 0
    one = env.loner(0)
    env.ldap.modify(dn_of(one), {"title": [(ldap3.MODIFY_REPLACE, ["Shown"])]})
    missing = f"uid=nobody-here,{PEOPLE}"
    result = env.cli("resync", "--dn", dn_of(one), "--dn", missing)
    assert result.code == 1, result.out + result.err
    lines = result.out.splitlines()
    assert f"{dn_of(one)}: done" in lines
    assert f"{missing}: FAILED" in lines
    assert any(line.split()[:2] == ["action", "ok"] and "modify" in line for line in lines)
    assert env.scim_users()[uid_of(one)]["title"] == "Shown"


def test_resync_dn_refuses_a_value_that_is_not_a_dn_before_any_server_is_asked(env):
    result = env.cli("resync", "--dn", "not a dn")
    assert result.code == 2
    assert "--dn 'not a dn': not a DN" in result.err
