"""Ping's two example scim-resources.xml files drive a SCIM 2.0 target unchanged.

The expected SCIM JSON below is derived by hand from the XML (tests/data/mapping/resources.xml):
userName<-uid, name.formatted<-cn, familyName<-sn, givenName<-givenName, displayName, title,
userType<-employeeType, preferredLanguage, password<-userPassword (write-only), emails work<-mail,
phoneNumbers work/home/mobile/fax/pager (TelephoneNumberTransformation), addresses work
(formatted<-postalAddress via PostalAddressTransformation, street, l, st, postalCode) and home
(homePostalAddress), groups (derived, read-only), enterprise employeeNumber, organization<-o,
division<-ou, department<-departmentNumber, manager (derived; SCIM 1.1 managerId -> value).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config.mappingfile import validate_mapping_file
from toolkit.errors import SkippableError
from toolkit.mapping import DictResolver, load_mapping

DATA = Path(__file__).parents[1] / "data" / "mapping"
RESOURCES = DATA / "resources.xml"
RESOURCES_DN = DATA / "resources-entryDN.xml"

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

BJENSEN = {
    "dn": "uid=bjensen,ou=people,dc=example,dc=com",
    "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
    "entryUUID": ["6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a"],
    "UID": ["bjensen"],  # attribute names are case-insensitive
    "cn": ["Barbara Jensen", "Babs Jensen"],
    "sn": ["Jensen"],
    "givenname": ["Barbara"],
    "displayName": ["Babs"],
    "title": ["Vice President"],
    "employeeType": ["Employee"],
    "preferredLanguage": ["en_US"],
    "userPassword": [b"{SSHA}c2VjcmV0c2FsdA=="],
    "mail": ["bjensen@example.com", "babs@example.org"],
    "telephoneNumber": ["+1 408 555 1862", "+1 408 555 1992 ext. 22"],
    "homePhone": ["+1 408 555 0000"],
    "mobile": ["+1 (408) 555-1234"],
    "facsimileTelephoneNumber": ["+1 408 555 1992"],
    "pager": ["+1 408 555 7777 x9"],
    "postalAddress": ["Acme Inc. \\24 Co$500 3rd Ave$Seattle, WA 98104"],
    "street": ["500 3rd Ave"],
    "l": ["Seattle"],
    "st": ["WA"],
    "postalCode": ["98104"],
    "homePostalAddress": ["1 Home Rd$Back\\5Cyard$Tacoma, WA"],
    "employeeNumber": ["42"],
    "o": ["Example Corp"],
    "ou": ["Product Development"],
    "departmentNumber": ["4321"],
    "manager": ["uid=boss,ou=people,dc=example,dc=com"],
    "isMemberOf": ["cn=eng,ou=groups,dc=example,dc=com", "cn=gone,ou=groups,dc=example,dc=com"],
    "description": ["not mapped"],
}

EXPECTED_USER = {
    "schemas": [CORE_USER, ENTERPRISE],
    "userName": "bjensen",
    "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Babs",
    "title": "Vice President",
    "userType": "Employee",
    "preferredLanguage": "en_US",
    "emails": [
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@example.org", "type": "work"},
    ],
    "phoneNumbers": [
        {"value": "tel:+1-408-555-1862", "type": "work"},
        {"value": "tel:+1-408-555-1992;ext=22", "type": "work"},
        {"value": "tel:+1-408-555-0000", "type": "home"},
        {"value": "tel:+1-408-555-1234", "type": "mobile"},
        {"value": "tel:+1-408-555-1992", "type": "fax"},
        {"value": "tel:+1-408-555-7777;ext=9", "type": "pager"},
    ],
    "addresses": [
        {
            "formatted": "Acme Inc. $ Co\n500 3rd Ave\nSeattle, WA 98104",
            "streetAddress": "500 3rd Ave",
            "locality": "Seattle",
            "region": "WA",
            "postalCode": "98104",
            "type": "work",
        },
        {"formatted": "1 Home Rd\nBack\\yard\nTacoma, WA", "type": "home"},
    ],
    ENTERPRISE: {
        "employeeNumber": "42",
        "organization": "Example Corp",
        "division": "Product Development",
        "department": "4321",
        "manager": {"value": "b0550000-0000-4000-8000-000000000001"},
    },
}

ENG_GROUP = {
    "dn": "cn=Engineering,ou=groups,dc=example,dc=com",
    "objectClass": ["top", "groupOfUniqueNames"],
    "entryUUID": ["e1000000-0000-4000-8000-000000000002"],
    "cn": ["Engineering"],
    "uniqueMember": [
        "uid=bjensen,ou=people,dc=example,dc=com",
        "UID=Boss, OU=People, DC=Example, DC=Com",
        "cn=Nested,ou=groups,dc=example,dc=com#'0101'B",
        "uid=ghost,ou=people,dc=example,dc=com",
    ],
}

EXPECTED_GROUP = {
    "schemas": [CORE_GROUP],
    "displayName": "Engineering",
    "members": [
        {"value": "6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a", "type": "User"},
        {"value": "b0550000-0000-4000-8000-000000000001", "type": "User"},
        {"value": "e1000000-0000-4000-8000-000000000003", "type": "Group"},
    ],
}


@pytest.fixture
def resolver():
    return DictResolver(
        {
            "uid=bjensen,ou=people,dc=example,dc=com": (
                "User",
                "6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a",
            ),
            "uid=boss,ou=people,dc=example,dc=com": (
                "User",
                "b0550000-0000-4000-8000-000000000001",
            ),
            "cn=nested,ou=groups,dc=example,dc=com": (
                "group",
                "e1000000-0000-4000-8000-000000000003",
            ),
            "cn=eng,ou=groups,dc=example,dc=com": ("Group", "e1000000-0000-4000-8000-000000000004"),
        }
    )


@pytest.mark.parametrize("path", [RESOURCES, RESOURCES_DN])
def test_reference_files_validate_and_load(path):
    assert validate_mapping_file(path) == []
    mappings = load_mapping(path)
    assert list(mappings.resources) == ["User", "Group"]
    assert mappings.warnings == ()


def test_scim11_urns_become_scim20():
    mappings = load_mapping(RESOURCES)
    users, groups = mappings["User"], mappings["Group"]
    assert users.source_schema == "urn:scim:schemas:core:1.0"
    assert users.schema == CORE_USER
    assert users.schemas == (CORE_USER, ENTERPRISE)
    assert groups.schema == CORE_GROUP
    assert groups.schemas == (CORE_GROUP,)
    manager = users.attribute("manager")
    assert manager.source_schema == "urn:scim:schemas:extension:enterprise:1.0"
    assert manager.schema == ENTERPRISE
    assert [s.name for s in manager.sub_attributes] == ["value", "displayName"]
    assert users.attribute(f"{ENTERPRISE}:department").schema == ENTERPRISE


def test_search_parameters():
    mappings = load_mapping(RESOURCES)
    users, groups = mappings["User"], mappings["Group"]
    assert users.endpoint == "Users"
    assert users.search.id == "userSearchParams"
    assert users.search.base_dns == ("ou=people,dc=example,dc=com",)
    assert users.search.filter == "(objectClass=inetOrgPerson)"
    assert users.search.object_classes == ("inetOrgPerson",)
    assert users.search.id_mapping.ldap_attribute == "entryUUID"
    assert users.search.id_mapping.created_by == "directory"
    assert groups.search.base_dns == ("dc=example,dc=com",)
    assert groups.search.object_classes == (
        "groupOfEntries",
        "groupOfNames",
        "groupOfUniqueNames",
        "groupOfURLs",
    )
    assert users.add.dn_template == "uid={uid},ou=people,dc=example,dc=com"
    [fixed] = users.add.fixed_attributes
    assert (fixed.ldap_attribute, fixed.on_conflict) == ("objectClass", "merge")
    assert fixed.values == ("top", "person", "organizationalPerson", "inetOrgPerson")
    assert groups.add.fixed_attributes[0].values == ("top", "groupOfUniqueNames")
    entry_dn = load_mapping(RESOURCES_DN)
    assert entry_dn["User"].search.id_mapping is None


def test_user_maps_to_scim20_json(resolver):
    users = load_mapping(RESOURCES)["User"]
    unresolved: list[tuple[str, str]] = []
    resource = users.to_scim(BJENSEN, resolver, on_unresolved=lambda *a: unresolved.append(a))
    assert resource == EXPECTED_USER
    assert list(resource)[0] == "schemas"
    assert unresolved == []
    assert users.resource_id(BJENSEN) == "6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a"


def test_user_read_only_and_write_only_on_request(resolver):
    users = load_mapping(RESOURCES)["User"]
    unresolved: list[tuple[str, str]] = []
    resource = users.to_scim(
        BJENSEN,
        resolver,
        on_unresolved=lambda *a: unresolved.append(a),
        include_read_only=True,
        include_write_only=True,
    )
    assert resource["password"] == "{SSHA}c2VjcmV0c2FsdA=="
    assert resource["groups"] == [{"value": "e1000000-0000-4000-8000-000000000004"}]
    assert unresolved == [("groups", "cn=gone,ou=groups,dc=example,dc=com")]
    rest = {k: v for k, v in resource.items() if k not in ("password", "groups")}
    assert rest == EXPECTED_USER


def test_group_maps_members_through_the_resolver(resolver):
    groups = load_mapping(RESOURCES)["Group"]
    unresolved: list[tuple[str, str]] = []
    resource = groups.to_scim(ENG_GROUP, resolver, on_unresolved=lambda *a: unresolved.append(a))
    assert resource == EXPECTED_GROUP
    assert unresolved == [("members", "uid=ghost,ou=people,dc=example,dc=com")]


def test_without_resolver_derived_values_are_left_out_and_reported():
    mappings = load_mapping(RESOURCES)
    unresolved: list[tuple[str, str]] = []
    group = mappings["Group"].to_scim(ENG_GROUP, on_unresolved=lambda *a: unresolved.append(a))
    assert group == {"schemas": [CORE_GROUP], "displayName": "Engineering"}
    assert [dn for _, dn in unresolved] == [
        "uid=bjensen,ou=people,dc=example,dc=com",
        "UID=Boss, OU=People, DC=Example, DC=Com",
        "cn=Nested,ou=groups,dc=example,dc=com",
        "uid=ghost,ou=people,dc=example,dc=com",
    ]
    user = mappings["User"].to_scim(BJENSEN, on_unresolved=lambda *a: unresolved.append(a))
    assert "manager" not in user[ENTERPRISE]
    assert unresolved[-1] == (f"{ENTERPRISE}:manager", "uid=boss,ou=people,dc=example,dc=com")


def test_entry_dn_file_uses_normalized_dns_as_ids():
    mappings = load_mapping(RESOURCES_DN)
    users, groups = mappings["User"], mappings["Group"]
    # Ids are normalized DNs, so the resolver simply returns those.
    dn_ids = DictResolver(
        {
            "uid=boss,ou=people,dc=example,dc=com": (
                "User",
                "uid=boss,ou=people,dc=example,dc=com",
            ),
            "uid=bjensen,ou=people,dc=example,dc=com": (
                "User",
                "uid=bjensen,ou=people,dc=example,dc=com",
            ),
        }
    )
    entry = {
        "dn": "UID=BJensen, OU=People,DC=Example,DC=Com",
        "uid": "bjensen",  # a bare string is one value
        "mail": ["bjensen@example.com"],
        "telephoneNumber": ["+1 408 555 1862"],
        "manager": ["uid=boss,ou=people,dc=example,dc=com"],
    }
    assert users.resource_id(entry) == "uid=bjensen,ou=people,dc=example,dc=com"
    assert users.to_scim(entry, dn_ids) == {
        "schemas": [CORE_USER, ENTERPRISE],
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work"}],
        "phoneNumbers": [{"value": "tel:+1-408-555-1862", "type": "work"}],
        ENTERPRISE: {"manager": {"value": "uid=boss,ou=people,dc=example,dc=com"}},
    }
    group = {
        "dn": "cn=Admins,dc=example,dc=com",
        "objectClass": ["groupOfNames"],
        "cn": ["Admins"],
        "member": ["uid=bjensen,ou=people,dc=example,dc=com"],
    }
    assert groups.to_scim(group, dn_ids) == {
        "schemas": [CORE_GROUP],
        "displayName": "Admins",
        "members": [{"value": "uid=bjensen,ou=people,dc=example,dc=com", "type": "User"}],
    }
    # In this file members is required and displayName is not.
    assert groups.missing_required({"displayName": "Empty"}) == ["members"]
    assert load_mapping(RESOURCES)["Group"].missing_required({"members": []}) == ["displayName"]


def test_written_and_ldap_attributes():
    mappings = load_mapping(RESOURCES)
    users, groups = mappings["User"], mappings["Group"]
    assert users.written_attributes() == [
        "userName",
        "name.formatted",
        "name.familyName",
        "name.givenName",
        "displayName",
        "title",
        "userType",
        "preferredLanguage",
        "emails.value",
        "emails.type",
        "phoneNumbers.value",
        "phoneNumbers.type",
        "addresses.formatted",
        "addresses.streetAddress",
        "addresses.locality",
        "addresses.region",
        "addresses.postalCode",
        "addresses.type",
        f"{ENTERPRISE}:employeeNumber",
        f"{ENTERPRISE}:organization",
        f"{ENTERPRISE}:division",
        f"{ENTERPRISE}:department",
        f"{ENTERPRISE}:manager.value",
    ]
    assert "password" in users.written_attributes(include_write_only=True)
    assert users.ldap_attributes() == [
        "entryUUID",
        "uid",
        "cn",
        "sn",
        "givenName",
        "displayName",
        "title",
        "employeeType",
        "preferredLanguage",
        "mail",
        "telephoneNumber",
        "homePhone",
        "mobile",
        "facsimileTelephoneNumber",
        "pager",
        "postalAddress",
        "street",
        "l",
        "st",
        "postalCode",
        "homePostalAddress",
        "employeeNumber",
        "o",
        "ou",
        "departmentNumber",
        "manager",
    ]
    assert "isMemberOf" in users.ldap_attributes(include_read_only=True)
    assert "userPassword" in users.ldap_attributes(include_write_only=True)
    assert groups.written_attributes() == ["displayName", "members.value", "members.type"]
    assert groups.ldap_attributes() == ["entryUUID", "cn", "member", "uniqueMember", "memberURL"]


def test_lookup_helpers():
    mappings = load_mapping(RESOURCES)
    assert mappings["user"] is mappings["User"]
    assert mappings.by_endpoint("/Groups") is mappings["Group"]
    assert mappings.match_entry(BJENSEN) is mappings["User"]
    assert mappings.match_entry(ENG_GROUP) is mappings["Group"]
    assert mappings.match_entry({"objectClass": ["device"]}) is None
    with pytest.raises(KeyError, match="no resource named 'Device' \\(resources: User, Group\\)"):
        mappings["Device"]


def test_custom_mapping_types_extension_and_ids():
    mappings = load_mapping(DATA / "custom-resources.xml")
    people = mappings["Person"]
    acme = "urn:example:params:scim:schemas:extension:acme:2.0:User"
    assert people.schema == CORE_USER
    assert people.schemas == (CORE_USER, acme)
    assert people.search.base_dns == ("ou=people,o=acme", "ou=contractors,o=acme")
    assert people.search.object_classes == ("acmePerson", "inetOrgPerson")
    assert people.search.id_mapping.created_by == "scim-consumer"
    entry = {
        "dn": "uid=kim,ou=contractors,o=acme",
        "acmeId": ["P-0042"],
        "uid": ["kim"],
        "ds-pwp-account-disabled": ["TRUE"],
        "acmeRole": ["auditor", "approver"],
        "acmeHireDate": ["20190301083000+0100"],
        "acmeLastLogin": ["20240102030405Z"],
        "acmeBadge": ["1042"],
        "acmeContractor": ["TRUE"],
        "jpegPhoto": [b"\xff\xd8\xff\xe0"],
    }
    assert people.resource_id(entry) == "P-0042"
    assert people.to_scim(entry) == {
        "schemas": [CORE_USER, acme],
        "userName": "kim",
        "active": False,
        "roles": [{"value": "auditor"}, {"value": "approver"}],
        acme: {
            "hireDate": "2019-03-01T07:30:00Z",
            "badge": 1042,
            "contractor": True,
            "badgePhoto": "/9j/4A==",
        },
    }
    read_only = people.to_scim(entry, include_read_only=True)
    assert read_only[acme]["lastLogin"] == "2024-01-02T03:04:05Z"


def test_a_rejected_value_fails_that_entry_only_naming_dn_and_attribute():
    people = load_mapping(DATA / "custom-resources.xml")["Person"]
    bad = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], "acmeBadge": ["ten"]}
    with pytest.raises(SkippableError) as info:
        people.to_scim(bad)
    assert str(info.value) == (
        "uid=kim,ou=people,o=acme: SCIM attribute "
        "urn:example:params:scim:schemas:extension:acme:2.0:User:badge: not an integer: 'ten'"
    )
