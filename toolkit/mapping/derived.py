"""Derived attributes: values that are DNs in LDAP and SCIM ids on the target.

The SDK's GroupsDerivedAttribute, MembersDerivedAttribute and ManagerDerivedAttribute search
LDAP for each DN; here a resolver answers instead (the plan layer backs it with the link
store and the entries it has read). A DN the resolver does not know is left out and reported,
never invented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from toolkit.mapping.dn import normalize_dn, strip_unique_member_uid
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


def derived_function(
    kind: DerivationKind, path: str, canonical_types: Iterable[str] = ()
) -> DerivedFunction:
    """The function computing a derived attribute from a lower-cased entry dict."""
    canonical = {name.lower(): name for name in canonical_types}

    if kind == "manager":

        def manager(entry: Mapping[str, Any], ctx: DerivedContext) -> Any:
            values = entry.get("manager")
            if not values:
                return None
            # as the reader gives it (a list of text) without copying; else through _values
            first = values[0] if type(values) is list else None
            dn = first if type(first) is str else _values(entry, "manager")[0]
            ref = ctx.resolve(path, dn)
            return {"value": ref[1]} if ref else None

        return manager

    if kind == "members":

        def members(entry: Mapping[str, Any], ctx: DerivedContext) -> Any:
            out: list[dict[str, str]] = []
            seen: set[str] = set()
            dns = [*_values(entry, "member"), *_values(entry, "uniquemember")]
            for raw in dns:
                ref = ctx.resolve(path, strip_unique_member_uid(raw))
                if not ref or ref[1] in seen:
                    continue
                seen.add(ref[1])
                out.append({"value": ref[1], "type": canonical.get(ref[0].lower(), ref[0])})
            # Dynamic groups need an LDAP search per URL, which a pure mapping cannot do.
            for url in _values(entry, "memberurl"):
                if ctx.on_unresolved is not None:
                    ctx.on_unresolved(path, url)
            return out or None

        return members

    def groups(entry: Mapping[str, Any], ctx: DerivedContext) -> Any:
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for dn in [*_values(entry, "ismemberof"), *_values(entry, "memberof")]:
            ref = ctx.resolve(path, dn)
            if not ref or ref[1] in seen:
                continue
            seen.add(ref[1])
            out.append({"value": ref[1]})
        return out or None

    return groups
