"""The built-in default mapping (SCIM 2.0 URNs): valid, loadable, and maps realistic entries."""

from __future__ import annotations

from toolkit.config.mappingfile import validate_mapping_file
from toolkit.mapping import (
    DEFAULT_MAPPING_PATH,
    DictResolver,
    default_mapping_text,
    load_mapping,
)

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# As the lab's sample data writes people (toolkit/lab/sampledata.py), with entryUUID added
# the way slapd returns it.
LUKASZ = {
    "dn": ["uid=lukasz.angstrom14,ou=people,dc=example,dc=com"],
    "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson", "nsAccount"],
    "entryUUID": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427"],
    "uid": ["lukasz.angstrom14"],
    "cn": ["Łukasz Ångström"],
    "sn": ["Ångström"],
    "givenName": ["Łukasz"],
    "displayName": ["Ångström, Łukasz"],
    "mail": [
        "lukasz.angstrom14@example.com",
        "lukasz.angstrom@corp.example.com",
        "lukasz.angstrom14@example.org",
    ],
    "telephoneNumber": ["+48 12 555 0042", "+1 512 555 0042 x317"],
    "mobile": ["+1 (512) 555-9876"],
    "postalAddress": ["c/o Cash \\24 Carry GmbH$12 Rynek Główny$Kraków MA 31-000"],
    "street": ["12 Rynek Główny"],
    "l": ["Kraków"],
    "st": ["MA"],
    "postalCode": ["31-000"],
    "title": ["Staff Engineer"],
    "employeeNumber": ["100014"],
    "departmentNumber": ["Research"],
    "employeeType": ["Contractor"],
    "preferredLanguage": ["pl-PL"],
    "o": ["Example Corp"],
    "manager": ["uid=anna.muller0,ou=people,dc=example,dc=com"],
    "nsAccountLock": ["TRUE"],
    "userPassword": [b"{SSHA}aGFzaGVk"],
}

EXPECTED = {
    "schemas": [CORE_USER, ENTERPRISE],
    "userName": "lukasz.angstrom14",
    "externalId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "name": {"formatted": "Łukasz Ångström", "familyName": "Ångström", "givenName": "Łukasz"},
    "displayName": "Ångström, Łukasz",
    "title": "Staff Engineer",
    "userType": "Contractor",
    "preferredLanguage": "pl-PL",
    "active": False,
    "emails": [
        {"value": "lukasz.angstrom14@example.com", "type": "work"},
        {"value": "lukasz.angstrom@corp.example.com", "type": "work"},
        {"value": "lukasz.angstrom14@example.org", "type": "work"},
    ],
    "phoneNumbers": [
        {"value": "tel:+48-12-555-0042", "type": "work"},
        {"value": "tel:+1-512-555-0042;ext=317", "type": "work"},
        {"value": "tel:+1-512-555-9876", "type": "mobile"},
    ],
    "addresses": [
        {
            "formatted": "c/o Cash $ Carry GmbH\n12 Rynek Główny\nKraków MA 31-000",
            "streetAddress": "12 Rynek Główny",
            "locality": "Kraków",
            "region": "MA",
            "postalCode": "31-000",
            "type": "work",
        }
    ],
    ENTERPRISE: {
        "employeeNumber": "100014",
        "organization": "Example Corp",
        "department": "Research",
        "manager": {"value": "a0000000-0000-4000-8000-000000000000"},
    },
}

ALL_STAFF = {
    "dn": ["cn=all-staff,ou=groups,dc=example,dc=com"],
    "objectClass": ["top", "groupOfNames"],
    "entryUUID": ["9c000000-0000-4000-8000-000000000001"],
    "cn": ["all-staff"],
    "member": [
        "uid=anna.muller0,ou=people,dc=example,dc=com",
        "uid=lukasz.angstrom14,ou=people,dc=example,dc=com",
        "cn=managers,ou=groups,dc=example,dc=com",
    ],
}


