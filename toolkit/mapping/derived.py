"""Derived attributes: values that are DNs in LDAP and SCIM ids on the target.

The SDK's GroupsDerivedAttribute, MembersDerivedAttribute and ManagerDerivedAttribute search
LDAP for each DN; here a resolver answers instead (the plan layer backs it with the link
store and the entries it has read). A DN the resolver does not know is left out and reported,
never invented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from toolkit.config.dn import normalize_dn
from toolkit.mapping.dn import strip_unique_member_uid
from toolkit.mapping.model import DerivationKind

#: javaClass -> kind (full SDK names and short names).
_SHORT_NAMES: dict[str, DerivationKind] = {
    "GroupsDerivedAttribute": "groups",
    "MembersDerivedAttribute": "members",
    "ManagerDerivedAttribute": "manager",
}
DERIVATIONS: dict[str, DerivationKind] = {
    **{f"com.unboundid.scim.ldap.{short}": kind for short, kind in _SHORT_NAMES.items()},
    **_SHORT_NAMES,
}

#: The LDAP attributes each derivation reads.
LDAP_ATTRIBUTES: dict[DerivationKind, tuple[str, ...]] = {
    "manager": ("manager",),
    "members": ("member", "uniqueMember", "memberURL"),
    "groups": ("isMemberOf", "memberOf"),
}

#: The LDAP attributes of LDAP_ATTRIBUTES whose values are LDAP URLs (a dynamic group's
#: search), not DNs of other entries.
URL_ATTRIBUTES = frozenset({"memberURL"})

#: The shape each derivation needs (attribute kinds).
SHAPES: dict[DerivationKind, tuple[str, ...]] = {
    "manager": ("complex",),
    "members": ("simpleMultiValued", "complexMultiValued"),
    "groups": ("simpleMultiValued", "complexMultiValued"),
}


class Resolver(Protocol):
    """Turns a DN into the SCIM resource it became: (resource type name, SCIM id); None when
    the DN is unknown (reported as unresolved); () when it is known but will have no resource
    (the reference is left out, unreported)."""

    def resolve(self, dn: str) -> tuple[str, str] | tuple[()] | None: ...


#: Called with (SCIM attribute path, DN or URL) for every value that could not be resolved.
OnUnresolved = Callable[[str, str], None]


class DictResolver:
    """A resolver over a fixed table {DN: (type, id)}; DNs compare in normalized form."""

    def __init__(self, table: Mapping[str, tuple[str, str]] | None = None) -> None:
        self._table = {normalize_dn(dn): ref for dn, ref in (table or {}).items()}

    def add(self, dn: str, resource_type: str, scim_id: str) -> None:
        self._table[normalize_dn(dn)] = (resource_type, scim_id)

    def resolve(self, dn: str) -> tuple[str, str] | None:
        return self._table.get(normalize_dn(dn))


def _values(entry: Mapping[str, Any], name: str) -> list[str]:
    values = entry.get(name)
    if not values:
        return []
    if isinstance(values, str | bytes):
        values = (values,)
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


class DerivedContext:
    """Per-entry state the derived functions need."""

    __slots__ = ("resolver", "on_unresolved")

    def __init__(self, resolver: Resolver | None, on_unresolved: OnUnresolved | None) -> None:
        self.resolver = resolver
        self.on_unresolved = on_unresolved

    def resolve(self, path: str, dn: str) -> tuple[str, str] | tuple[()] | None:
        ref = self.resolver.resolve(dn) if self.resolver is not None else None
        if ref is None and self.on_unresolved is not None:
            self.on_unresolved(path, dn)
        return ref


DerivedFunction = Callable[[Mapping[str, Any], DerivedContext], Any]


def referenced_dns(kind: DerivationKind, entry: Mapping[str, Any]) -> list[str]:
    """The DNs a derivation resolves for an entry (lower-cased names), in order: its value is
    a function of the entry and of what the resolver answers for these alone."""
    if kind == "manager":
        values = entry.get("manager")
        if not values:
            return []
        # as the reader gives it (a list of text) without copying; else through _values
        first = values[0] if type(values) is list else None
        return [first if type(first) is str else _values(entry, "manager")[0]]
    if kind == "members":
        raw = [*_values(entry, "member"), *_values(entry, "uniquemember")]
        return [strip_unique_member_uid(dn) if "#" in dn else dn for dn in raw]
    return [*_values(entry, "ismemberof"), *_values(entry, "memberof")]


def unresolvable(kind: DerivationKind, entry: Mapping[str, Any]) -> list[str]:
    """Values a derivation reports unresolved whatever the resolver knows: a dynamic group's
    memberURL needs an LDAP search per URL, which a pure mapping cannot do."""
    return _values(entry, "memberurl") if kind == "members" else []


def derived_function(
    kind: DerivationKind, path: str, canonical_types: Iterable[str] = ()
) -> DerivedFunction:
    """The function computing a derived attribute from a lower-cased entry dict."""
    canonical = {name.lower(): name for name in canonical_types}

    if kind == "manager":

        def manager(entry: Mapping[str, Any], ctx: DerivedContext) -> Any:
            dns = referenced_dns("manager", entry)
            ref = ctx.resolve(path, dns[0]) if dns else None
            return {"value": ref[1]} if ref else None

        return manager

    def references(entry: Mapping[str, Any], ctx: DerivedContext) -> Any:
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for dn in referenced_dns(kind, entry):
            ref = ctx.resolve(path, dn)
            if not ref or ref[1] in seen:
                continue
            seen.add(ref[1])
            if kind == "members":
                out.append({"value": ref[1], "type": canonical.get(ref[0].lower(), ref[0])})
            else:
                out.append({"value": ref[1]})
        for url in unresolvable(kind, entry):
            if ctx.on_unresolved is not None:
                ctx.on_unresolved(path, url)
        return out or None

    return references
