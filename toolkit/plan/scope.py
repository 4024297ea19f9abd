"""A pipe's scope: which sync class takes an entry, and what that class's entries become.

One owner for the rule resync and realtime share: classes in evaluation order, the first
whose base DNs and filters take an entry has it. A resync reads each class with its own
search, so the directory tests the filters and the engine keeps each entry with the first
class that read it (`toolkit.plan.engine`); realtime re-reads one entry and asks `class_of`.
"""

from __future__ import annotations

from typing import Any

from toolkit.config.dn import dn_key
from toolkit.config.ldapfilter import filter_attributes, parse_filter
from toolkit.config.model import SyncClass, SyncPipe
from toolkit.entry import Entry, entry_dn
from toolkit.errors import FatalError
from toolkit.ldap.match import compile_filter
from toolkit.mapping.resource import ResourceMapping, ResourceMappings


def class_resource(sync_class: SyncClass, mappings: ResourceMappings) -> ResourceMapping:
    """The resource a class's entries become: its `resource`, else by its include-filter."""
    if sync_class.resource:
        try:
            return mappings[sync_class.resource]
        except KeyError as exc:
            raise FatalError(f"sync class {sync_class.name}: {exc.args[0]}") from None
    text = " ".join(sync_class.include_filter).lower()
    for resource in mappings:
        if any(f"objectclass={oc.lower()}" in text for oc in resource.search.object_classes):
            return resource
    raise FatalError(
        f"sync-pipes.*.sync-classes.{sync_class.name}: cannot tell which resource of the mapping "
        f"its entries become; set its `resource` property ({', '.join(m.name for m in mappings)})"
    )


def reads_entries(sync_class: SyncClass) -> bool:
    """False for Ping's DEFAULT class (an exclusion with neither bases nor filters): it only
    drops what no other class takes, so no run reads or maps entries for it."""
    return not (
        sync_class.is_exclusion and not sync_class.include_base_dn and not sync_class.include_filter
    )


class Scope:
    """The classes of one pipe, in evaluation order, with the resource each class's entries
    become, the attributes a read must carry, and the attributes naming other entries."""

    def __init__(self, pipe: SyncPipe, mappings: ResourceMappings, key: str = "entryUUID"):
        self.classes = pipe.classes_in_order()
        # the attribute of an entry's key (toolkit.entry.key_attribute): every read asks for
        # it, and for the objectClass the filters test, besides the mapping's attributes
        self.key_attribute = key
        self._always = ("objectClass", key)
        # every class whose entries a run reads, exclusions too (their rows say what is not
        # sent): a class whose resource the mapping cannot tell is refused, by every run
        self.resources: dict[str, ResourceMapping] = {
            c.name: class_resource(c, mappings) for c in self.classes if reads_entries(c)
        }
        # each class's base DNs parsed once: an entry's DN is then parsed at most once per
        # entry, and not at all when it ends with a base as spelled (the usual case)
        self._bases = {
            c.name: [(b.strip().lower(), dn_key(b)) for b in c.include_base_dn]
            for c in self.classes
        }
        self._filters = {
            c.name: [compile_filter(f) for f in c.include_filter] for c in self.classes
        }
        names = set(self._always)
        for resource in self.resources.values():
            names.update(resource.ldap_attributes())
        for sync_class in self.classes:  # a re-read entry must carry what the filters test
            for text in sync_class.include_filter:
                names.update(filter_attributes(parse_filter(text)))
        self.attributes = sorted(names)
        # the attributes that name other entries by DN, as the mappings declare them
        self.referencing = sorted(
            {
                a.lower(): a for r in self.resources.values() for a in r.referencing_attributes()
            }.values()
        )

    def class_attributes(self, sync_class: SyncClass) -> list[str]:
        """What a class's own read asks for (its search tests the filters itself)."""
        return sorted({*self.resources[sync_class.name].ldap_attributes(), *self._always})

    def class_of(self, entry: Entry) -> SyncClass | None:
        """The first class by evaluation order whose base DNs and filters take the entry."""
        dn = entry_dn(entry) or ""
        text, parts = dn.lower(), None
        for sync_class in self.classes:
            bases = self._bases[sync_class.name]
            if bases and not any(_ends_with(text, spelled) for spelled, _ in bases):
                parts = parts or dn_key(dn)  # another spelling of a base, or none
                if not any(_is_within(parts, base) for _, base in bases):
                    continue
            predicates = self._filters[sync_class.name]
            if predicates and not any(p(entry) for p in predicates):
                continue
            return sync_class
        return None

    def synchronized(self, entry: Entry) -> tuple[SyncClass, ResourceMapping] | None:
        """The entry's class and resource, when a synchronizing (not an exclusion) class has it."""
        sync_class = self.class_of(entry)
        if sync_class is None or sync_class.is_exclusion:
            return None
        return sync_class, self.resources[sync_class.name]

    def named_dns(self, entry: Entry) -> list[str]:
        """The DNs the entry names through its class's mapping (none out of every class)."""
        found = self.synchronized(entry)
        return found[1].named_dns(entry) if found is not None else []


def _ends_with(dn: str, base: str) -> bool:
    """True when `dn` is `base` or ends with `,` + `base` (both lower case) where that comma
    separates RDNs (is not escaped): then `dn` lies within `base` whatever parsing says, since
    its last RDNs are `base`'s, spelled the same."""
    if dn == base:
        return True
    cut = len(dn) - len(base) - 1
    if cut < 1 or dn[cut] != "," or not dn.endswith(base):
        return False
    backslashes = cut - len(dn[:cut].rstrip("\\"))
    return backslashes % 2 == 0


def _is_within(parts: tuple[Any, ...], base: tuple[Any, ...]) -> bool:
    """`toolkit.config.dn.is_within` on DNs already parsed (dn_key)."""
    return len(parts) >= len(base) and parts[len(parts) - len(base) :] == base
