"""Active Directory's data forms (toolkit.ldap.ad) and reading them from a real Samba AD DC:
objectGUID in string form as the key, filters on it, ranged member values, extended DNs,
binds by DN and UPN, LDAPS and StartTLS with the DC's certificate checked."""

from __future__ import annotations

import uuid

import pytest

from toolkit.entry import entry_key
from toolkit.lab.samba import ENABLED
from toolkit.ldap import LdapServerSpec, LdapSource, SourceSpec
from toolkit.ldap.ad import (
    complete_ranges,
    filter_value,
    guid_bytes,
    guid_text,
    parse_extended_dn,
    ranged_name,
)
from toolkit.ldap.connection import connect
from toolkit.ldap.errors import LdapTlsError

BASE = "DC=example,DC=test"
PEOPLE = f"OU=People,{BASE}"


def test_guid_forms_round_trip():
    raw = bytes(range(16))
    text = guid_text(raw)
    assert text == "03020100-0504-0706-0809-0a0b0c0d0e0f"  # little-endian first three fields
    assert guid_bytes(text) == raw and guid_bytes("{" + text.upper() + "}") == raw
    # a GUID whose bytes happen to be UTF-8 is read as text: the same GUID
    assert guid_text(raw.decode("ascii")) == text
    accented = b"\xc3\xa9" * 8
    assert guid_text(accented.decode()) == guid_text(accented)
    assert filter_value("objectGUID", text) == "".join(f"\\{b:02x}" for b in raw)
    assert filter_value("mail", "x") is None
    with pytest.raises(ValueError):
        guid_text(b"short")


def test_extended_dns_and_ranged_names_parse():
    guid = str(uuid.uuid4())
    parsed = parse_extended_dn(f"<GUID={guid}>;<SID=S-1-5-21-1-2-3-1105>;CN=a\\,b,OU=People,{BASE}")
    assert (parsed.dn, parsed.guid, parsed.sid) == (
        f"CN=a\\,b,OU=People,{BASE}",
        guid,
        "S-1-5-21-1-2-3-1105",
    )
    assert parse_extended_dn(f"CN=x,{BASE}").dn == f"CN=x,{BASE}"
    assert ranged_name("member;range=0-1499") == ("member", 0, 1499)
    assert ranged_name("Member;Range=1500-*") == ("member", 1500, None)
    assert ranged_name("member") is None


def test_complete_ranges_refuses_a_gap():
    entry = {"dn": "CN=g", "member;range=0-1": ["a", "b"]}
    with pytest.raises(ValueError, match="starts at 5"):
        complete_ranges(entry, lambda dn, want: {"member;range=5-*": ["f"]})


def _spec(samba, **server) -> SourceSpec:
    options = {"bind_dn": samba.admin_dn, "password": samba.admin_password, **server}
    return SourceSpec(
        base_dns=[BASE],
        servers=[LdapServerSpec(samba.host, options.pop("port", 389), **options)],
        unique_id_attribute="objectGUID",
    )


def _group_of(samba, size: int) -> list[str]:
    conn = samba.connect()
    conn.add(PEOPLE, ["top", "organizationalUnit"])
    dns = [f"CN=m{i:04d},{PEOPLE}" for i in range(size)]
    for i, dn in enumerate(dns):
        conn.add(
            dn,
            ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": f"m{i:04d}", "userAccountControl": ENABLED},
        )
    conn.add(f"CN=big,{PEOPLE}", ["top", "group"], {"sAMAccountName": "big", "member": dns})
    conn.unbind()
    return dns


def test_objectguid_is_the_key_and_finds_the_entry(samba):
    _group_of(samba, 3)
    with LdapSource(_spec(samba)) as source:
        users = list(source.iter_entries(PEOPLE, "(objectClass=user)", ["sAMAccountName"]))
        assert len(users) == 3
        for user in users:
            guid = user["objectguid"][0]
            assert entry_key(user) == guid == str(uuid.UUID(guid))
            (found,) = source.find_entries("objectGUID", guid, ["sAMAccountName"])
            assert found["dn"] == user["dn"]


def test_ranged_member_values_are_read_to_the_end(samba):
    """Windows AD returns 1,500 values a read (`member;range=0-1499`); Samba returns every
    value unless asked for a range, so the bulk read asks for the first range as AD would
    send it, and must come back with every member (look-ups go through ldap3, which follows
    ranges itself: auto_range)."""
    dns = _group_of(samba, 1600)
    with LdapSource(_spec(samba)) as source:
        (entry,) = source.iter_entries(PEOPLE, "(objectClass=group)", ["member;range=0-1499"])
        assert sorted(entry["member"]) == sorted(dns)
        assert not [name for name in entry if ";" in name]
        (looked_up,) = source.find_entries("sAMAccountName", "big", ["member"])
        assert sorted(looked_up["member"]) == sorted(dns)


@pytest.mark.parametrize("who", ["dn", "upn"])
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_binds_by_dn_or_upn_over_tls_with_the_certificate_checked(samba, who, security):
    samba.connect().unbind()  # (the DC writes its CA at its first start)
    bind = samba.admin_dn if who == "dn" else f"administrator@{samba.realm.lower()}"
    spec = LdapServerSpec(
        samba.host,
        636 if security == "ssl" else 389,
        connection_security=security,
        bind_dn=bind,
        password=samba.admin_password,
        trust_ca_file=samba.ca_file,
        hostname_verification="allow-all",  # the certificate names DC1.example.test, not the IP
    )
    conn = connect(spec)
    assert conn.bound
    conn.unbind()


def test_tls_refuses_a_certificate_not_issued_by_the_trusted_ca(samba, tmp_path):
    samba.connect().unbind()
    other = tmp_path / "other-ca.pem"
    other.write_text((samba.ca_file.parent / "cert.pem").read_text())  # not the CA itself
    spec = LdapServerSpec(
        samba.host, 636, connection_security="ssl", bind_dn=samba.admin_dn,
        password=samba.admin_password, trust_ca_file=other,
    )  # fmt: skip
    with pytest.raises(LdapTlsError):
        connect(spec)
