"""Connections, failover and paged reads against the real slapd (and 389-DS)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import ldap3
import pytest

from toolkit.lab import sampledata
from toolkit.lab.process import free_port
from toolkit.lab.slapd import Slapd
from toolkit.ldap import (
    LdapBindError,
    LdapConnectError,
    LdapOperationError,
    LdapRetriableOperationError,
    LdapServerSpec,
    LdapSource,
    SourceSpec,
    connect_first,
)

PEOPLE = "ou=people,dc=example,dc=com"


def spec_of(
    server, bind_dn: str | None = None, password: str | None = None, **kw
) -> LdapServerSpec:
    return LdapServerSpec(
        server.host,
        server.port,
        bind_dn=bind_dn or server.admin_dn,
        password=password if password is not None else server.admin_password,
        name=kw.pop("name", "test-ds"),
        **kw,
    )


def dead_spec() -> LdapServerSpec:
    return LdapServerSpec(
        "127.0.0.1", free_port(), bind_dn="cn=x", password="y", name="dead", connect_timeout=2
    )


def load_users(slapd, tmp_path, users: int) -> None:
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "users.ldif", users=users, groups=0))


def test_failover_skips_a_dead_first_server(slapd):
    started = time.monotonic()
    conn, used = connect_first([dead_spec(), spec_of(slapd, name="live")])
    try:
        assert used.name == "live"
        assert conn.extend.standard.who_am_i() == f"dn:{slapd.admin_dn}"
    finally:
        conn.unbind()
    assert time.monotonic() - started < 2


def test_all_servers_dead_names_each(slapd):
    first, second = dead_spec(), replace(dead_spec(), name="dead2")
    with pytest.raises(LdapConnectError) as err:
        connect_first([first, second])
    assert first.url in str(err.value) and second.url in str(err.value)


def test_wrong_password_is_fatal_names_server_and_dn_not_password(slapd):
    secret = "Wrong-Password-123"
    with pytest.raises(LdapBindError) as err:
        connect_first([spec_of(slapd, password=secret), spec_of(slapd, name="second")])
    message = str(err.value)
    assert slapd.admin_dn in message and slapd.url in message and "invalid credentials" in message
    assert secret not in message


def test_paged_read_across_many_pages_matches_plain_ldap3(slapd, tmp_path):
    load_users(slapd, tmp_path, 2500)
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=100))
    ours = {e["dn"]: e for e in source.iter_entries(PEOPLE, "(objectClass=inetOrgPerson)")}
    assert len(ours) == 2500
    conn = slapd.connect()
    plain = list(
        conn.extend.standard.paged_search(
            PEOPLE,
            "(objectClass=inetOrgPerson)",
            attributes=["*", "entryUUID"],
            paged_size=500,
            generator=True,
        )
    )
    assert len(plain) == 2500
    for item in plain:
        entry = ours[item["dn"]]
        expected = {
            k.lower(): sorted(v.decode() for v in vs) for k, vs in item["raw_attributes"].items()
        }
        assert {k: sorted(v) for k, v in entry.items() if k != "dn"} == expected
    assert all(len(e["entryuuid"][0]) == 36 for e in ours.values())


def test_concurrent_reads_each_have_their_own_connection(slapd, tmp_path):
    load_users(slapd, tmp_path, 600)
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=50))
    a = source.iter_entries(PEOPLE, "(uid=*)", ["uid"])
    b = source.iter_entries(PEOPLE, "(objectClass=*)", ["cn"])
    seen_a, seen_b = [], []
    for x in a:  # interleaved: OpenLDAP would cut one read short if they shared a connection
        seen_a.append(x)
        seen_b.extend([y] if (y := next(b, None)) is not None else [])
    seen_b.extend(b)
    assert len(seen_a) == 600 and len(seen_b) == 601  # ou=people itself matches objectClass=*
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(sum(1 for _ in source.iter_entries(PEOPLE))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [601, 601, 601]


def test_binary_and_large_values_round_trip(slapd):
    conn = slapd.connect()
    photo = bytes(range(256)) * 400  # 100 KB, not UTF-8
    long_text = "Zoë " * 20_000
    dn = f"uid=photo,{PEOPLE}"
    conn.add(
        dn,
        ["inetOrgPerson"],
        {
            "uid": "photo",
            "cn": "Zoë Ångström",
            "sn": "A",
            "jpegPhoto": photo,
            "description": long_text,
        },
    )
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)]))
    [entry] = list(source.iter_entries(PEOPLE, "(uid=photo)"))
    assert entry["jpegphoto"] == [photo]
    assert entry["description"] == [long_text]
    assert entry["cn"] == ["Zoë Ångström"]
    assert source.get_entry(dn)["jpegphoto"] == [photo]


def test_missing_base_dn_raises_instead_of_reading_nothing(slapd):
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)]))
    with pytest.raises(LdapOperationError) as err:
        list(source.iter_entries("ou=nowhere,dc=example,dc=com"))
    assert (
        err.value.result_code == 32
        and "noSuchObject" in str(err.value)
        and "incomplete" in str(err.value)
    )


def test_server_dying_mid_read_raises(slapd, tmp_path):
    load_users(slapd, tmp_path, 2500)
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=100))
    read = 0
    with pytest.raises(LdapRetriableOperationError, match="incomplete"):
        for _ in source.iter_entries(PEOPLE):
            read += 1
            if read == 150:
                slapd.stop()
    assert 150 <= read < 2500
    slapd.start()


def test_size_limit_for_non_root_bind_raises(tmp_path):
    """A server-side size limit (slapd's default 500 for non-root DNs) must fail the read."""
    server = Slapd(tmp_path / "limited").create()
    server.conf.write_text(server.conf.read_text().replace("sizelimit unlimited", "sizelimit 500"))
    load_users(server, tmp_path, 700)
    server.start()
    try:
        reader_dn = f"uid=reader,{PEOPLE}"
        conn = server.connect()
        conn.add(
            reader_dn,
            ["inetOrgPerson"],
            {"uid": "reader", "cn": "r", "sn": "r", "userPassword": "Reader-Pass-1"},
        )
        source = LdapSource(
            SourceSpec(
                [server.suffix], [spec_of(server, reader_dn, "Reader-Pass-1")], page_size=100
            )
        )
        read = 0
        with pytest.raises(LdapOperationError) as err:
            for _ in source.iter_entries(PEOPLE):
                read += 1
        assert err.value.result_code == 4 and "sizeLimitExceeded" in str(err.value)
        assert read <= 500
        admin = LdapSource(SourceSpec([server.suffix], [spec_of(server)], page_size=100))
        assert sum(1 for _ in admin.iter_entries(PEOPLE)) == 702  # the root DN has no limit
    finally:
        server.stop()


def test_lookups_by_dn_and_unique_id(slapd):
    conn = slapd.connect()
    dn = f"uid=jdoe,{PEOPLE}"
    conn.add(dn, ["inetOrgPerson"], {"uid": "jdoe", "cn": "John (Doe)*", "sn": "Doe"})
    with LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)])) as source:
        entry = source.get_entry(dn)
        assert entry["cn"] == ["John (Doe)*"] and "entryuuid" in entry
        assert source.get_entry(f"uid=none,{PEOPLE}") is None
        assert [e["dn"] for e in source.find_entries("entryUUID", entry["entryuuid"][0])] == [dn]
        assert [e["dn"] for e in source.find_entries("cn", "John (Doe)*")] == [dn]  # value escaped
        slapd.stop()
        slapd.start()  # the look-up connection broke: the next look-up reconnects
        assert source.get_entry(dn, ["cn"])["cn"] == ["John (Doe)*"]


