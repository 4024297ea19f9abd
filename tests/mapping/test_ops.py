"""The generated LDAP -> SCIM function of a resource: values, order, errors, tracebacks."""

from __future__ import annotations

import traceback

import pytest

from toolkit.errors import SkippableError
from toolkit.mapping import load_mapping

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
BADGES = "urn:example:params:scim:schemas:extension:badges:2.0:User"
HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"

# Every shape the generator writes out (simple text and typed, complex, complex multi-valued
# with typed sub-attributes), the ones it calls (simple multi-valued, derived) and two
# extensions whose first attributes come after core ones.
XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<scim-ldap:resources xmlns:scim-ldap="http://www.unboundid.com/scim-ldap">
  <resource name="User" schema="{CORE}">
    <description>People</description>
    <endpoint>Users</endpoint>
    <LDAPSearchRef idref="people"/>
    <attribute name="userName" schema="{CORE}" required="true">
      <description>userName</description>
      <simple dataType="string"><mapping ldapAttribute="uid"/></simple>
    </attribute>
    <attribute name="level" schema="{HR}">
      <description>level</description>
      <simple dataType="integer"><mapping ldapAttribute="hrLevel"/></simple>
    </attribute>
    <attribute name="name" schema="{CORE}">
      <description>name</description>
      <complex>
        <subAttribute name="familyName" dataType="string"><description>familyName</description>
          <mapping ldapAttribute="sn"/>
        </subAttribute>
        <subAttribute name="givenName" dataType="string"><description>givenName</description>
          <mapping ldapAttribute="givenName"/>
        </subAttribute>
      </complex>
    </attribute>
    <attribute name="badges" schema="{BADGES}">
      <description>badges</description>
      <complexMultiValued childName="badge">
        <subAttribute name="value" dataType="integer">
          <description>value</description>
        </subAttribute>
        <subAttribute name="display" dataType="string">
          <description>display</description>
        </subAttribute>
        <canonicalValue name="door">
          <subMapping name="value" ldapAttribute="doorBadge"/>
          <subMapping name="display" ldapAttribute="doorLabel"/>
        </canonicalValue>
        <canonicalValue name="car">
          <subMapping name="value" ldapAttribute="carBadge"/>
        </canonicalValue>
      </complexMultiValued>
    </attribute>
    <attribute name="emails" schema="{CORE}">
      <description>emails</description>
      <simpleMultiValued childName="email" dataType="string">
        <canonicalValue name="work"><subMapping name="value" ldapAttribute="mail"/>
        </canonicalValue>
      </simpleMultiValued>
    </attribute>
    <attribute name="ims" schema="{CORE}">
      <description>ims</description>
      <simpleMultiValued childName="im" dataType="string">
        <canonicalValue name="aim">
          <subMapping name="value" ldapAttribute="aimId"/>
          <subMapping name="primary" ldapAttribute="aimPrimary"/>
        </canonicalValue>
        <canonicalValue name="xmpp"><subMapping name="primary" ldapAttribute="xmppPrimary"/>
        </canonicalValue>
      </simpleMultiValued>
    </attribute>
    <attribute name="rooms" schema="{HR}">
      <description>rooms</description>
      <simpleMultiValued childName="room" dataType="integer">
        <mapping ldapAttribute="roomNumber"/>
      </simpleMultiValued>
    </attribute>
    <attribute name="manager" schema="{HR}">
      <description>manager</description>
      <derivation javaClass="com.unboundid.scim.ldap.ManagerDerivedAttribute">
        <LDAPSearchRef idref="people"/>
      </derivation>
      <complex>
        <subAttribute name="value" dataType="string"><description>value</description>
        </subAttribute>
      </complex>
    </attribute>
  </resource>
  <LDAPSearch id="people">
    <baseDN>ou=people,o=acme</baseDN>
    <filter>(objectClass=inetOrgPerson)</filter>
  </LDAPSearch>