def resolver() -> DictResolver:
    return DictResolver(
        {
            "uid=anna.muller0,ou=people,dc=example,dc=com": (
                "User",
                "a0000000-0000-4000-8000-000000000000",
            ),
            "uid=lukasz.angstrom14,ou=people,dc=example,dc=com": (
                "User",
                "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            ),
            "cn=managers,ou=groups,dc=example,dc=com": (
                "Group",
                "9c000000-0000-4000-8000-000000000002",
            ),
        }
    )


def test_default_mapping_validates_against_the_xsd():
    assert validate_mapping_file(DEFAULT_MAPPING_PATH) == []


def test_default_mapping_loads_with_scim20_resources():
    mappings = load_mapping(None)
    assert mappings.path == DEFAULT_MAPPING_PATH
    assert mappings.warnings == ()
    users, groups = mappings["User"], mappings["Group"]
    assert (users.endpoint, users.schemas) == ("Users", (CORE_USER, ENTERPRISE))
    assert (groups.endpoint, groups.schemas) == ("Groups", (CORE_GROUP,))
    assert users.search.base_dns == ("ou=people,dc=example,dc=com",)
    assert groups.search.object_classes == ("groupOfNames", "groupOfUniqueNames")
    assert users.search.id_mapping.ldap_attribute == "entryUUID"


def test_default_mapping_maps_a_realistic_user():
    users = load_mapping()["User"]
    assert users.to_scim(LUKASZ, resolver()) == EXPECTED
    assert users.resource_id(LUKASZ) == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert users.missing_required(EXPECTED) == []


def test_entries_map_alike_in_any_case_of_names_in_any_order():
    # One mapping object learns the lower-case names it meets; an entry spelled otherwise
    # after them (or before them) must still map in full.
    users = load_mapping()["User"]
    lower = {key.lower(): values for key, values in LUKASZ.items()}
    upper = {key.upper(): values for key, values in LUKASZ.items()}
    one_mixed = {**{k: v for k, v in lower.items() if k != "title"}, "Title": ["Chief"]}
    for entry in (lower, LUKASZ, lower, upper, lower):
        assert users.to_scim(entry, resolver()) == EXPECTED
    assert users.to_scim(one_mixed, resolver()) == {**EXPECTED, "title": "Chief"}


def test_active_comes_from_ns_account_lock():
    users = load_mapping()["User"]
    enabled = {k: v for k, v in LUKASZ.items() if k != "nsAccountLock"}
    assert "active" not in users.to_scim(enabled, resolver())
    assert users.to_scim({**LUKASZ, "nsAccountLock": ["FALSE"]}, resolver())["active"] is True


def test_default_mapping_maps_a_group():
    groups = load_mapping()["Group"]
    assert groups.to_scim(ALL_STAFF, resolver()) == {
        "schemas": [CORE_GROUP],
        "displayName": "all-staff",
        "externalId": "9c000000-0000-4000-8000-000000000001",
        "members": [
            {"value": "a0000000-0000-4000-8000-000000000000", "type": "User"},
            {"value": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "type": "User"},
            {"value": "9c000000-0000-4000-8000-000000000002", "type": "Group"},
        ],
    }
    assert groups.written_attributes() == [
        "displayName",
        "externalId",
        "members.value",
        "members.type",
    ]


def test_default_mapping_under_another_suffix(tmp_path):
    path = tmp_path / "scim-resources.xml"
    path.write_text(default_mapping_text("dc=acme,dc=org"), encoding="utf-8")
    assert validate_mapping_file(path) == []
    mappings = load_mapping(path)
    assert mappings["User"].search.base_dns == ("ou=people,dc=acme,dc=org",)
    assert mappings["Group"].search.base_dns == ("ou=groups,dc=acme,dc=org",)
    assert mappings["User"].add.dn_template == "uid={uid},ou=people,dc=acme,dc=org"


def test_for_openldap_active_is_left_unmapped_its_schema_has_no_ns_account_lock(tmp_path):
    path = tmp_path / "scim-resources.xml"
    path.write_text(default_mapping_text("dc=acme,dc=org", "openldap"), encoding="utf-8")
    assert validate_mapping_file(path) == []
    users = load_mapping(path)["User"]
    assert "nsaccountlock" not in {a.lower() for a in users.ldap_attributes()}
    assert users.attribute("active") is not None  # declared, for the analyst: never set
    assert "active" not in users.to_scim({**LUKASZ, "nsAccountLock": ["TRUE"]}, resolver())
    # every other directory type keeps it (389-DS and its lineage have nsAccountLock)
    for source_type in ("ldap", "389-ds"):
        assert 'ldapAttribute="nsAccountLock"' in default_mapping_text(source_type=source_type)
