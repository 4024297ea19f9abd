"""Pure logic of the LDAP layer: LDIF, changelog fragments, reqMod, filters, cursors, BER."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ldap3.protocol.rfc2696 import RealSearchControlValue
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    AttributeDescription,
    AttributeValue,
    Control,
    Controls,
    LDAPMessage,
    LDAPString,
    MessageID,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    ResultCode,
    SearchResultDone,
    SearchResultEntry,
    Vals,
)
from pyasn1.codec.ber import encoder

from toolkit.ldap.accesslog import AccesslogDetector, parse_reqmod, parse_reqold
from toolkit.ldap.changelog import ChangelogDetector
from toolkit.ldap.changes import (
    decode_cursor,
    encode_cursor,
    generalized_time,
    parent_dn,
    parse_generalized_time,
    renamed_dn,
)
from toolkit.ldap.errors import CursorError, LdifError
from toolkit.ldap.ldif import parse_changes, read_records
from toolkit.ldap.match import matches
from toolkit.ldap.prepare import (
    aci_for_data,
    olc_access_for_data,
    parse_389_age,
    parse_logpurge_age,
    ssha,
    sync_user_entry,
)
from toolkit.ldap.search import decode_done, decode_entry, request_attributes
from toolkit.ldap.spec import LdapServerSpec, SourceSpec

# --- LDIF ---------------------------------------------------------------------------------------

EXPORT = (
    "version: 1\n"
    "# an export\n"
    "#  with a folded\n"
    "  comment\n"
    "\n"
    "dn: uid=jdoe,ou=people,dc=example,dc=com\n"
    "objectClass: inetOrgPerson\n"
    "cn:: " + base64.b64encode("Jöhn Dœ".encode()).decode() + "\n"
    "description: a long value that is fol\n"
    " ded over two lines\n"
    "mail: j@example.com\n"
    "mail:  second@example.com\n"
    "jpegPhoto:: " + base64.b64encode(b"\xff\xd8\xff\x00binary").decode() + "\n"
    "\n"
    "\n"
    "dn:: " + base64.b64encode("cn=Zoë,ou=people,dc=example,dc=com".encode()).decode() + "\n"
    "objectClass: person\n"
    "cn: Zoë\n"
)


def test_ldif_reads_base64_folded_comments_and_version(tmp_path):
    path = tmp_path / "export.ldif"
    path.write_bytes(EXPORT.replace("\n", "\r\n").encode())
    records = list(read_records(path))
    assert [r.dn for r in records] == [
        "uid=jdoe,ou=people,dc=example,dc=com",
        "cn=Zoë,ou=people,dc=example,dc=com",
    ]
    first = records[0]
    assert first.attributes["cn"] == ["Jöhn Dœ"]
    assert first.attributes["description"] == ["a long value that is folded over two lines"]
    assert first.attributes["mail"] == ["j@example.com", "second@example.com"]
    assert first.attributes["jpegphoto"] == [b"\xff\xd8\xff\x00binary"]
    assert first.line == 6
    assert records[1].attributes["cn"] == ["Zoë"]


def test_ldif_reads_gzip_by_content(tmp_path):
    path = tmp_path / "export.data"  # no .gz suffix on purpose
    path.write_bytes(gzip.compress(EXPORT.encode()))
    assert len(list(read_records(path))) == 2


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "dn: cn=a,dc=x\ncn: a\n\ndn: cn=b,dc=x\nchangetype: modify\nreplace: cn\ncn: b\n",
            5,
            "change record (modify)",
        ),
        ("dn: cn=a,dc=x\ncn:: not*base64\n", 2, "invalid base64"),
        ("cn: a\n", 1, "must start with 'dn:'"),
        ("dn: cn=a,dc=x\nno colon here\n", 2, "expected 'attribute: value'"),
        ("version: 2\ndn: cn=a,dc=x\n", 1, "unsupported LDIF version"),
        (" folded first\n", 1, "continuation line"),
    ],
)
def test_ldif_errors_name_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.ldif"
    path.write_text(text)
    with pytest.raises(LdifError) as err:
        list(read_records(path))
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


def test_ldif_missing_file_is_an_ldif_error(tmp_path):
    with pytest.raises(LdifError, match="cannot read LDIF file"):
        list(read_records(tmp_path / "nope.ldif"))


# --- 389-DS `changes` fragments and accesslog reqMod ------------------------------------------


def test_parse_changes_modify_with_base64_fold_and_nul():
    raw = (
        b"replace: mail\nmail: john.doe@example.com\n-\nadd: cn\ncn:: "
        + base64.b64encode("Jöhn".encode())
        + b"\n-\nadd: description\ndescription: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n bbb\n-\n"
        b"delete: title\n-\nreplace: modifiersname\nmodifiersname: cn=directory manager\n-\n\x00"
    )
    mods = parse_changes(raw, "modify")
    assert [(m.op, m.attribute, m.values) for m in mods] == [
        ("replace", "mail", ["john.doe@example.com"]),
        ("add", "cn", ["Jöhn"]),
        ("add", "description", ["a" * 73 + "bbb"]),
        ("delete", "title", []),
        ("replace", "modifiersname", ["cn=directory manager"]),
    ]


def test_parse_changes_add_groups_values_by_attribute():
    mods = parse_changes("objectClass: top\nobjectClass: person\ncn: a\nsn: b\n", "add")
    assert [(m.op, m.attribute, m.values) for m in mods] == [
        ("add", "objectClass", ["top", "person"]),
        ("add", "cn", ["a"]),
        ("add", "sn", ["b"]),
    ]


def test_parse_changes_rejects_a_modify_without_operation():
    with pytest.raises(ValueError, match="changes line 1"):
        parse_changes(b"mail: x\n", "modify")


def test_parse_reqmod_and_reqold():
    mods = parse_reqmod(
        [b"mail:= a@x", b"mail:= b@x", b"title:+ Eng", b"photo:+ \xff\x00", b"sn:-", b"n:# 1"]
    )
    assert [(m.op, m.attribute, m.values) for m in mods] == [
        ("replace", "mail", ["a@x", "b@x"]),
        ("add", "title", ["Eng"]),
        ("add", "photo", [b"\xff\x00"]),
        ("delete", "sn", []),
        ("increment", "n", ["1"]),
    ]
    assert parse_reqold([b"mail: a@x", b"cn: line\nbreak"]) == {
        "mail": ["a@x"],
        "cn": ["line\nbreak"],
    }


# --- filters ----------------------------------------------------------------------------------

ENTRY = {
    "dn": "uid=jdoe,ou=people,dc=example,dc=com",
    "objectclass": ["top", "inetOrgPerson"],
    "uid": ["jdoe"],
    "cn": ["John  Doe"],
    "cn;lang-fr": ["Jean Dupont"],
    "mail": ["JDoe@Example.com", "john@corp.example.com"],
    "employeenumber": ["42"],
    "useraccountcontrol": ["514"],
    "jpegphoto": [b"\xff\xd8"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(objectClass=inetorgperson)", True),
        ("(OBJECTCLASS=INETORGPERSON)", True),
        ("(cn=john doe)", True),
        ("(cn=jean dupont)", True),
        ("(cn;lang-fr=Jean Dupont)", True),
        ("(cn;lang-fr=John Doe)", False),
        ("(mail=jdoe@example.com)", True),
        ("(mail=*@corp.example.com)", True),
        ("(mail=j*e*@*.com)", True),
        ("(mail=x*)", False),
        ("(cn=j*n*n)", False),
        ("(uid=*)", True),
        ("(title=*)", False),
        ("(employeeNumber>=5)", True),  # numbers compare as numbers
        ("(employeeNumber<=41)", False),
        ("(&(uid=jdoe)(!(mail=x@y)))", True),
        ("(|(uid=nobody)(uid=jdoe))", True),
        ("(&(uid=jdoe)(|(uid=a)(uid=b)))", False),
        ("(uid=j\\2a)", False),  # an escaped star is not a wildcard
        ("(userAccountControl:1.2.840.113556.1.4.803:=2)", True),
        ("(userAccountControl:1.2.840.113556.1.4.803:=1)", False),
        ("(ou:dn:=people)", True),
        ("(uid:caseExactMatch:=JDOE)", False),
        ("(cn~=john doe)", True),
    ],
)
def test_filter_matches_like_a_directory(text, expected):
    assert matches(ENTRY, text) is expected


def test_filter_errors_name_the_position():
    with pytest.raises(ValueError, match="unbalanced parenthesis"):
        matches(ENTRY, "(&(uid=jdoe)")


# --- cursors, DNs, specs ----------------------------------------------------------------------


def test_cursor_round_trip_and_foreign_cursor_refused():
    cursor = encode_cursor("changelog", next=5)
    assert json.loads(cursor) == {"detector": "changelog", "next": 5}
    assert decode_cursor(cursor, "changelog")["next"] == 5
    with pytest.raises(
        CursorError, match="belongs to the changelog change detector, not accesslog"
    ):
        decode_cursor(cursor, "accesslog")
    with pytest.raises(CursorError, match="not a change detector cursor"):
        decode_cursor("garbage", "accesslog")


def test_accesslog_cursor_keeps_a_late_window():
    detector = AccesslogDetector([LdapServerSpec("127.0.0.1", 1)], late_window=timedelta(seconds=2))
    cursor = json.loads(
        detector._cursor_after(
            None, {"20261128155810.000001Z", "20261128155817.000009Z", "20261128155816.000002Z"}
        )
    )
    assert cursor["start"] == "20261128155815.000000Z"
    assert cursor["seen"] == ["20261128155816.000002Z", "20261128155817.000009Z"]


def test_change_number_cursors_only_for_changelog():
    detector = ChangelogDetector([LdapServerSpec("127.0.0.1", 1)])
    assert json.loads(detector.cursor_at_change_number(7)) == {"detector": "changelog", "next": 7}
    with pytest.raises(ValueError):
        detector.cursor_at_change_number(0)
    with pytest.raises(CursorError, match="no change numbers"):
        AccesslogDetector([LdapServerSpec("127.0.0.1", 1)]).cursor_at_change_number(3)


def test_renamed_and_parent_dn_respect_escapes():
    assert parent_dn("cn=Doe\\, John,ou=people,dc=x") == "ou=people,dc=x"
    assert renamed_dn("uid=a,ou=people,dc=x", "uid=b", None) == "uid=b,ou=people,dc=x"
    assert renamed_dn("uid=a,ou=people,dc=x", "uid=a", "ou=other,dc=x") == "uid=a,ou=other,dc=x"


def test_specs_validate_choices_and_hide_password():
    spec = LdapServerSpec("h", 636, "ssl", "cn=a", "s3cret", name="ds1")
    assert spec.url == "ldaps://h:636" and spec.label == "ds1 (ldaps://h:636)"
    assert "s3cret" not in repr(spec)
    with pytest.raises(ValueError, match="connection_security"):
        LdapServerSpec("h", 1, "tls")
    with pytest.raises(ValueError, match="change_detector"):
        SourceSpec(["dc=x"], [spec], change_detector="polling")
    with pytest.raises(ValueError, match="at least one server"):
        SourceSpec(["dc=x"], [])


def test_request_attributes_adds_the_unique_id_once():
    assert request_attributes(None, "entryUUID") == ["*", "entryUUID"]
    assert request_attributes(["cn", "entryuuid"], "entryUUID") == ["cn", "entryuuid"]
    assert request_attributes(["1.1"], "entryUUID") == ["1.1"]


# --- prepare-endpoint-server pure parts -------------------------------------------------------


def test_retention_parsers():
    assert parse_389_age("7d") == 7 * 86400
    assert parse_389_age("12h") == 12 * 3600
    assert parse_389_age("3600") == 3600
    assert parse_389_age("soon") is None
    assert parse_logpurge_age("07+00:00 01+00:00") == 7 * 86400
    assert parse_logpurge_age("12:30") == 12 * 3600 + 30 * 60
    assert parse_logpurge_age("") is None


def _ssha_matches(value: str, password: str) -> bool:
    """Whether an {SSHA} value verifies against password, as the server checks it."""
    assert value.startswith("{SSHA}")
    raw = base64.b64decode(value[6:])
    digest, salt = raw[:20], raw[20:]
    return hashlib.sha1(password.encode() + salt).digest() == digest


def test_sync_user_entry_and_rules():
    classes, attrs = sync_user_entry("cn=scimsync,ou=services,dc=x", "pw", "openldap")
    assert "simpleSecurityObject" in classes and attrs["cn"] == ["scimsync"]
    assert _ssha_matches(attrs["userPassword"][0], "pw")
    classes, attrs = sync_user_entry("uid=sync,dc=x", "pw", "389")
    assert "account" in classes and attrs["userPassword"] == ["pw"]
    with pytest.raises(ValueError, match="must start with cn= or uid="):
        sync_user_entry("ou=sync,dc=x", "pw", "389")
    assert 'userdn = "ldap:///cn=s,dc=x"' in aci_for_data("cn=s,dc=x")
    assert olc_access_for_data("cn=s,dc=x")[0].startswith(
        'to attrs=userPassword by dn.exact="cn=s,dc=x" none'
    )
    salted = base64.b64decode(ssha("secret")[6:])
    assert len(salted) == 28  # SHA-1 digest + 8 bytes of salt
    assert _ssha_matches(ssha("secret"), "secret") and not _ssha_matches(ssha("secret"), "other")


# --- the BER decoder on PDUs encoded by ldap3's own ASN.1 definitions -------------------------


def _entry_pdu(dn: str, attributes: dict[str, list[bytes]]) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    attrs = PartialAttributeList()
    for i, (name, values) in enumerate(attributes.items()):
        attr = PartialAttribute()
        attr["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals.setComponentByPosition(j, AttributeValue(value))
        attr["vals"] = vals
        attrs.setComponentByPosition(i, attr)
    entry["attributes"] = attrs
    message = LDAPMessage()
    message["messageID"] = MessageID(3)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchResEntry", entry)
    return encoder.encode(message)


def _content_start(pdu: bytes) -> int:
    """Position of the SearchResultEntry's contents in an encoded LDAPMessage."""
    p = 2 if pdu[1] < 0x80 else 2 + (pdu[1] & 0x7F)
    p += 2 + pdu[p + 1]  # messageID
    length = pdu[p + 1]
    return p + 2 + ((length & 0x7F) if length & 0x80 else 0)


