"""Correlation: which SCIM resource an entry is, behind one lookup for resync and realtime.

The rule (PingDataSync's, with scimsync's additions): the entry's link first, while its
resource exists; then each correlation attribute list of its class in order, the first that
matches deciding; a list naming the resourceIDMapping attribute (or `id`) looks the resource
up by the id the mapping makes; a match linked to another entry that this plan maps to other
values is given up by it (a leaver renamed to `jsmith.old` frees `jsmith` for a new hire).

A resync looks up in memory (`TargetIndex` over every resource read); realtime looks up on
the server as it goes (`toolkit.sync.reconcile`'s lookup), and both run this same code.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from toolkit.config.model import SyncClass
from toolkit.entry import Entry
from toolkit.mapping.resource import ResourceMapping
from toolkit.plan.model import Link


class Lookup(Protocol):
    """The SCIM resources a plan may correlate with, by id and by attribute values."""

    def get(self, kind: str, scim_id: str) -> dict[str, Any] | None:
        """The resource of this type with this id, or None."""
        ...

    def matches(self, kind: str, attrs: tuple[str, ...], values: tuple[Any, ...]) -> list[str]:
        """The ids of the resources whose `attrs` hold `values` (case-insensitively)."""
        ...

    def owner(self, kind: str, scim_id: str) -> str | None:
        """The key of the entry this pipe links to the resource, if any."""
        ...

    def repeated(self, kind: str, attrs: tuple[str, ...]) -> list[list[str]]:
        """The ids of resources known to share their values of `attrs`, two or more a group."""
        ...


def lookup_path(resource: Mapping[str, Any], path: str) -> Any:
    """A value by SCIM path: `userName`, `name.familyName` or `urn:...:attr`, any case."""
    if path.lower().startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        resource = get_ci(resource, urn) or {}
        path = attr
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = get_ci(value, part)
    return value


def get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    """mapping[key], the key in any case (SCIM attribute names are case-insensitive)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if k.lower() == lowered:
            return v
    return None


def correlation_key(values: Iterable[Any]) -> tuple[str, ...] | None:
    """Values as correlation compares them; None when one is missing or not a single value."""
    key = []
    for value in values:
        if value is None or isinstance(value, list | dict) or value == "":
            return None
        key.append(str(value).casefold())
    return tuple(key)


def is_id_list(attrs: Iterable[str], mapping: ResourceMapping) -> bool:
    """True for a correlation list naming the id: the resourceIDMapping attribute or `id`."""
    id_mapping = mapping.search.id_mapping
    id_attr = id_mapping.ldap_attribute.lower() if id_mapping else "id"
    return any(a.lower() in ("id", id_attr) for a in attrs)


def follow_link(link: Link | None, kind: str, lookup: Lookup) -> dict[str, Any] | None:
    """The entry's linked resource, while it exists (and is of the type the entry maps to)."""
    if link is None or link.resource_type != kind:
        return None
    return lookup.get(kind, link.scim_id)


def correlate(
    sync_class: SyncClass,
    mapping: ResourceMapping,
    entry: Entry,
    key: str,
    desired: Mapping[str, Any],
    lookup: Lookup,
    present: Collection[str],
    gives_up: Callable[[str, tuple[str, ...], tuple[str, ...]], bool],
) -> tuple[str | None, str]:
    """The id of the one resource an unlinked entry is, or why it is a conflict: each
    correlation list in order, the first that matches deciding. `present` holds the keys of
    the entries this plan maps; `gives_up(owner, attrs, values)` tells whether such an entry,
    linked to the match, maps to other values of `attrs` (then the next list is tried)."""
    kind = mapping.name
    for names in sync_class.destination_correlation_attributes:
        attrs = tuple(names)
        if is_id_list(attrs, mapping):
            # Ping's shortcut: the resourceIDMapping value is the destination id
            rid = mapping.resource_id(entry)
            found = [rid] if rid and lookup.get(kind, rid) is not None else []
            k = None  # an id, not a name another entry can give up
        else:
            values = tuple(lookup_path(desired, a) for a in attrs)
            k = correlation_key(values)
            found = lookup.matches(kind, attrs, values) if k is not None else []
        if not found:
            continue
        owners = {lookup.owner(kind, m) for m in found} - {None, key}
        owner = next(iter(owners)) if len(found) == 1 and owners else None
        if owner is not None and k is not None and owner in present and gives_up(owner, attrs, k):
            continue  # its entry renames it: this entry's create takes the name (Applier)
        if len(found) > 1 or any(o in present for o in owners):
            what = "targets match" if len(found) > 1 else "target, linked to another entry, matches"
            return None, f"{len(found)} {what} on {','.join(attrs)}: {', '.join(found)}"
        return found[0], ""
    return None, ""


