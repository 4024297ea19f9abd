"""Correlation's lookup on the server: what realtime's plans correlate against.

A resync reads every resource and looks up in memory; realtime plans one entry (or a few) at
a time, so it asks the server for just what correlation asks (a resource by id, resources by
attribute values) and the link store for who owns a resource. Both go through the same
correlation code (toolkit.plan.correlate); what was asked once is remembered for the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from toolkit.plan.correlate import TargetIndex, correlation_key, lookup_path
from toolkit.plan.model import Link
from toolkit.scim.client import ScimClient
from toolkit.scim.errors import NotFound, ScimError
from toolkit.scim.filters import and_, eq, or_
from toolkit.sync.state import StateStore

#: ids per existence query of `present`
PRESENT_CHUNK = 50


class ServerLookup(TargetIndex):
    """The resources found so far (and any known beforehand), the server asked for the rest."""

    def __init__(
        self,
        client: ScimClient,
        store: StateStore,
        pipe: str,
        known: Mapping[str, Iterable[dict[str, Any]]] | None = None,
    ):
        super().__init__({kind: list(found) for kind, found in (known or {}).items()}, {})
        self.client, self.store, self.pipe = client, store, pipe
        self._absent: set[tuple[str, str]] = set()
        self._searched: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
        #: the links of the resources correlation met, by the key of their entry
        self.owners: dict[str, Link] = {}
        self._owner_of: dict[tuple[str, str], str | None] = {}

    def get(self, kind: str, scim_id: str) -> dict[str, Any] | None:
        found = super().get(kind, scim_id)
        if found is not None or (kind, scim_id) in self._absent:
            return found
        try:
            found = self.client.get(kind, scim_id)
        except NotFound:
            self._absent.add((kind, scim_id))
            return None
        self.add(kind, found)
        return found

    def matches(self, kind: str, attrs: tuple[str, ...], values: tuple[Any, ...]) -> list[str]:
        key = correlation_key(values)
        if key is None:
            return []
        asked = (kind, attrs, key)
        if asked not in self._searched:
            terms = [eq(a, v) for a, v in zip(attrs, values, strict=True)]
            found = self.client.find(kind, and_(*terms) if len(terms) > 1 else terms[0])
            ids = []
            for resource in found:
                # as the in-memory index compares: the server's own matching may be looser
                if correlation_key(lookup_path(resource, a) for a in attrs) == key:
                    self.add(kind, resource)
                    ids.append(resource["id"])
            self._searched[asked] = ids
        return self._searched[asked]

    def present(self, kind: str, ids: Iterable[str]) -> set[str]:
        """Which of these ids the server has: those found already, the rest asked by
        `id eq` filters, PRESENT_CHUNK ids a query (a GET each where the server refuses
        such a filter)."""
        wanted = list(dict.fromkeys(ids))
        found = {i for i in wanted if TargetIndex.get(self, kind, i) is not None}
        asked = [i for i in wanted if i not in found and (kind, i) not in self._absent]
        for start in range(0, len(asked), PRESENT_CHUNK):
            chunk = asked[start : start + PRESENT_CHUNK]
            try:
                terms = or_(*(eq("id", i) for i in chunk)) if len(chunk) > 1 else eq("id", chunk[0])
                answered = {r["id"] for r in self.client.find(kind, terms, attributes=["id"])}
            except ScimError:
                answered = {i for i in chunk if self.get(kind, i) is not None}
            found |= answered & set(chunk)
            self._absent.update((kind, i) for i in chunk if i not in answered)
        return found

    def owner(self, kind: str, scim_id: str) -> str | None:
        if (kind, scim_id) not in self._owner_of:
            link = self.store.link_of_target(self.pipe, kind, scim_id)
            self._owner_of[(kind, scim_id)] = link.entry_uuid if link is not None else None
            if link is not None:
                self.owners[link.entry_uuid] = link
        return self._owner_of[(kind, scim_id)]
