"""SCIM 1.1 schema URNs and attribute shapes -> their SCIM 2.0 equivalents.

Ping's scim-resources.xml files name SCIM 1.1 schemas; scimsync always talks SCIM 2.0, so the
loader translates at load time and nothing later sees a 1.1 name.
"""

from __future__ import annotations

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

SCIM1_CORE = "urn:scim:schemas:core:1.0"
SCIM1_ENTERPRISE = "urn:scim:schemas:extension:enterprise:1.0"

#: (2.0 schema, attribute, 1.1 sub-attribute) -> 2.0 sub-attribute.
SUB_ATTRIBUTE_RENAMES: dict[tuple[str, str, str], str] = {
    (ENTERPRISE_USER, "manager", "managerId"): "value",
}


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.lower()


def resource_schema(schema: str, name: str, endpoint: str) -> str:
    """The SCIM 2.0 core schema of a resource; 1.1 core becomes User or Group by resource."""
    if _same(schema, SCIM1_CORE):
        is_group = name.lower() == "group" or endpoint.strip().strip("/").lower() == "groups"
        return CORE_GROUP if is_group else CORE_USER
    if _same(schema, SCIM1_ENTERPRISE):
        return ENTERPRISE_USER
    return schema.strip()


def attribute_schema(schema: str, core_schema: str) -> str:
    """The SCIM 2.0 schema of an attribute of a resource whose core schema is `core_schema`."""
    if _same(schema, SCIM1_CORE):
        return core_schema if core_schema in (CORE_USER, CORE_GROUP) else CORE_USER
    if _same(schema, SCIM1_ENTERPRISE):
        return ENTERPRISE_USER
    return schema.strip()


def sub_attribute_name(schema: str, attribute: str, sub_attribute: str) -> str:
    return SUB_ATTRIBUTE_RENAMES.get((schema, attribute, sub_attribute), sub_attribute)
