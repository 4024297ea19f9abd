"""The three real servers start, answer, and reset."""

from __future__ import annotations

import httpx
import ldap3

from toolkit.lab import sampledata

USER = {"uid": "jdoe", "cn": "John Doe", "sn": "Doe"}


def _count(conn, base: str, flt: str = "(objectClass=*)") -> int:
    conn.search(base, flt, ldap3.SUBTREE, attributes=["1.1"])
    return len(conn.entries)


def test_slapd_has_base_tree_entryuuid_and_accesslog(slapd):
    conn = slapd.connect()
    assert _count(conn, slapd.suffix) == 3
    conn.add(f"uid=jdoe,ou=people,{slapd.suffix}", ["inetOrgPerson"], USER)
    conn.search(
        f"uid=jdoe,ou=people,{slapd.suffix}",
        "(objectClass=*)",
        ldap3.BASE,
        attributes=["entryUUID"],
    )
    assert len(str(conn.entries[0].entryUUID)) == 36
    conn.search("cn=accesslog", "(reqType=add)", attributes=["reqDN", "reqEntryUUID"])
    assert [str(e.reqDN) for e in conn.entries] == [f"uid=jdoe,ou=people,{slapd.suffix}"]


def test_slapd_reset_empties_data_and_log(slapd):
    conn = slapd.connect()
    conn.add(f"uid=jdoe,ou=people,{slapd.suffix}", ["inetOrgPerson"], USER)
    slapd.reset()
    conn = slapd.connect()
    assert _count(conn, slapd.suffix) == 3
    conn.search("cn=accesslog", "(reqType=add)", attributes=["reqDN"])
    assert conn.entries == []


def test_slapd_bulk_loads_sample_data(slapd, tmp_path):
    ldif = sampledata.write_ldif(tmp_path / "s.ldif", users=300, groups=10, seed=1)
    slapd.load_ldif(ldif)
    conn = slapd.connect()
    assert _count(conn, f"ou=people,{slapd.suffix}", "(objectClass=inetOrgPerson)") == 300
    assert _count(conn, f"ou=groups,{slapd.suffix}", "(objectClass=groupOfNames)") == 10
    assert _count(conn, f"ou=people,{slapd.suffix}", "(nsAccountLock=TRUE)") > 0


def test_dirsrv_has_retro_changelog_with_target_unique_id(dirsrv):
    conn = dirsrv.connect()
    conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["lastchangenumber", "changelog"])
    root = conn.response[0]["raw_attributes"]
    last = int(root["lastchangenumber"][0]) if root.get("lastchangenumber") else 0
    conn.add(f"uid=jdoe,ou=people,{dirsrv.suffix}", ["inetOrgPerson"], USER)
    conn.search("cn=changelog", f"(changeNumber>={last + 1})", attributes=["*"])
    adds = [e for e in conn.response if e["raw_attributes"]["changeType"] == [b"add"]]
    assert len(adds) == 1
    assert adds[0]["raw_attributes"]["targetUniqueId"][0]
    assert adds[0]["raw_attributes"]["targetDn"] == [f"uid=jdoe,ou=people,{dirsrv.suffix}".encode()]


def test_dirsrv_reset_keeps_only_base_tree(dirsrv):
    conn = dirsrv.connect()
    conn.add(f"uid=jdoe,ou=people,{dirsrv.suffix}", ["inetOrgPerson"], USER)
    dirsrv.reset()
    assert _count(dirsrv.connect(), dirsrv.suffix) == 3


def test_scim_server_serves_and_resets(scim_server):
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jdoe"}
    assert httpx.post(f"{scim_server.url}/Users", json=user).status_code == 201
    assert httpx.get(f"{scim_server.url}/Users").json()["totalResults"] == 1
    scim_server.reset()
    assert httpx.get(f"{scim_server.url}/Users").json()["totalResults"] == 0
    spc = httpx.get(f"{scim_server.url}/ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["bulk"]["supported"]
