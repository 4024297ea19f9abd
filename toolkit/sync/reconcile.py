"""The per-object reconcile of realtime sync: one entry's current state made true on the target.

It is the plan engine on one object: the same mapping, correlation, diff and requests that a
resync builds for every object, and the same Applier sends them. The entry is re-read from
the directory (a change record's values are never trusted), so replaying a change is harmless.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from toolkit.config.dn import dn_key, normalize_dn
from toolkit.config.ldapfilter import filter_attributes, parse_filter
from toolkit.config.model import Config, SyncClass, SyncPipe
from toolkit.entry import entry_key, key_attribute
from toolkit.errors import SkippableError
from toolkit.ldap.match import compile_filter
from toolkit.ldap.source import LdapSource
from toolkit.mapping.resource import ResourceMapping, ResourceMappings
from toolkit.plan.engine import (
    ClassRead,
    PlanInputs,
    build,
    has_pending,
    lookup_path,
)
from toolkit.plan.guards import DeleteBudget
from toolkit.plan.model import (
    CONFLICT,
    CREATE,
    DELETE,
    OUT_OF_SCOPE,
    UNCHANGED,
    Link,
    Row,
    form_hash,
)
from toolkit.plan.names import unique_attribute
from toolkit.plan.plan import Plan
from toolkit.scim.client import ScimClient
from toolkit.scim.errors import NotFound, PreconditionFailed
from toolkit.scim.filters import and_, eq
from toolkit.scim.validate import Validator
from toolkit.sync import synclog
from toolkit.sync.apply import Applier, Outcome
from toolkit.sync.batch import class_resource
from toolkit.sync.state import StateStore

#: DNs per search for the entries that name them (times the referencing attributes)
REFERENCERS_CHUNK = 50
#: entries one plan of reconcile_together reads at most for the targets' owners
OWNERS_LIMIT = 50
#: DNs compared as the link store's `COLLATE NOCASE` compares them (ASCII letters only)
_NOCASE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass
class Result:
    """What reconciling one entry did, in the sync log's words."""

    msg_type: str
    situation: str | None = None
    dn: str | None = None
    class_name: str | None = None
    scim_id: str | None = None
    detail: str = ""
    unresolved: bool = False  # references left out: worth one more pass later
    key: str | None = None  # the entry's key (entryUUID): the failures table's key
    changes: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = field(default=None, repr=False)  # why a change failed
    held: bool = False  # a delete the delete guard held back (not applied, not retried)
    # the DN the entry's link held before, when this reconcile moved it (a rename applied):
    # entries naming either DN map anew
    moved_from: str | None = None