def test_decode_entry_handles_long_lengths_binary_and_repeated_names():
    big = b"x" * 70_000
    pdu = _entry_pdu(
        "cn=Zoë,dc=x".encode().decode(),
        {"cn": ["Zoë".encode()], "jpegPhoto": [b"\xff\xd8" + big], "Mail": [b"a@x", b"b" * 200]},
    )
    entry = decode_entry(pdu, _content_start(pdu), len(pdu), {})
    assert entry["dn"] == "cn=Zoë,dc=x"
    assert entry["cn"] == ["Zoë"]
    assert entry["jpegphoto"] == [b"\xff\xd8" + big]
    assert entry["mail"] == ["a@x", "b" * 200]


def test_equal_values_of_a_read_share_one_object_up_to_a_bound(monkeypatch):
    import toolkit.ldap.search as search

    monkeypatch.setattr(search, "SHARED_VALUES", 3)
    shared: search.Shared = {}
    names: dict[bytes, str] = {}
    entries = []
    for i in range(6):
        pdu = _entry_pdu(
            f"uid=u{i},dc=x",
            {"title": [b"Engineer"], "uid": [f"u{i}".encode()], "photo": [b"\xff\x00"]},
        )
        entries.append(decode_entry(pdu, _content_start(pdu), len(pdu), names, shared))
    assert [e["uid"] for e in entries] == [[f"u{i}"] for i in range(6)]
    assert all(e["title"] == ["Engineer"] for e in entries)
    assert len({id(e["title"][0]) for e in entries}) == 1  # one object for all six
    assert all(e["photo"] == [b"\xff\x00"] for e in entries)  # binary values too
    assert len(shared["uid"]) == 3  # unique values stop being remembered at the bound
    assert entries[0]["title"] is not entries[1]["title"]  # each entry has its own list