class TargetIndex:
    """Target resources held in memory, by id and, lazily, by correlation attribute values
    and by the entry linked to them (only entries without a working link need those: none,
    usually)."""

    def __init__(self, targets: Mapping[str, list[dict[str, Any]]], links: Mapping[str, Link]):
        self.by_id = {
            kind: {r["id"]: r for r in resources if "id" in r}
            for kind, resources in targets.items()
        }
        self._by_key: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], list[str]]] = {}
        self._links = links
        self._owners: dict[tuple[str, str], str] | None = None

    def owner(self, kind: str, scim_id: str) -> str | None:
        if self._owners is None:
            self._owners = {(lk.resource_type, lk.scim_id): k for k, lk in self._links.items()}
        return self._owners.get((kind, scim_id))

    def get(self, kind: str, scim_id: str) -> dict[str, Any] | None:
        found = self.by_id.get(kind)
        return found.get(scim_id) if found is not None else None

    def matches(self, kind: str, attrs: tuple[str, ...], values: tuple[Any, ...]) -> list[str]:
        key = correlation_key(values)
        if key is None:
            return []
        index = self._by_key.get((kind, attrs))
        if index is None:
            index = self._by_key[(kind, attrs)] = {}
            for scim_id, resource in self.by_id.get(kind, {}).items():
                k = correlation_key(lookup_path(resource, a) for a in attrs)
                if k is not None:
                    index.setdefault(k, []).append(scim_id)
        return index.get(key, [])

    def add(self, kind: str, resource: dict[str, Any]) -> None:
        """One more resource (a lookup that reads as it goes), indexed where indexes exist."""
        self.by_id.setdefault(kind, {})[resource["id"]] = resource
        for (indexed, attrs), index in self._by_key.items():
            k = correlation_key(lookup_path(resource, a) for a in attrs)
            if indexed == kind and k is not None and resource["id"] not in index.get(k, []):
                index.setdefault(k, []).append(resource["id"])

    def repeated(self, kind: str, attrs: tuple[str, ...]) -> list[list[str]]:
        """Without building the correlation index (all targets linked, the common case, needs
        none): one list of keys and a set tell that there are no groups."""
        built = self._by_key.get((kind, attrs))
        if built is not None:
            return [ids for ids in built.values() if len(ids) > 1]
        found = self.by_id.get(kind, {})
        name = attrs[0]
        if len(attrs) == 1 and "." not in name and not name.lower().startswith("urn:"):
            keys = [
                v.casefold() if type(v := r.get(name)) is str and v else _key(r, attrs)
                for r in found.values()
            ]
        else:
            keys = [_key(r, attrs) for r in found.values()]
        present = [k for k in keys if k is not None]
        if len(set(present)) == len(present):
            return []
        groups: dict[Any, list[str]] = {}
        for scim_id, k in zip(found, keys, strict=True):
            if k is not None:
                groups.setdefault(k, []).append(scim_id)
        return [ids for ids in groups.values() if len(ids) > 1]


def _key(resource: Mapping[str, Any], attrs: tuple[str, ...]) -> Any:
    """A target's correlation key for TargetIndex.repeated: of one attribute, its value."""
    key = correlation_key(lookup_path(resource, a) for a in attrs)
    return key[0] if key is not None and len(attrs) == 1 else key