class Reconciler:
    """Reconciles entries of one pipe; shared by the realtime workers (thread-safe)."""

    def __init__(
        self,
        config: Config,
        pipe: SyncPipe,
        mappings: ResourceMappings,
        source: LdapSource,
        client: ScimClient,
        store: StateStore,
    ):
        self.config, self.pipe, self.mappings = config, pipe, mappings
        self.source, self.client, self.store = source, client, store
        self.classes = pipe.classes_in_order()
        self.resources: dict[str, ResourceMapping] = {}
        self.filters = {}
        # each class's base DNs parsed once: an entry's DN is then parsed at most once per
        # entry, and not at all when it ends with a base as spelled (the usual case)
        self.bases = {
            c.name: [(b.strip().lower(), dn_key(b)) for b in c.include_base_dn]
            for c in self.classes
        }
        self.validator: Validator | None = None
        for sync_class in self.classes:
            if not sync_class.is_exclusion:
                self.resources[sync_class.name] = class_resource(sync_class, mappings)
            self.filters[sync_class.name] = [compile_filter(f) for f in sync_class.include_filter]
        # the attribute of the entries' keys (entryUUID; objectGUID on Active Directory)
        self.unique_id = key_attribute(
            getattr(getattr(source, "spec", None), "unique_id_attribute", None)
        )
        names = {"objectClass", self.unique_id}
        for resource in self.resources.values():
            names.update(resource.ldap_attributes())
        for sync_class in self.classes:  # the re-read entry must carry what the filters test
            for text in sync_class.include_filter:
                names.update(filter_attributes(parse_filter(text)))
        self.attributes = sorted(names)
        # the attributes that name other entries by DN, as the mappings declare them
        self.referencing = sorted(
            {
                a.lower(): a for r in self.resources.values() for a in r.referencing_attributes()
            }.values()
        )
        self.update_method = config.destination_of(pipe).update_method
        self.endpoints: dict[str, str] = {}
        # the links of the DNs a realtime batch's entries refer to, read when the batch starts
        # (DN as NOCASE compares it -> its links): set and cleared while no worker runs
        self.known_references: dict[str, list[Link]] | None = None
        # realtime's delete guard (None: deletes allowed past it, --allow-deletes)
        self.delete_budget: DeleteBudget | None = None

    # --- scope -------------------------------------------------------------------------------

    def class_of(self, entry: dict[str, Any]) -> SyncClass | None:
        """The first class by evaluation order whose base DNs and filters take the entry."""
        text, parts = entry["dn"].lower(), None
        for sync_class in self.classes:
            bases = self.bases[sync_class.name]
            if bases and not any(_ends_with(text, spelled) for spelled, _ in bases):
                parts = parts or dn_key(entry["dn"])  # another spelling of a base, or none
                if not any(_is_within(parts, base) for _, base in bases):
                    continue
            predicates = self.filters[sync_class.name]
            if predicates and not any(p(entry) for p in predicates):
                continue
            return sync_class
        return None

    # --- the reconcile -------------------------------------------------------------------------

    def locate(
        self, dn: str | None, unique_id: str | None, unique_attr: str | None
    ) -> dict[str, Any] | None:
        """The entry as it is now: by its unique id when the feed gave one, else by DN."""
        if unique_id and unique_attr:
            found = self.source.find_entries(unique_attr, unique_id, self.attributes)
            return found[0] if found else None
        return self.source.get_entry(dn, self.attributes) if dn else None

    def reconcile(
        self,
        entry: dict[str, Any] | None,
        link: Link | None,
        kind_allowed: str | None = None,
        trust_link: bool = True,
    ) -> Result:
        """Make the target match `entry` (None: the entry is gone) for the pipe.

        With `trust_link`, a linked resource is not read first: the diff is made against the
        form last applied to it and sent with If-Match on its ETag; a 412 (someone else changed
        it) or a 404 sends the entry back through a fresh read.
        """
        sync_class = self.class_of(entry) if entry is not None else None
        if entry is None or sync_class is None or sync_class.is_exclusion:
            if link is None:
                what = "entry not found" if entry is None else "no synchronizing class takes it"
                return Result(
                    synclog.DROPPED_OUT_OF_SCOPE, dn=entry["dn"] if entry else None, detail=what
                )
            return self._remove(link, gone=entry is None)
        if kind_allowed and not getattr(sync_class, f"synchronize_{kind_allowed}"):
            return Result(
                synclog.DROPPED_OP_TYPE,
                dn=entry["dn"],
                class_name=sync_class.name,
                detail=f"class {sync_class.name} does not synchronize {kind_allowed}",
            )
        resource = self.resources[sync_class.name]
        link = link or self.store.link(self.pipe.name, entry_key(entry))
        remembered = self._remembered(link, resource) if trust_link else None
        targets = [remembered] if remembered else self._targets(resource, sync_class, entry, link)
        if not remembered and self._owners(entry, resource, targets, link, first=True):
            # a resource another entry has: correlated as resync does, with that entry read
            return self.reconcile_together([(entry, link)])[0]
        links = self._reference_links(entry, resource)
        if link is not None:
            links[link.entry_uuid] = link
        result = self._apply(
            self._inputs(
                [ClassRead(sync_class, resource, [entry])], {resource.name: targets}, links
            )
        )
        if remembered and isinstance(result.error, PreconditionFailed | NotFound):
            again = self.reconcile(entry, link, kind_allowed, trust_link=False)
            if again.msg_type != synclog.CHANGE_FAILED and result.key:
                # the applier recorded the 412 (or 404) as a failure; the fresh read settled
                # it, perhaps with nothing left to send (a replayed change already applied)
                self.store.clear_failure(self.pipe.name, result.key)
            return again
        return result

    def reconcile_together(
        self, items: list[tuple[dict[str, Any] | None, Link | None]]
    ) -> list[Result]:
        """Make the target match several entries in one plan, applied as resync applies it:
        entries that take each other's unique names (a swap, a rotation) are sent in an order
        that frees each name first, one resource of a cycle moved aside for a moment
        (toolkit.sync.apply). An entry gone or out of scope is reconciled on its own."""
        results: dict[int, Result] = {}
        reads: dict[str, ClassRead] = {}
        targets: dict[str, dict[str, dict[str, Any]]] = {}
        links: dict[str, Link] = {}
        keys: dict[str, int] = {}  # entry key -> position in items
        todo = list(items)
        for i, (entry, link) in enumerate(todo):  # grows by the owners of matched targets
            sync_class = self.class_of(entry) if entry is not None else None
            if entry is None or sync_class is None or sync_class.is_exclusion:
                results[i] = self.reconcile(entry, link)
                continue
            resource = self.resources[sync_class.name]
            link = link or self.store.link(self.pipe.name, entry_key(entry))
            found = self._targets(resource, sync_class, entry, link)
            for target in found:
                targets.setdefault(resource.name, {})[target["id"]] = target
            holders = self._holders(entry, resource, found)
            owners = (
                self._owners(entry, resource, found + holders, link)
                if len(todo) < OWNERS_LIMIT
                else []
            )
            for owner in owners:
                if owner[1].entry_uuid not in keys and all(
                    entry_key(e) != owner[1].entry_uuid for e, _ in todo if e is not None
                ):
                    todo.append(owner)
            links.update(self._reference_links(entry, resource))
            if link is not None:
                links[link.entry_uuid] = link
            read = reads.setdefault(sync_class.name, ClassRead(sync_class, resource, []))
            read.entries.append(entry)
            keys[entry_key(entry)] = i
        if reads:
            inputs = self._inputs(
                [reads[c.name] for c in self.classes if c.name in reads],
                {kind: list(found.values()) for kind, found in targets.items()},
                links,
            )
            rows = build(inputs).rows
            plan = Plan(pipe=self.pipe.name, rows=rows, partial=True)
            applier = Applier(plan, self.client, self.store, workers=1, links=links)
            outcomes = {id(o.row): o for o in applier.run().failures}
            for row in rows:
                sent = row.situation not in (UNCHANGED, OUT_OF_SCOPE, CONFLICT)
                outcome = outcomes.get(id(row)) or Outcome(row, True, scim_id=row.scim_id)
                results[keys[row.entry_uuid]] = self._result(row, outcome if sent else None, links)
        return [results[i] for i in range(len(items))]

    def _holders(
        self, entry: dict[str, Any], resource: ResourceMapping, targets: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The resource holding the unique name (userName, displayName) the entry's resource
        is to take, when another does: its entry, read too, may give it up (a swap whose
        halves reached the target in different batches or retries)."""
        attr = unique_attribute(resource.name)
        try:
            wanted = resource.to_scim(entry).get(attr)
        except SkippableError:  # a value the mapping refuses: the plan's row will say so
            return []
        if not isinstance(wanted, str) or any(
            str(t.get(attr)).casefold() == wanted.casefold() for t in targets
        ):
            return []
        return self.client.find(resource.name, eq(attr, wanted))

    def _owners(
        self,
        entry: dict[str, Any],
        resource: ResourceMapping,
        targets: list[dict[str, Any]],
        link: Link | None,
        first: bool = False,
    ) -> list[tuple[dict[str, Any], Link]]:
        """The entries (as read now, with their links) that these targets are linked to,
        other than `entry`, when in a synchronizing class: resync reads them too, and
        decides by them whether the entry may take the target (a name they give up, or a
        conflict). An owner gone or out of scope leaves the target to be adopted, as resync
        does. With `first`, the first owner only (whether there is one)."""
        key, out = entry_key(entry), []
        for target in targets:
            if link is not None and target["id"] == link.scim_id:
                continue  # the entry's own resource (the usual case: no query)
            owner = self.store.link_of_target(self.pipe.name, resource.name, target["id"])
            if owner is None or owner.entry_uuid == key:
                continue
            found = (
                None
                if owner.entry_uuid.startswith("dn:")
                else self.locate(None, owner.entry_uuid, self.unique_id)
            )
            sync_class = self.class_of(found) if found is not None else None
            if sync_class is not None and not sync_class.is_exclusion:
                out.append((found, owner))
                if first:
                    break
        return out

    def _remembered(self, link: Link | None, resource: ResourceMapping) -> dict[str, Any] | None:
        """The linked resource as this pipe last left it, when ETags can vouch for that."""
        if (
            link is None
            or not link.form
            or not link.etag
            or link.resource_type != resource.name
            or self.update_method != "patch"
            or not self.client.discovery.capabilities.etag
        ):
            return None
        return {**link.form, "id": link.scim_id, "meta": {"version": link.etag}}

    def _remove(self, link: Link, gone: bool) -> Result:
        """The linked entry was deleted or left every class: delete (or deactivate) its resource."""
        sync_class = self.pipe.sync_classes.get(link.class_name)
        resource = self.resources.get(link.class_name) or self.mappings[link.resource_type]
        try:
            target = self.client.get(link.resource_type, link.scim_id)
        except NotFound:
            self.store.delete_links(self.pipe.name, [link.entry_uuid])
            return Result(
                synclog.NO_CHANGE_NEEDED,
                dn=link.dn,
                class_name=link.class_name,
                detail="the resource is already gone from the target",
            )
        if sync_class is None:
            return Result(
                synclog.DROPPED_OP_TYPE,
                dn=link.dn,
                detail=f"class {link.class_name} no longer exists",
            )
        return self._apply(
            PlanInputs(
                pipe=self.pipe.name,
                classes=[ClassRead(sync_class, resource, [])],
                targets={link.resource_type: [target]},
                links={link.entry_uuid: link},
                endpoints=self._endpoints(),
                delete_policy=self.pipe.delete_policy,
                partial=False,
                validator=self._validator(),
            ),
            detail="entry deleted" if gone else "entry moved out of scope",
        )

    def _inputs(
        self,
        classes: list[ClassRead],
        targets: dict[str, list[dict[str, Any]]],
        links: dict[str, Link],
    ) -> PlanInputs:
        """A partial plan's inputs: these entries and targets, as the pipe maps and sends them."""
        return PlanInputs(
            pipe=self.pipe.name,
            classes=classes,
            targets=targets,
            links=links,
            endpoints=self._endpoints(),
            update_method=self.update_method,
            delete_policy=self.pipe.delete_policy,
            member_chunk_size=self.pipe.member_chunk_size,
            partial=True,
            validator=self._validator(),
        )

    def _validator(self) -> Validator:
        """The schema check every plan makes, as resync does."""
        if self.validator is None:
            self.validator = Validator(self.client.discovery)
        return self.validator

    def _apply(self, inputs: PlanInputs, detail: str = "") -> Result:
        result = build(inputs)
        rows = [r for r in result.rows if r.situation != OUT_OF_SCOPE or r.reason]
        if not rows:
            return Result(synclog.NO_CHANGE_NEEDED, detail=detail or "nothing to do")
        row = rows[0]
        outcome = None
        if row.situation == DELETE and self.delete_budget is not None:
            held = self.delete_budget.take(row.class_name)
            if held:  # not sent: kept for the operator (RealtimeSync records it)
                return Result(
                    synclog.CHANGE_FAILED,
                    situation=row.situation,
                    dn=row.dn,
                    class_name=row.class_name,
                    key=row.entry_uuid or None,
                    detail=held,
                    held=True,
                )
        if row.situation not in (UNCHANGED, OUT_OF_SCOPE, CONFLICT):
            plan = Plan(pipe=self.pipe.name, rows=[row], partial=inputs.partial)
            # the entry's link was read for this reconcile: its write needs no second read
            outcome = Applier(plan, self.client, self.store, links=inputs.links).apply_row(row)
        return self._result(row, outcome, inputs.links, detail)

    def _result(
        self, row: Row, outcome: Outcome | None, links: dict[str, Link], detail: str = ""
    ) -> Result:
        """A row of a plan and the outcome of applying it (None: nothing was sent)."""
        result = self._row_result(row, outcome, links, detail)
        link = links.get(row.entry_uuid)
        if (
            link is not None
            and result.msg_type != synclog.CHANGE_FAILED
            and normalize_dn(link.dn) != normalize_dn(row.dn)
        ):
            result.moved_from = link.dn  # the link now holds row.dn
        return result

    def _row_result(
        self, row: Row, outcome: Outcome | None, links: dict[str, Link], detail: str
    ) -> Result:
        base = {
            "situation": row.situation,
            "dn": row.dn,
            "class_name": row.class_name,
            "changes": row.changes,
            "key": row.entry_uuid or None,
        }
        # references left out, or to the entry itself (a create sent before its id is known):
        # realtime's second pass sets them, as the Applier completes a run's cycles
        unresolved = "unresolved" in (row.reason or "") or (
            row.situation == CREATE and any(has_pending(r.body) for r in row.requests)
        )
        note = "; ".join(t for t in (detail, row.reason) if t)
        if row.situation == UNCHANGED:
            self._keep_link(links.get(row.entry_uuid), row)
            return Result(
                synclog.NO_CHANGE_NEEDED,
                scim_id=row.scim_id,
                detail=note,
                unresolved=unresolved,
                **base,
            )
        if row.situation == OUT_OF_SCOPE:
            return Result(synclog.DROPPED_OP_TYPE, scim_id=row.scim_id, detail=row.reason, **base)
        if row.situation == CONFLICT or outcome is None:
            return Result(synclog.CHANGE_FAILED, detail=row.reason, **base)
        if not outcome.ok:
            return Result(synclog.CHANGE_FAILED, detail=outcome.error, error=outcome.exc, **base)
        if row.situation == DELETE and not outcome.note:
            self.store.record_delete(self.pipe.name, row.class_name, self.pipe.delete_guard_window)
        return Result(
            synclog.CHANGE_APPLIED,
            scim_id=outcome.scim_id,
            detail="; ".join(t for t in (note, outcome.note) if t),
            unresolved=unresolved,
            **base,
        )

    def _keep_link(self, link: Link | None, row: Row) -> None:
        """An unchanged resource's link still follows its entry: a move (or a class change)
        updates the link's DN, through which 389-DS deletes and references find entries.
        A resource read afresh (its remembered ETag answered 412, e.g. a change replayed after
        a kill that lost the link's last write) is remembered as read, so the next change
        needs no read. (A resource merely found by correlation stays unlinked, as resync
        leaves it.)"""
        if link is None or link.scim_id != row.scim_id:
            return
        moved = normalize_dn(link.dn) != normalize_dn(row.dn) or link.class_name != row.class_name
        applied = self._form_read(row) if row.etag is not None and link.etag != row.etag else None
        if not moved and applied is None:
            return
        kept = replace(link, dn=row.dn, class_name=row.class_name)
        if applied is not None:
            kept = replace(kept, etag=row.etag, hash=applied[1], form=applied[0])
        self.store.save_links(
            self.pipe.name, [kept], defer=not moved, stored={link.entry_uuid: link}
        )

    def _form_read(self, row: Row) -> tuple[dict[str, Any], str] | None:
        """The comparable form and hash of an unchanged row's target as read (what the link
        remembers), or None when it cannot stand for the target (references unresolved)."""
        if "unresolved" in (row.reason or ""):
            return None
        form, digest = row.form, row.content_hash()
        if form is None:  # the engine's shortcut for a target already as mapped
            resource = self.resources.get(row.class_name)
            if resource is None or row.target is None:
                return None
            form = resource.normalize(row.target)
            digest = form_hash(form)
        if has_pending(form) or digest is None:
            return None
        return form, digest

    # --- what the engine needs for one entry ---------------------------------------------------

    def _endpoints(self) -> dict[str, str]:
        if not self.endpoints:
            self.endpoints = {r.name: self.client.endpoint_path(r.name) for r in self.mappings}
        return self.endpoints

    def _targets(
        self,
        resource: ResourceMapping,
        sync_class: SyncClass,
        entry: dict[str, Any],
        link: Link | None,
    ) -> list[dict[str, Any]]:
        """The linked resource, else the candidates of the first correlation list that finds any."""
        if link is not None:
            try:
                return [self.client.get(resource.name, link.scim_id)]
            except NotFound:
                pass
        desired = resource.to_scim(entry)
        id_mapping = resource.search.id_mapping
        id_attr = id_mapping.ldap_attribute.lower() if id_mapping else "id"
        for attrs in sync_class.destination_correlation_attributes:
            if any(a.lower() in ("id", id_attr) for a in attrs):
                rid = resource.resource_id(entry)
                try:
                    return [self.client.get(resource.name, rid)] if rid else []
                except NotFound:
                    continue
            values = [_value(desired, a) for a in attrs]
            if any(v is None for v in values):
                continue
            found = self.client.find(
                resource.name,
                and_(*(eq(a, v) for a, v in zip(attrs, values, strict=True)))
                if len(attrs) > 1
                else eq(attrs[0], values[0]),
            )
            if found:
                return found
        return []

    def read_references(self, entries: Iterable[dict[str, Any]]) -> dict[str, list[Link]]:
        """The links of every DN these entries refer to, in a query per 500 DNs (managers and
        groups' members recur from entry to entry): what `known_references` takes."""
        dns = list(dict.fromkeys(dn for entry in entries for dn in self._named_dns(entry)))
        found: dict[str, list[Link]] = {dn.translate(_NOCASE): [] for dn in dns}
        for link in self.store.links_by_dns(self.pipe.name, dns).values():
            found.setdefault(link.dn.translate(_NOCASE), []).append(link)
        return found

    def referencers(self, dns: Iterable[str]) -> list[dict[str, Any]]:
        """The entries that name one of these DNs in an attribute the mappings resolve (a
        manager, a group member): they map anew when the entry at such a DN is added,
        deleted, renamed or moved. Read as reconcile needs them, a search per 50 DNs."""
        wanted = list(dict.fromkeys(dns))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted) if self.referencing else 0, REFERENCERS_CHUNK):
            chunk = wanted[start : start + REFERENCERS_CHUNK]
            for entry in self.source.find_any(self.referencing, chunk, self.attributes):
                found.setdefault(entry_key(entry), entry)
        return list(found.values())

    def _named_dns(self, entry: dict[str, Any]) -> list[str]:
        """The DNs the entry names through its class's mapping (none out of every class)."""
        sync_class = self.class_of(entry)
        resource = self.resources.get(sync_class.name) if sync_class is not None else None
        return resource.named_dns(entry) if resource is not None else []

    def _reference_links(self, entry: dict[str, Any], resource: ResourceMapping) -> dict[str, Link]:
        dns = resource.named_dns(entry)
        if not dns:
            return {}
        known = self.known_references
        if known is not None:
            keys = [dn.translate(_NOCASE) for dn in dns]
            if all(key in known for key in keys):
                return {link.entry_uuid: link for key in keys for link in known[key]}
        return self.store.links_by_dns(self.pipe.name, dns)


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
    """`toolkit.config.dn.is_within` on DNs already parsed (normalize_dn)."""
    return len(parts) >= len(base) and parts[len(parts) - len(base) :] == base


def _value(resource: dict[str, Any], path: str) -> Any:
    value = lookup_path(resource, path)
    return None if isinstance(value, list | dict) or value in (None, "") else value
