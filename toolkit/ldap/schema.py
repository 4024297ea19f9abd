"""The directory's schema as it publishes it (RFC 4512 subschema subentry): its attribute types.

    schema = read_schema(servers)            # the first server that answers, as the sync user
    schema.defines("CommonName")             # every NAME and the OID count, in any case
    schema.defines("member;range=0-1499")    # attribute options are not part of the type
    schema.is_binary("jpegPhoto")            # a syntax whose values are bytes, not text

Only `attributeTypes` is read: which attributes exist, and their syntax (followed through SUP).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ldap3
from ldap3.core import exceptions as lexc

from toolkit.ldap.connection import close, connect_first, result_error
from toolkit.ldap.errors import LdapError
from toolkit.ldap.spec import LdapServerSpec

#: Where the subschema subentry is when the root DSE does not say (OpenLDAP, 389-DS).
_FALLBACK_SUBENTRIES = ("cn=Subschema", "cn=schema")

#: Syntaxes whose values are octets rather than text (RFC 4517 and RFC 4523 OIDs).
BINARY_SYNTAXES = {
    "1.3.6.1.4.1.1466.115.121.1.5": "Binary",
    "1.3.6.1.4.1.1466.115.121.1.8": "Certificate",
    "1.3.6.1.4.1.1466.115.121.1.9": "Certificate List",
    "1.3.6.1.4.1.1466.115.121.1.10": "Certificate Pair",
    "1.3.6.1.4.1.1466.115.121.1.28": "JPEG",
    "1.3.6.1.4.1.1466.115.121.1.40": "Octet String",
    "1.3.6.1.4.1.1466.115.121.1.49": "Supported Algorithm",
}

_OID = re.compile(r"^\(\s*([0-9A-Za-z.\-]+)")
_NAMES = re.compile(r"\sNAME\s+(?:'([^']*)'|\(\s*((?:'[^']*'\s*)+)\))", re.IGNORECASE)
_QUOTED = re.compile(r"'([^']*)'")
_SYNTAX = re.compile(r"\sSYNTAX\s+'?([0-9.]+)", re.IGNORECASE)
_SUP = re.compile(r"\sSUP\s+'?([0-9A-Za-z.\-]+)", re.IGNORECASE)
_USAGE = re.compile(r"\sUSAGE\s+([A-Za-z]+)", re.IGNORECASE)
_ORDERING = re.compile(r"\sORDERING\s+'?([0-9A-Za-z.\-]+)", re.IGNORECASE)
_SINGLE = re.compile(r"\sSINGLE-VALUE\b", re.IGNORECASE)
_DESC = re.compile(r"\sDESC\s+'[^']*'", re.IGNORECASE)  # free text: may hold the keywords


class SchemaUnavailable(LdapError):
    """The server answered but published no attribute types to this user."""


@dataclass(frozen=True)
class AttributeType:
    oid: str
    names: tuple[str, ...]
    syntax: str | None = None  # its OID (a length bound, "...15{256}", is left out)
    sup: str | None = None
    usage: str = "userApplications"
    ordering: str | None = None  # its ORDERING matching rule (own, not inherited)
    single_value: bool = False

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


def parse_attribute_type(text: str) -> AttributeType | None:
    """One `attributeTypes` value (RFC 4512 AttributeTypeDescription); None if it has no OID."""
    oid = _OID.match(text.strip())
    if oid is None:
        return None
    text = _DESC.sub(" ", text)
    names: tuple[str, ...] = ()
    found = _NAMES.search(text)
    if found:
        names = (
            (found.group(1),)
            if found.group(1) is not None
            else tuple(_QUOTED.findall(found.group(2)))
        )
    syntax = _SYNTAX.search(text)
    sup = _SUP.search(text)
    usage = _USAGE.search(text)
    ordering = _ORDERING.search(text)
    return AttributeType(
        oid=oid.group(1),
        names=names,
        syntax=syntax.group(1) if syntax else None,
        sup=sup.group(1) if sup else None,
        usage=usage.group(1) if usage else "userApplications",
        ordering=ordering.group(1) if ordering else None,
        single_value=_SINGLE.search(text) is not None,
    )


def base_type(name: str) -> str:
    """The attribute type of a description: `member;range=0-1499` and `cn;lang-de` -> the type."""
    return name.split(";", 1)[0].strip()


@dataclass(frozen=True)
class DirectorySchema:
    """The attribute types a directory publishes, looked up by any NAME or the OID, any case."""

    types: tuple[AttributeType, ...]
    where: str = ""  # the server and subentry read, for messages
    _by_key: dict[str, AttributeType] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for attribute_type in self.types:
            for key in (attribute_type.oid, *attribute_type.names):
                self._by_key.setdefault(key.lower(), attribute_type)

    @classmethod
    def from_definitions(cls, definitions: Iterable[str], where: str = "") -> DirectorySchema:
        parsed = (parse_attribute_type(text) for text in definitions)
        return cls(tuple(t for t in parsed if t is not None), where)

    def get(self, name: str) -> AttributeType | None:
        return self._by_key.get(base_type(name).lower())

    def defines(self, name: str) -> bool:
        return self.get(name) is not None

    def syntax_of(self, name: str) -> str | None:
        """The attribute's syntax OID, inherited through SUP when it has none of its own."""
        seen: set[str] = set()
        attribute_type = self.get(name)
        while attribute_type is not None and attribute_type.oid not in seen:
            if attribute_type.syntax:
                return attribute_type.syntax
            seen.add(attribute_type.oid)
            attribute_type = self.get(attribute_type.sup) if attribute_type.sup else None
        return None

    def is_ordered(self, name: str) -> bool:
        """True when the attribute is SINGLE-VALUE with an ORDERING rule: ranges of its values
        (`>=` and `!>=`) then partition the entries exactly (toolkit.ldap.split)."""
        attribute_type = self.get(name)
        return bool(attribute_type and attribute_type.single_value and attribute_type.ordering)

    def is_binary(self, name: str) -> bool:
        """True when the attribute's syntax holds octets (a photo, a certificate, Octet String)."""
        return self.syntax_of(name) in BINARY_SYNTAXES


