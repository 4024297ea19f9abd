"""References between objects created in the same resync: waves, and cycles completed."""

from __future__ import annotations

import ldap3

from tests.support.plan_env import ENTERPRISE, PEOPLE, make_env

PERSON = ["top", "person", "organizationalPerson", "inetOrgPerson"]


def test_two_new_users_managing_each_other_both_get_their_manager(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path, users=5, groups=1)
    a, b = f"uid=cycle.a,{PEOPLE}", f"uid=cycle.b,{PEOPLE}"
    env.ldap.add(a, PERSON, {"uid": "cycle.a", "cn": "Cycle A", "sn": "A"})
    env.ldap.add(b, PERSON, {"uid": "cycle.b", "cn": "Cycle B", "sn": "B", "manager": a})
    env.ldap.modify(a, {"manager": [(ldap3.MODIFY_REPLACE, [b])]})

    data = env.cli_json("resync")
    assert data["failed"] == 0 and data["totals"]["create"] == 8

    users = {u["userName"]: u for u in env.all("/Users")}
    assert users["cycle.a"][ENTERPRISE]["manager"]["value"] == users["cycle.b"]["id"]
    assert users["cycle.b"][ENTERPRISE]["manager"]["value"] == users["cycle.a"]["id"]
    again = env.cli_json("dry-run")
    assert again["totals"]["unchanged"] == 8 and again["totals"]["modify"] == 0


def test_a_report_waits_for_its_new_manager(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path, users=30, groups=3)
    data = env.cli_json("resync")
    assert data["failed"] == 0
    users = {u["id"]: u for u in env.all("/Users")}
    managed = [u for u in users.values() if u.get(ENTERPRISE, {}).get("manager")]
    assert len(managed) == 29  # everyone but the head of the sample company
    assert all(u[ENTERPRISE]["manager"]["value"] in users for u in managed)


def test_a_source_input_file_line_that_is_not_a_dn_is_named(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path, users=3, groups=1)
    dns = tmp_path / "dns.txt"
    dns.write_text(f"# failed DNs\ndn: uid=x,{PEOPLE}\nnot a dn\n")
    result = env.cli("resync", "--source-input-file", str(dns))
    assert result.code == 2 and f"{dns}:3: not a DN" in result.err
    assert env.all("/Users") == []  # nothing was sent
