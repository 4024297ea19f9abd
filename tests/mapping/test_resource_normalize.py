"""normalize: representation-only differences vanish, real differences remain."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from toolkit.mapping import DictResolver, load_mapping

DATA = Path(__file__).parents[1] / "data" / "mapping"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACME = "urn:example:params:scim:schemas:extension:acme:2.0:User"

BJENSEN = {
    "dn": "uid=bjensen,ou=people,dc=example,dc=com",
    "entryUUID": ["6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a"],
    "uid": ["bjensen"],
    "cn": ["Barbara Jensen"],
    "sn": ["Jensen"],
    "givenName": ["Barbara"],
    "title": ["Vice President"],
    "nsAccountLock": ["FALSE"],
    "mail": ["bjensen@example.com", "babs@example.org"],
    "telephoneNumber": ["+1 408 555 1862", "+1 408 555 1992 ext. 22"],
    "mobile": ["+1 (408) 555-1234"],
    "postalAddress": ["500 3rd Ave$Seattle, WA 98104"],
    "l": ["Seattle"],
    "employeeNumber": ["42"],
    "manager": ["uid=boss,ou=people,dc=example,dc=com"],
}

# The same user as a SCIM server might return it: other spellings, order, extras.
FROM_SERVER = {
    "schemas": [CORE_USER, ENTERPRISE],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "meta": {"resourceType": "User", "version": 'W/"3694e05e9dff590"'},
    "USERNAME": "bjensen",
    "externalid": "6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a",
    "name": {
        "Formatted": "  Barbara   Jensen ",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",  # not mapped: not compared
    },
    "title": "Vice President\t",
    "active": "True",
    "emails": [
        {"value": "babs@example.org", "type": "Work", "primary": False},
        {"value": "bjensen@example.com", "type": "WORK", "primary": True, "display": "B"},
        {"value": "bjensen@example.com", "type": "work"},  # a duplicate
    ],
    "phoneNumbers": [
        {"value": "+1 408 555 1234", "type": "Mobile"},
        {"value": "tel:+14085551992;ext=22", "type": "work"},
        {"value": "+1.408.555.1862", "type": "work"},
    ],
    "addresses": [
        {
            "type": "Work",
            "formatted": "500 3rd Ave \r\nSeattle, WA 98104\n",
            "locality": "Seattle",
            "country": "US",
            "primary": True,
        }
    ],
    "groups": [{"value": "e1000000", "display": "eng"}],  # read-only: not compared
    "password": "secret",  # write-only: not compared
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {
        "employeeNumber": "42",
        "manager": {"value": "boss-id", "$ref": "../Users/boss-id", "displayName": "Boss"},
    },
}


@pytest.fixture(scope="module")
def users():
    return load_mapping()["User"]


@pytest.fixture(scope="module")
def ours(users):
    ids = DictResolver({"uid=boss,ou=people,dc=example,dc=com": ("User", "boss-id")})
    return users.to_scim(BJENSEN, ids)


def test_normalized_form(users, ours):
    assert users.normalize(ours) == {
        "userName": "bjensen",
        "externalId": "6a3e5a2c-0d3f-4c5e-9a7b-1f2e3d4c5b6a",
        "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
        "title": "Vice President",
        "active": True,
        "emails": [
            {"value": "babs@example.org", "type": "work"},
            {"value": "bjensen@example.com", "type": "work"},
        ],
        "phoneNumbers": [
            {"value": "tel:+14085551234", "type": "mobile"},
            {"value": "tel:+14085551862", "type": "work"},
            {"value": "tel:+14085551992;ext=22", "type": "work"},
        ],
        "addresses": [
            {"formatted": "500 3rd Ave\nSeattle, WA 98104", "locality": "Seattle", "type": "work"}
        ],
        ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "boss-id"}},
    }


def test_representation_only_differences_vanish(users, ours):
    assert users.normalize(FROM_SERVER) == users.normalize(ours)


def test_normalize_is_idempotent(users, ours):
    once = users.normalize(FROM_SERVER)
    assert users.normalize(once) == once
    assert users.normalize({**once, "schemas": [CORE_USER]}) == once


def test_core_attributes_under_the_core_urn_and_scim11_manager(users, ours):
    qualified = {
        CORE_USER: {k: v for k, v in FROM_SERVER.items() if not k.startswith("urn:")},
        ENTERPRISE: {"employeeNumber": "42", "manager": {"managerId": "boss-id"}},
    }
    assert users.normalize(qualified) == users.normalize(ours)


def _changed(resource: dict, change) -> dict:
    changed = copy.deepcopy(resource)
    change(changed)
    return changed


_DIFFERENCES = [
    ("title", lambda r: r.update(title="President")),
    ("case of a value", lambda r: r.update(USERNAME="BJensen")),
    ("an email gone", lambda r: r["emails"].pop(0)),
    ("an email's type", lambda r: r["emails"][0].update(type="home")),
    ("phone digits", lambda r: r["phoneNumbers"][2].update(value="+1 408 555 1863")),
    ("an extension", lambda r: r["phoneNumbers"][1].update(value="tel:+14085551992")),
    ("active", lambda r: r.update(active=False)),
    ("an address line", lambda r: r["addresses"][0].update(formatted="500 3rd Ave")),
    ("manager", lambda r: r[ENTERPRISE.lower()]["manager"].update(value="other-id")),
    ("attribute removed", lambda r: r.pop("externalid")),
    ("given name", lambda r: r["name"].update(givenName="Babs")),
]


@pytest.mark.parametrize(("what", "change"), _DIFFERENCES)
def test_real_differences_remain(users, ours, what, change):
    assert users.normalize(_changed(FROM_SERVER, change)) != users.normalize(ours), what


def test_members_compare_by_id_only():
    groups = load_mapping()["Group"]
    ours = {
        "displayName": "eng",
        "members": [{"value": "u1", "type": "User"}, {"value": "g2", "type": "Group"}],
    }
    theirs = {
        "displayName": " eng",
        "members": [
            {"value": "g2", "$ref": "https://scim.example.com/v2/Groups/g2", "display": "x"},
            {"value": "u1"},
        ],
    }
    assert groups.normalize(theirs) == groups.normalize(ours)
    assert groups.normalize(ours)["members"] == [{"value": "g2"}, {"value": "u1"}]
    theirs["members"].append({"value": "u3"})
    assert groups.normalize(theirs) != groups.normalize(ours)
    assert "members" not in groups.normalize({"displayName": "eng", "members": []})


def test_time_zones_booleans_integers_and_untyped_values():
    people = load_mapping(DATA / "custom-resources.xml")["Person"]
    ours = {
        "userName": "kim",
        "active": False,
        "roles": [{"value": "auditor"}, {"value": "approver"}],
        ACME: {"hireDate": "2019-03-01T07:30:00Z", "badge": 1042, "contractor": True},
    }
    theirs = {
        "userName": "kim",
        "active": "false",
        "roles": [{"value": "approver", "type": "x"}, {"value": "auditor", "primary": True}],
        ACME: {"hireDate": "2019-03-01T08:30:00.000+01:00", "badge": "1042", "contractor": "TRUE"},
    }
    assert people.normalize(theirs) == people.normalize(ours)
    assert people.normalize(ours)[ACME]["hireDate"] == "2019-03-01T07:30:00Z"
    later = copy.deepcopy(theirs)
    later[ACME]["hireDate"] = "2019-03-01T08:30:01+01:00"
    assert people.normalize(later) != people.normalize(ours)


# --- same_values: the shortcut past normalize() for resources spelled as to_scim writes them --


def _as_server_returns(ours: dict) -> dict:
    """What a server returns after storing `ours` as sent: id, meta and unmapped extras."""
    return {
        **copy.deepcopy(ours),
        "id": "2819c223",
        "meta": {"resourceType": "User", "version": 'W/"1"'},
        "nickName": "Babs",  # not mapped: not compared
        "groups": [{"value": "e1000000"}],  # read-only: not compared
    }


def test_same_values_of_a_resource_as_stored(users, ours):
    assert users.same_values(ours, _as_server_returns(ours))
    assert users.same_values(_as_server_returns(ours), ours)


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("title", lambda r: r.update(title="President")),
        ("an attribute added", lambda r: r.update(displayName="Babs")),
        ("an attribute removed", lambda r: r.pop("externalId")),
        ("an email's order", lambda r: r["emails"].reverse()),
        ("another spelling of a name", lambda r: r.update(UserName=r.pop("userName"))),
        ("the core URN as a container", lambda r: r.update({CORE_USER: {"title": "x"}})),
        ("manager", lambda r: r[ENTERPRISE]["manager"].update(value="other-id")),
        (
            "an extension's other spelling",
            lambda r: r.update({ENTERPRISE.upper(): r.pop(ENTERPRISE)}),
        ),
        ("an extension attribute's spelling", lambda r: r[ENTERPRISE].update(EmployeeNumber="42")),
        ("the extension gone", lambda r: r.pop(ENTERPRISE)),
    ],
)
def test_same_values_is_false_on_any_doubt(users, ours, what, change):
    """False for real changes and for other spellings: the caller then normalizes both."""
    assert not users.same_values(ours, _changed(_as_server_returns(ours), change)), what


def test_same_values_ignores_unmapped_extension_attributes(users, ours):
    theirs = _as_server_returns(ours)
    theirs[ENTERPRISE]["costCenter"] = "4130"  # not mapped by the default mapping
    assert users.same_values(ours, theirs)


def test_same_values_true_means_equal_forms(users, ours):
    """Whenever the shortcut says equal, the comparable forms are equal."""
    variants = [_changed(FROM_SERVER, change) for _, change in _DIFFERENCES] + [
        FROM_SERVER,
        _as_server_returns(ours),
        {k: v for k, v in ours.items() if k != ENTERPRISE},
    ]
    for a in [ours, *variants]:
        for b in variants:
            if users.same_values(a, b):
                assert users.normalize(a) == users.normalize(b)


def test_normalize_like_another_resource_gives_the_same_form(users, ours):
    """Values equal to the other resource's take its normalized values: same result."""
    variants = [_changed(FROM_SERVER, change) for _, change in _DIFFERENCES] + [
        FROM_SERVER,
        ours,
        _as_server_returns(ours),
    ]
    for a in variants:
        for b in variants:
            assert users.normalize(a, like=(b, users.normalize(b))) == users.normalize(a)