def read_schema(servers: Sequence[LdapServerSpec]) -> DirectorySchema:
    """The attribute types of the first server that answers, read as its configured user.

    Raises the connection's errors (LdapConnectError, LdapBindError, ...) and
    SchemaUnavailable when the server shows this user no attribute types.
    """
    conn, spec = connect_first(servers)
    reasons: list[str] = []
    try:
        for subentry in _subentries(conn):
            try:
                conn.search(
                    subentry, "(objectClass=subschema)", ldap3.BASE, attributes=["attributeTypes"]
                )
            except lexc.LDAPNoSuchObjectResult:
                continue
            except lexc.LDAPException as exc:
                reasons.append(str(result_error(exc, f"reading {subentry}", None)))
                continue
            for item in conn.response or ():
                if item.get("type") != "searchResEntry":
                    continue
                values = _values(item["raw_attributes"], "attributetypes")
                if values:
                    return DirectorySchema.from_definitions(values, f"{spec.label}, {subentry}")
        why = "; ".join(reasons) or "no subschema subentry with attributeTypes is readable"
        raise SchemaUnavailable(
            f"{spec.label} shows {spec.bind_dn or 'anonymous'} no attribute types ({why})"
        )
    finally:
        close(conn)


def _subentries(conn: ldap3.Connection) -> list[str]:
    """The subschema subentry the root DSE names, then the usual places."""
    found: list[str] = []
    try:
        conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["subschemaSubentry"])
        for item in conn.response or ():
            found += _values(item.get("raw_attributes") or {}, "subschemasubentry")
    except lexc.LDAPException:
        pass  # a root DSE closed to this user: try the usual places
    found += [dn for dn in _FALLBACK_SUBENTRIES if dn.lower() not in {f.lower() for f in found}]
    return found


def _values(raw: dict[str, list[bytes]], wanted: str) -> list[str]:
    for name, values in raw.items():
        if name.lower() == wanted:
            return [v.decode("utf-8", "replace") for v in values]
    return []


__all__ = [
    "BINARY_SYNTAXES",
    "AttributeType",
    "DirectorySchema",
    "SchemaUnavailable",
    "base_type",
    "parse_attribute_type",
    "read_schema",
]