</scim-ldap:resources>
"""


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "resources.xml"
    path.write_text(XML)
    return load_mapping(path)["User"]


class Managers:
    def resolve(self, dn):
        return ("User", "id-of-" + dn.split(",")[0][4:]) if dn.startswith("uid=") else None


def test_every_shape_maps_in_attribute_order_with_extensions_listed_once(users):
    entry = {
        "dn": "uid=kim,ou=people,o=acme",
        "uid": [b"kim"],  # bytes as text
        "hrlevel": ["7"],
        "sn": ["Lee"],
        "givenname": "Kim",  # a bare value, not a list
        "doorbadge": ["1042"],
        "doorlabel": [b"HQ"],
        "carbadge": ("88",),
        "mail": ["kim@acme.example", "k@acme.example"],
        "manager": ["uid=boss,ou=people,o=acme"],
    }
    resource = users.to_scim(entry, Managers())
    assert resource == {
        "schemas": [CORE, HR, BADGES],
        "userName": "kim",
        HR: {"level": 7, "manager": {"value": "id-of-boss"}},
        "name": {"familyName": "Lee", "givenName": "Kim"},
        BADGES: {
            "badges": [
                {"value": 1042, "display": "HQ", "type": "door"},
                {"value": 88, "type": "car"},
            ]
        },
        "emails": [
            {"value": "kim@acme.example", "type": "work"},
            {"value": "k@acme.example", "type": "work"},
        ],
    }
    assert list(resource) == ["schemas", "userName", HR, "name", BADGES, "emails"]


def test_simple_multi_valued_gives_an_item_per_value_with_its_group_s_other_values(users):
    entry = {
        "dn": "uid=kim,ou=people,o=acme",
        "uid": ["kim"],
        "aimid": ["kim1", b"kim2"],
        "aimprimary": ["TRUE"],
        "xmppprimary": "FALSE",  # a group without `value`: one item of the others
        "roomnumber": ("12", "7"),  # untyped
    }
    resource = users.to_scim(entry)
    assert resource["ims"] == [
        {"value": "kim1", "primary": True, "type": "aim"},
        {"value": "kim2", "primary": True, "type": "aim"},
        {"primary": False, "type": "xmpp"},
    ]
    assert resource[HR] == {"rooms": [{"value": 12}, {"value": 7}]}
    assert list(resource) == ["schemas", "userName", "ims", HR]


def test_a_group_s_other_values_alone_make_no_item_without_values(users):
    entry = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], "aimprimary": ["TRUE"]}
    assert users.to_scim(entry) == {"schemas": [CORE], "userName": "kim"}


def test_absent_and_empty_values_leave_attributes_and_extensions_out(users):
    entry = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], "sn": [], "doorlabel": []}
    assert users.to_scim(entry) == {"schemas": [CORE], "userName": "kim"}


def test_an_unresolved_manager_is_reported_and_left_out(users):
    unresolved = []
    entry = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], "manager": ["cn=gone"]}
    resource = users.to_scim(
        entry, Managers(), on_unresolved=lambda path, dn: unresolved.append((path, dn))
    )
    assert resource == {"schemas": [CORE], "userName": "kim"}
    assert unresolved == [(f"{HR}:manager", "cn=gone")]


@pytest.mark.parametrize(
    ("attribute", "value", "path"),
    [
        ("hrLevel", "seven", f"{HR}:level"),
        ("doorBadge", "ten", f"{BADGES}:badges"),
        ("carBadge", "x", f"{BADGES}:badges"),
        ("roomNumber", "x", f"{HR}:rooms"),
    ],
)
def test_a_rejected_value_names_the_entry_and_the_attribute(users, attribute, value, path):
    entry = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], attribute: [value]}
    with pytest.raises(SkippableError) as info:
        users.to_scim(entry)
    assert str(info.value) == (
        f"uid=kim,ou=people,o=acme: SCIM attribute {path}: not an integer: {value!r}"
    )


def test_a_traceback_shows_the_generated_line(users):
    entry = {"dn": "uid=kim,ou=people,o=acme", "uid": ["kim"], "hrLevel": ["seven"]}
    with pytest.raises(SkippableError) as info:
        users.to_scim(entry)
    text = "".join(traceback.format_exception(info.value.__cause__))
    assert f"<resource {CORE}>" in text
    assert "v = f" in text  # the converter's call, as generated
