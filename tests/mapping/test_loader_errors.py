"""Broken mapping files: every problem is reported with the file and line, all at once."""

from __future__ import annotations

import pytest

from toolkit.config.mappingfile import validate_mapping_file
from toolkit.errors import FatalError
from toolkit.mapping import MappingError, load_mapping

HEAD = '<?xml version="1.0"?>\n<scim-ldap:resources xmlns:scim-ldap="http://www.unboundid.com/scim-ldap">\n'
SEARCH = """  <LDAPSearch id="users">
    <baseDN>ou=people,dc=example,dc=com</baseDN>
    <filter>(objectClass=inetOrgPerson)</filter>
  </LDAPSearch>
"""
TAIL = "</scim-ldap:resources>\n"


def write(tmp_path, body: str, name: str = "scim-resources.xml"):
    path = tmp_path / name
    path.write_text(HEAD + body + TAIL, encoding="utf-8")
    return path


def line_of(path, marker: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if marker in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{marker!r} not in {path}")


def resource(attributes: str, name: str = "User", idref: str = "users") -> str:
    return f"""  <resource name="{name}" schema="urn:ietf:params:scim:schemas:core:2.0:User">
    <description>Users</description>
    <endpoint>Users</endpoint>
    <LDAPSearchRef idref="{idref}"/>
{attributes}  </resource>
"""


def simple(name: str, mapping: str, data_type: str = "string") -> str:
    return f"""    <attribute name="{name}" schema="urn:ietf:params:scim:schemas:core:2.0:User">
      <description>{name}</description>
      <simple dataType="{data_type}">
        {mapping}
      </simple>
    </attribute>
"""


def test_malformed_xml_names_the_line(tmp_path):
    path = write(tmp_path, resource(simple("userName", '<mapping ldapAttribute="uid">')) + SEARCH)
    expected = f"{path}:{line_of(path, '</simple>')}: malformed XML: "
    [error] = validate_mapping_file(path)
    assert error.startswith(expected)
    assert "mapping" in error
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.errors == [error]
    assert isinstance(info.value, FatalError)


def test_not_xml_at_all(tmp_path):
    path = tmp_path / "scim-resources.xml"
    path.write_text("this is not XML\n")
    [error] = validate_mapping_file(path)
    assert error.startswith(f"{path}:1: malformed XML: ")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.xml"
    assert validate_mapping_file(path) == [
        f"{path}: cannot read the resource mapping file: No such file or directory"
    ]
    with pytest.raises(MappingError, match="nope.xml: cannot read"):
        load_mapping(path)


def test_xsd_violations_name_each_line(tmp_path):
    body = resource(
        simple("userName", '<mapping ldapAttribute="uid"/>', data_type="text")
        + """    <attribute name="title" schema="urn:ietf:params:scim:schemas:core:2.0:User">
      <simple dataType="string"/>
    </attribute>
"""
    ) + SEARCH.replace("<filter>", "<bogus/><filter>")
    path = write(tmp_path, body)
    errors = validate_mapping_file(path)
    bad_type = line_of(path, 'dataType="text"')
    no_description = line_of(path, '<simple dataType="string"/>')
    # libxml2 words the messages; the file, the line and the element are what we promise.
    expected = [
        (
            bad_type,
            "Element 'simple', attribute 'dataType': [facet 'enumeration'] The value 'text'",
        ),
        (
            no_description,
            "Element 'simple': This element is not expected. Expected is ( description )",
        ),
        (line_of(path, "<bogus/>"), "Element 'bogus': This element is not expected."),
    ]
    assert len(errors) == len(expected)
    for error, (line, fragment) in zip(errors, expected, strict=True):
        assert error.startswith(f"{path}:{line}: ")
        assert fragment in error
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.errors == errors


def test_wrong_root_element(tmp_path):
    path = tmp_path / "scim-resources.xml"
    path.write_text('<?xml version="1.0"?>\n<resources/>\n')
    assert validate_mapping_file(path) == [
        f"{path}:2: Element 'resources': No matching global declaration available "
        "for the validation root."
    ]


def test_semantic_errors_all_reported_with_lines(tmp_path):
    attributes = (
        simple("userName", '<mapping ldapAttribute="uid" transform="com.example.Nope"/>')
        + simple(
            "title",
            '<mapping ldapAttribute="title" transform="com.unboundid.scim.ldap.BooleanTransformation"/>',
        )
        + simple("userName", '<mapping ldapAttribute="uid"/>')
        + """    <attribute name="manager" schema="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User">
      <description>manager</description>
      <derivation javaClass="com.example.ManagerMagic"/>
      <complex>
        <subAttribute name="value" dataType="string"><description>id</description></subAttribute>
      </complex>
    </attribute>
    <attribute name="groups" schema="urn:ietf:params:scim:schemas:core:2.0:User" readOnly="true">
      <description>groups</description>
      <derivation javaClass="com.unboundid.scim.ldap.GroupsDerivedAttribute">
        <LDAPSearchRef idref="missingGroups"/>
      </derivation>
      <simple dataType="string"/>
    </attribute>
    <attribute name="addresses" schema="urn:ietf:params:scim:schemas:core:2.0:User">
      <description>addresses</description>
      <complexMultiValued childName="address">
        <subAttribute name="locality" dataType="string"><description>l</description></subAttribute>
        <canonicalValue name="work">
          <subMapping name="city" ldapAttribute="l"/>
        </canonicalValue>
      </complexMultiValued>
    </attribute>
"""
    )
    body = resource(attributes) + resource("", name="Group", idref="users")
    body += resource("", name="Device", idref="devices").replace("Users", "Devices") + SEARCH
    path = write(tmp_path, body)
    assert validate_mapping_file(path) == []  # all of these pass the XSD
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    n = str(path)
    second_user_name = line_of(path, 'name="userName"', 2)
    city = line_of(path, 'name="city"')
    devices = line_of(path, 'idref="devices"')
    assert info.value.errors == [
        f"{n}:{line_of(path, 'com.example.Nope')}: attribute 'userName': unknown transformation "
        "class 'com.example.Nope' (known: com.unboundid.scim.ldap.BooleanTransformation, "
        "com.unboundid.scim.ldap.DefaultTransformation, "
        "com.unboundid.scim.ldap.GeneralizedTimeTransformation, "
        "com.unboundid.scim.ldap.PostalAddressTransformation, "
        "com.unboundid.scim.ldap.TelephoneNumberTransformation, "
        "toolkit.mapping.AccountEnabledTransformation, "
        "toolkit.mapping.Base64Transformation, "
        "toolkit.mapping.NegatedBooleanTransformation)",
        f"{n}:{line_of(path, 'BooleanTransformation')}: attribute 'title': "
        "com.unboundid.scim.ldap.BooleanTransformation cannot be used on string data",
        f"{n}:{second_user_name}: attribute 'userName' is defined twice",
        f"{n}:{line_of(path, 'ManagerMagic')}: attribute 'manager': unknown derivation "
        "'com.example.ManagerMagic' (known: com.unboundid.scim.ldap.GroupsDerivedAttribute, "
        "com.unboundid.scim.ldap.MembersDerivedAttribute, "
        "com.unboundid.scim.ldap.ManagerDerivedAttribute)",
        f"{n}:{line_of(path, 'GroupsDerivedAttribute')}: attribute 'groups': "
        "com.unboundid.scim.ldap.GroupsDerivedAttribute cannot derive a simple attribute",
        f"{n}:{line_of(path, 'missingGroups')}: attribute 'groups': LDAPSearchRef idref "
        "'missingGroups' names no LDAPSearch",
        f"{n}:{city}: subMapping 'city' of 'addresses' names no sub-attribute of it",
        f"{n}:{devices}: LDAPSearchRef idref 'devices' names no LDAPSearch",
    ]


def test_duplicate_resource_and_unbalanced_filter(tmp_path):
    body = (
        resource("")
        + resource("")
        + SEARCH.replace("(objectClass=inetOrgPerson)", "(objectClass=inetOrgPerson")
    )
    path = write(tmp_path, body)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.errors == [
        f"{path}:{line_of(path, '<filter>')}: unbalanced parenthesis in LDAPSearch filter",
        f"{path}:{line_of(path, '<resource ', 2)}: resource 'User' is defined twice",
    ]


def test_custom_resource_mapper_is_a_warning(tmp_path):
    body = resource("").replace('name="User"', 'name="User" mapping="com.example.Mapper"') + SEARCH
    path = write(tmp_path, body)
    mappings = load_mapping(path)
    assert mappings.warnings == (
        f"{path}:{line_of(path, 'com.example.Mapper')}: resource 'User': custom resource mapper "
        "'com.example.Mapper' is a Java class of Ping's server; ignored",
    )