def test_decode_done_reads_code_message_and_paged_cookie():
    done = SearchResultDone()
    done["resultCode"] = ResultCode(4)
    done["matchedDN"] = LDAPDN("")
    done["diagnosticMessage"] = LDAPString("size limit")
    value = RealSearchControlValue()
    value["size"] = 0
    value["cookie"] = b"\x01\x02cookie"
    control = Control()
    control["controlType"] = "1.2.840.113556.1.4.319"
    control["controlValue"] = encoder.encode(value)
    controls = Controls()
    controls.setComponentByPosition(0, control)
    message = LDAPMessage()
    message["messageID"] = MessageID(9)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchResDone", done)
    message["controls"] = controls
    pdu = encoder.encode(message)
    p = 2 if pdu[1] < 0x80 else 2 + (pdu[1] & 0x7F)
    p += 2 + pdu[p + 1]
    assert decode_done(pdu, p, len(pdu)) == (4, "size limit", b"\x01\x02cookie")


def test_generalized_times_are_utc():
    when = datetime(2026, 11, 28, 16, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert generalized_time(when) == "20261128150005"
    assert parse_generalized_time("20261128150005.000009Z") == datetime(
        2026, 11, 28, 15, 0, 5, tzinfo=UTC
    )
    assert parse_generalized_time("junk") is None


def test_changelog_record_with_an_entryuuid_target_unique_id():
    """PingDirectory-style records: targetUniqueID is the entryUUID; changeInitiatorsName names the writer."""
    detector = ChangelogDetector([LdapServerSpec("127.0.0.1", 1)], ["CN=Sync, DC=x"])
    record = {
        "changenumber": [b"42"],
        "targetdn": [b"uid=a,ou=p,dc=x"],
        "changetype": [b"modrdn"],
        "newrdn": [b"uid=b"],
        "deleteoldrdn": [b"FALSE"],
        "newsuperior": [b"ou=q,dc=x"],
        "targetuniqueid": [b"4534477a-7f90-1041-82e7-c9f383529cff"],
        "changeinitiatorsname": [b"cn=sync,dc=x"],
        "changetime": [b"20261128161619Z"],
    }
    change = detector.to_change(record)
    assert (change.kind, change.dn, change.new_dn) == (
        "modrdn",
        "uid=a,ou=p,dc=x",
        "uid=b,ou=q,dc=x",
    )
    assert change.entry_uuid == change.unique_id == "4534477a-7f90-1041-82e7-c9f383529cff"
    assert change.unique_id_attribute == "entryuuid" and change.delete_old_rdn is False
    assert change.time == datetime(2026, 11, 28, 16, 16, 19, tzinfo=UTC)
    assert json.loads(change.cursor) == {"detector": "changelog", "next": 43}
    assert detector.is_ignored(change.modifier_dn)
    record["changetype"] = [b"undelete"]
    assert detector.to_change(record) is None  # not a change kind a sync acts on
