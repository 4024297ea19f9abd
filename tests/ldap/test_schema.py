"""The directory's schema: attribute type definitions parsed, and read from the real slapd and
389-DS (every NAME, the OID, any case, options stripped, syntaxes through SUP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.lab.slapd import Slapd
from toolkit.ldap import LdapServerSpec
from toolkit.ldap.schema import (
    AttributeType,
    DirectorySchema,
    SchemaUnavailable,
    parse_attribute_type,
    read_schema,
)
from toolkit.mapping import load_mapping
from toolkit.sync.mappingcheck import unknown_attributes

DATA = Path(__file__).parents[1] / "data" / "mapping"

DEFINITIONS = [
    (
        "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )",
        AttributeType("2.5.4.3", ("cn", "commonName"), None, "name"),
    ),
    (
        "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
        AttributeType("2.5.4.41", ("name",), "1.3.6.1.4.1.1466.115.121.1.15"),  # length cut
    ),
    (  # keywords inside DESC are text, not the definition's
        "( 1.2.3 NAME 'x' DESC 'not SUP cn, nor SYNTAX 1.1 nor NAME y' "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 USAGE directoryOperation X-ORIGIN 'test' )",
        AttributeType("1.2.3", ("x",), "1.3.6.1.4.1.1466.115.121.1.40", None, "directoryOperation"),
    ),
    (  # 389-DS writes two spaces after NAME and quoted OIDs are allowed
        "( 2.5.4.12 NAME 'title'  SUP name EQUALITY caseIgnoreMatch "
        "SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' X-ORIGIN 'RFC 4519' )",
        AttributeType("2.5.4.12", ("title",), "1.3.6.1.4.1.1466.115.121.1.15", "name"),
    ),
    ("( 1.2.4 )", AttributeType("1.2.4", ())),
    ("not a definition", None),
]


@pytest.mark.parametrize(("text", "expected"), DEFINITIONS)
def test_attribute_type_definitions(text, expected):
    assert parse_attribute_type(text) == expected


def test_lookups_by_name_alias_oid_case_and_options():
    schema = DirectorySchema.from_definitions([d for d, _ in DEFINITIONS])
    table = [
        ("cn", "2.5.4.3"),
        ("commonName", "2.5.4.3"),
        ("COMMONNAME", "2.5.4.3"),
        ("2.5.4.3", "2.5.4.3"),
        ("cn;lang-de", "2.5.4.3"),
        ("title;x-option;binary", "2.5.4.12"),
        ("x", "1.2.3"),
        ("nosuch", None),
        ("", None),
    ]
    for name, oid in table:
        found = schema.get(name)
        assert (found.oid if found else None) == oid, name
    # syntaxes through SUP (cn has none of its own), octets told from text
    assert schema.syntax_of("commonName") == "1.3.6.1.4.1.1466.115.121.1.15"
    assert not schema.is_binary("cn")
    assert schema.is_binary("x")
    assert schema.syntax_of("1.2.4") is None and not schema.is_binary("nosuch")


# name -> defined, binary: on both servers
EXPECTED = [
    ("title", True, False),
    ("TITLE", True, False),
    ("commonName", True, False),
    ("member;range=0-1499", True, False),
    ("userCertificate;binary", True, True),
    ("jpegPhoto", True, True),
    ("entryUUID", True, False),
    ("modifyTimestamp", True, False),
    ("objectClass", True, False),
    ("nsAccountLock", True, False),
    ("noSuchAttrXyz", False, False),
]


@pytest.mark.parametrize("kind", ["slapd", "dirsrv"])
def test_schema_read_from_each_server(request, kind):
    server = request.getfixturevalue(kind)
    spec = LdapServerSpec(server.host, server.port, name=kind)
    schema = read_schema([spec])
    assert len(schema.types) > 200
    assert schema.where.startswith(f"{kind} (ldap://")
    for name, defined, binary in EXPECTED:
        assert (schema.defines(name), schema.is_binary(name)) == (defined, binary), name
    # the built-in mapping and Ping's samples name nothing these servers lack
    for mapping in (None, DATA / "resources.xml", DATA / "resources-entryDN.xml"):
        assert unknown_attributes(load_mapping(mapping), schema) == [], mapping


def test_schema_hidden_from_the_user_is_said_so(tmp_path):
    server = Slapd(tmp_path / "slapd").create()
    conf = server.conf.read_text()
    # a global rule before the databases: the subschema subentry is read by nobody
    server.conf.write_text(
        conf.replace(
            "database  mdb", 'access to dn.base="cn=Subschema" by * none\n\ndatabase  mdb', 1
        )
    )
    server.start()
    try:
        spec = LdapServerSpec(server.host, server.port)
        with pytest.raises(SchemaUnavailable, match="shows anonymous no attribute types"):
            read_schema([spec])
    finally:
        server.stop()


def test_ordering_and_single_value_tell_an_ordered_attribute():
    schema = DirectorySchema.from_definitions(
        [
            "( 1.3.6.1.1.16.4 NAME 'entryUUID' DESC 'UUID of the entry' EQUALITY UUIDMatch "
            "ORDERING UUIDOrderingMatch SYNTAX 1.3.6.1.1.16.1 SINGLE-VALUE "
            "NO-USER-MODIFICATION USAGE directoryOperation )",
            "( 2.16.840.1.113730.3.1.542 NAME 'nsUniqueId' DESC 'ORDERING x SINGLE-VALUE' "
            "EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
            "( 9.9 NAME 'rank' ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )",
        ]
    )
    uuid = schema.get("entryuuid")
    assert uuid is not None and (uuid.ordering, uuid.single_value) == ("UUIDOrderingMatch", True)
    assert schema.is_ordered("entryUUID")
    assert not schema.is_ordered("nsUniqueId")  # no ORDERING (DESC text does not count)
    assert not schema.is_ordered("rank")  # multi-valued: a range would hold it twice
    assert not schema.is_ordered("missing")
