"""The parsed scim-resources.xml: plain, immutable definitions (already in SCIM 2.0 terms).

`toolkit.mapping.loader` builds these from the XML; `toolkit.mapping.resource` compiles them
into the functions that map entries. Line numbers point back into the file for messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from toolkit.mapping.transformations import Transformation

AttributeKind = Literal["simple", "complex", "simpleMultiValued", "complexMultiValued"]
DerivationKind = Literal["groups", "members", "manager"]


@dataclass(frozen=True)
class LdapMapping:
    """<mapping>/<subMapping>: one LDAP attribute and the transformation of its values."""

    ldap_attribute: str
    transformation: Transformation
    transform: str | None = None  # the class name as written in the file
    line: int = 0


@dataclass(frozen=True)
class SubAttribute:
    name: str
    data_type: str = "string"
    required: bool = False
    read_only: bool = False
    case_exact: bool = False
    mapping: LdapMapping | None = None


@dataclass(frozen=True)
class CanonicalValue:
    """<canonicalValue name="work">: the `type` value and where its sub-attributes come from."""

    name: str
    sub_mappings: tuple[tuple[str, LdapMapping], ...] = ()


@dataclass(frozen=True)
class Derivation:
    """<derivation javaClass=...>: an attribute computed from DNs that need look-ups."""

    java_class: str
    kind: DerivationKind
    search_ref: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeDef:
    name: str
    schema: str  # SCIM 2.0 URN
    kind: AttributeKind
    source_schema: str = ""  # as written in the file (maybe SCIM 1.1)
    description: str = ""
    read_only: bool = False
    required: bool = False
    data_type: str | None = None  # simple and simpleMultiValued
    case_exact: bool = False
    child_name: str | None = None
    mapping: LdapMapping | None = None  # simple; simpleMultiValued without a type
    sub_attributes: tuple[SubAttribute, ...] = ()
    canonical_values: tuple[CanonicalValue, ...] = ()
    derivation: Derivation | None = None
    line: int = 0

    @property
    def multi_valued(self) -> bool:
        return self.kind in ("simpleMultiValued", "complexMultiValued")

    @property
    def managed(self) -> bool:
        """True if the mapping gives this attribute values (else it is schema-only)."""
        return bool(
            self.derivation
            or self.mapping
            or any(sub.mapping for sub in self.sub_attributes)
            or any(cv.sub_mappings for cv in self.canonical_values)
        )

    def sub_attribute(self, name: str) -> SubAttribute | None:
        lowered = name.lower()
        return next((s for s in self.sub_attributes if s.name.lower() == lowered), None)


@dataclass(frozen=True)
class IdMapping:
    """<resourceIDMapping>: the LDAP attribute that identifies the resource (else the DN)."""

    ldap_attribute: str
    created_by: str | None = None  # "directory" | "scim-consumer"
    transformation: Transformation | None = None
    # where in the file (kept out of repr: mapping fingerprints must not move with the lines)
    line: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True)
class SearchParams:
    """<LDAPSearch id=...>: where the entries of a resource live."""

    id: str
    base_dns: tuple[str, ...]
    filter: str
    object_classes: tuple[str, ...] = ()  # the objectClass equality terms of the filter
    id_mapping: IdMapping | None = None
    line: int = 0


@dataclass(frozen=True)
class FixedAttribute:
    ldap_attribute: str
    values: tuple[str, ...]
    on_conflict: str = "merge"  # merge | overwrite | preserve


@dataclass(frozen=True)
class AddTemplate:
    """<LDAPAdd>: how the SDK would create entries (kept for completeness; LDAP is our source)."""

    dn_template: str
    fixed_attributes: tuple[FixedAttribute, ...] = ()


@dataclass(frozen=True)
class LdapAttributeUse:
    """One place where the mapping file names an LDAP attribute (for checks against a schema)."""

    ldap_attribute: str
    resource: str
    what: str  # "attribute 'title'", "resourceIDMapping"
    line: int
    as_text: bool = False  # its values are sent as text: octets that are not UTF-8 are refused