def test_reads_389_with_paging(dirsrv):
    conn = dirsrv.connect()
    for i in range(230):
        conn.add(
            f"uid=u{i},{PEOPLE}", ["inetOrgPerson"], {"uid": f"u{i}", "cn": f"U {i}", "sn": "U"}
        )
    source = LdapSource(SourceSpec([dirsrv.suffix], [spec_of(dirsrv)], page_size=40))
    entries = list(source.iter_entries(PEOPLE, "(objectClass=inetOrgPerson)", ["uid"]))
    assert sorted(e["uid"][0] for e in entries) == sorted(f"u{i}" for i in range(230))
    assert all("entryuuid" in e for e in entries)


def test_starttls_against_a_server_without_tls_fails_closed(slapd):
    from toolkit.ldap import LdapTlsError, connect

    with pytest.raises((LdapTlsError, LdapConnectError)):
        connect(spec_of(slapd, connection_security="starttls"))


def test_plain_ldap3_still_works_on_our_connections(slapd):
    conn, _ = connect_first([spec_of(slapd)])
    conn.search(slapd.suffix, "(ou=people)", ldap3.SUBTREE, attributes=["ou"])
    assert [e.entry_dn for e in conn.entries] == [PEOPLE]


def test_tiny_pages_read_exactly_once_each(slapd, tmp_path):
    """Pages smaller than one network read: the next page is requested while entries remain."""
    load_users(slapd, tmp_path, 600)
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=3))
    dns = [e["dn"] for e in source.iter_entries(PEOPLE, "(objectClass=inetOrgPerson)", ["uid"])]
    assert len(dns) == len(set(dns)) == 600


def test_stopping_early_closes_the_connection_and_later_reads_work(slapd, tmp_path):
    load_users(slapd, tmp_path, 300)
    source = LdapSource(SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=50))
    reader = source.iter_entries(PEOPLE)
    first = [next(reader) for _ in range(120)]
    reader.close()
    assert len({e["dn"] for e in first}) == 120
    assert sum(1 for _ in source.iter_entries(PEOPLE)) == 301
