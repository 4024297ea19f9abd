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

from toolkit.config.dn import normalize_dn
from toolkit.config.model import Config, SyncClass, SyncPipe
from toolkit.entry import entry_key, key_attribute
from toolkit.ldap.source import LdapSource
from toolkit.mapping.resource import ResourceMapping, ResourceMappings
from toolkit.plan.engine import (
    ClassRead,
    PlanInputs,
    PlanResult,
    build,
    has_pending,
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
from toolkit.plan.scope import Scope
from toolkit.scim.client import ScimClient
from toolkit.scim.errors import NotFound, PreconditionFailed
from toolkit.scim.validate import Validator
from toolkit.sync import synclog
from toolkit.sync.apply import Applier, Outcome
from toolkit.sync.lookup import ServerLookup
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
        scope: Scope | None = None,
    ):
        self.config, self.pipe, self.mappings = config, pipe, mappings
        self.source, self.client, self.store = source, client, store
        # the attribute of the entries' keys (entryUUID; objectGUID on Active Directory)
        spec = getattr(source, "spec", None)
        self.scope = scope or Scope(
            pipe, mappings, key_attribute(getattr(spec, "unique_id_attribute", None))
        )
        self.unique_id = self.scope.key_attribute
        self.validator: Validator | None = None
        self.update_method = config.destination_of(pipe).update_method
        self.endpoints: dict[str, str] = {}
        # the links of the DNs a realtime batch's entries refer to, read when the batch starts
        # (DN as NOCASE compares it -> its links): set and cleared while no worker runs
        self.known_references: dict[str, list[Link]] | None = None
        # realtime's delete guard (None: deletes allowed past it, --allow-deletes)
        self.delete_budget: DeleteBudget | None = None

    # --- the reconcile -------------------------------------------------------------------------

    def locate(
        self, dn: str | None, unique_id: str | None, unique_attr: str | None
    ) -> dict[str, Any] | None:
        """The entry as it is now: by its unique id when the feed gave one, else by DN."""
        if unique_id and unique_attr:
            found = self.source.find_entries(unique_attr, unique_id, self.scope.attributes)
            return found[0] if found else None
        return self.source.get_entry(dn, self.scope.attributes) if dn else None

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
        scoped = self.scope.synchronized(entry) if entry is not None else None
        kept = self._excluded(entry) if scoped is None and link is not None else None
        if kept is not None:
            return kept
        if entry is None or scoped is None:
            if link is None:
                what = "entry not found" if entry is None else "no synchronizing class takes it"
                return Result(
                    synclog.DROPPED_OUT_OF_SCOPE, dn=entry["dn"] if entry else None, detail=what
                )
            return self._remove(link, gone=entry is None)
        sync_class, resource = scoped
        if kind_allowed and not getattr(sync_class, f"synchronize_{kind_allowed}"):
            return Result(
                synclog.DROPPED_OP_TYPE,
                dn=entry["dn"],
                class_name=sync_class.name,
                detail=f"class {sync_class.name} does not synchronize {kind_allowed}",
            )
        link = link or self.store.link(self.pipe.name, entry_key(entry))
        remembered = self._remembered(link, resource) if trust_link else None
        inputs, built, lookup = self.plan_entry(entry, link, remembered, scoped)
        also = {**lookup.owners, **self._dangling(built.rows, inputs.links, lookup)}
        if self._linked_entries(also, {entry_key(entry)}, first=True):
            # a resource another entry has, or one a reference names gone: planned as resync
            # plans them, with those entries read
            return self.reconcile_together([(entry, link)])[0]
        result = self._apply(inputs, built)
        if remembered and isinstance(result.error, PreconditionFailed | NotFound):
            again = self.reconcile(entry, link, kind_allowed, trust_link=False)
            if again.msg_type != synclog.CHANGE_FAILED and result.key:
                # the applier recorded the 412 (or 404) as a failure; the fresh read settled
                # it, perhaps with nothing left to send (a replayed change already applied)
                self.store.clear_failure(self.pipe.name, result.key)
            return again
        return result

    def _excluded(self, entry: dict[str, Any] | None) -> Result | None:
        """A linked entry now in an exclusion class that reads its entries (not Ping's
        DEFAULT, which only catches what no class takes): resync reads it there and leaves
        its resource and link as they are, and so does realtime."""
        sync_class = self.scope.class_of(entry) if entry is not None else None
        if entry is None or sync_class is None or sync_class.name not in self.scope.resources:
            return None
        return Result(
            synclog.DROPPED_OUT_OF_SCOPE,
            dn=entry["dn"],
            class_name=sync_class.name,
            detail=f"class {sync_class.name} synchronizes nothing: its resource is left as it is",
        )

    def plan_entry(
        self,
        entry: dict[str, Any],
        link: Link | None,
        remembered: dict[str, Any] | None = None,
        scoped: tuple[SyncClass, ResourceMapping] | None = None,
    ) -> tuple[PlanInputs, PlanResult, ServerLookup]:
        """The partial plan of one entry of a synchronizing class, nothing sent: the entry
        mapped once and correlated through the server (the remembered form of its linked
        resource standing for it, when given). `scoped`: its class and resource, when the
        caller has them (Scope.synchronized)."""
        scoped = scoped or self.scope.synchronized(entry)
        assert scoped is not None, "plan_entry takes entries of synchronizing classes"
        sync_class, resource = scoped
        lookup = self._lookup({resource.name: [remembered]} if remembered else None)
        links = self._reference_links(entry, resource)
        if link is not None:
            links[link.entry_uuid] = link
        inputs = self._inputs([ClassRead(sync_class, resource, [entry])], links, lookup)
        return inputs, build(inputs), lookup

    def reconcile_together(
        self, items: list[tuple[dict[str, Any] | None, Link | None]]
    ) -> list[Result]:
        """Make the target match several entries in one plan, applied as resync applies it:
        entries that take each other's unique names (a swap, a rotation) are sent in an order
        that frees each name first, one resource of a cycle moved aside for a moment
        (toolkit.sync.apply). An entry gone or out of scope is reconciled on its own.

        The entries owning a resource that correlation met, or the unique name an entry is to
        take, are read too and planned with them, as a resync has them (up to OWNERS_LIMIT)."""
        results: dict[int, Result] = {}
        todo: list[tuple[dict[str, Any], Link | None]] = []
        positions: dict[str, int] = {}  # entry key -> position in items
        for i, (entry, link) in enumerate(items):
            if entry is None or self.scope.synchronized(entry) is None:
                results[i] = self.reconcile(entry, link)
                continue
            todo.append((entry, link or self.store.link(self.pipe.name, entry_key(entry))))
            positions[entry_key(entry)] = i
        if todo:
            lookup, checked = self._lookup(), set()
            while True:
                inputs = self._together_inputs(todo, lookup)
                rows = build(inputs).rows
                self._holders(rows, lookup)
                also = {**lookup.owners, **self._dangling(rows, inputs.links, lookup)}
                planned = {entry_key(e) for e, _ in todo}
                more = (
                    self._linked_entries(also, planned | checked)
                    if len(todo) < OWNERS_LIMIT
                    else []
                )
                checked.update(also)
                if not more:
                    break
                todo += more
            plan = Plan(pipe=self.pipe.name, rows=rows, partial=True)
            applier = Applier(plan, self.client, self.store, workers=1, links=inputs.links)
            outcomes = {id(o.row): o for o in applier.run().failures}
            for row in rows:
                if row.entry_uuid not in positions:
                    continue  # an owner read for the plan: its own change reconciles it
                sent = row.situation not in (UNCHANGED, OUT_OF_SCOPE, CONFLICT)
                outcome = outcomes.get(id(row)) or Outcome(row, True, scim_id=row.scim_id)
                results[positions[row.entry_uuid]] = self._result(
                    row, outcome if sent else None, inputs.links
                )
        return [results[i] for i in range(len(items))]

    def _together_inputs(
        self, todo: list[tuple[dict[str, Any], Link | None]], lookup: ServerLookup
    ) -> PlanInputs:
        reads: dict[str, ClassRead] = {}
        links: dict[str, Link] = {}
        for entry, link in todo:
            scoped = self.scope.synchronized(entry)
            assert scoped is not None  # todo holds entries in synchronizing classes only
            sync_class, resource = scoped
            links.update(self._reference_links(entry, resource))
            if link is not None:
                links[link.entry_uuid] = link
            read = reads.setdefault(sync_class.name, ClassRead(sync_class, resource, []))
            read.entries.append(entry)
        ordered = [reads[c.name] for c in self.scope.classes if c.name in reads]
        return self._inputs(ordered, links, lookup)

    def _holders(self, rows: list[Row], lookup: ServerLookup) -> None:
        """The resources holding the unique names (userName, displayName) the rows' resources
        are to take, when others hold them, looked up with their owners: those entries, read
        too, may give the names up (a swap whose halves reached the target in different
        batches or retries)."""
        for row in rows:
            if row.desired is None or row.situation in (UNCHANGED, OUT_OF_SCOPE):
                continue
            attr = unique_attribute(row.resource_type)
            wanted = row.desired.get(attr)
            held = (row.target or {}).get(attr)
            if not isinstance(wanted, str) or str(held).casefold() == wanted.casefold():
                continue
            for scim_id in lookup.matches(row.resource_type, (attr,), (wanted,)):
                lookup.owner(row.resource_type, scim_id)

    def _dangling(
        self, rows: list[Row], links: dict[str, Link], lookup: ServerLookup
    ) -> dict[str, Link]:
        """The links of other entries whose resources the rows' requests name but the server
        no longer has (deleted out of band, the target wiped): a resync would create those
        entries' resources and name the new ones, so they are planned too. Only ids a
        request sends are looked up (ServerLookup.present, a query per 50): a change that
        names no other resource costs nothing."""
        linked = {lk.scim_id: lk for lk in links.values()}
        named: dict[str, Link] = {}
        for row in rows:
            for request in row.requests:
                for value in _strings(request.body):
                    found = linked.get(value)
                    if found is not None and found.entry_uuid != row.entry_uuid:
                        named[found.scim_id] = found
        out: dict[str, Link] = {}
        for kind in {lk.resource_type for lk in named.values()}:
            ids = [i for i, lk in named.items() if lk.resource_type == kind]
            there = lookup.present(kind, ids)
            out.update({named[i].entry_uuid: named[i] for i in ids if i not in there})
        return out

    def _linked_entries(
        self, links: dict[str, Link], skip: set[str], first: bool = False
    ) -> list[tuple[dict[str, Any], Link]]:
        """The entries of these links (as read now), other than those to skip (planned, or
        read already), when in a synchronizing class: resync reads them too, and decides by
        them whether an entry may take a resource (a name they give up, or a conflict) or
        which id a reference gets. An entry gone or out of scope is left out, as resync
        leaves it. With `first`, the first such entry only (whether there is one)."""
        out = []
        for key, owner in links.items():
            if key in skip or key.startswith("dn:"):
                continue
            found = self.locate(None, key, self.unique_id)
            if found is not None and self.scope.synchronized(found) is not None:
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
        resource = self.scope.resources.get(link.class_name) or self.mappings[link.resource_type]
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
        inputs = PlanInputs(
            pipe=self.pipe.name,
            classes=[ClassRead(sync_class, resource, [])],
            targets={link.resource_type: [target]},
            links={link.entry_uuid: link},
            endpoints=self._endpoints(),
            delete_policy=self.pipe.delete_policy,
            partial=False,
            validator=self._validator(),
        )
        detail = "entry deleted" if gone else "entry moved out of scope"
        return self._apply(inputs, build(inputs), detail)

    def _lookup(self, known: dict[str, list[dict[str, Any]]] | None = None) -> ServerLookup:
        """Correlation's lookup for one plan: the server, and any resources known already."""
        return ServerLookup(self.client, self.store, self.pipe.name, known)

    def _inputs(
        self, classes: list[ClassRead], links: dict[str, Link], lookup: ServerLookup
    ) -> PlanInputs:
        """A partial plan's inputs: these entries, correlated through the server's lookup,
        as the pipe maps and sends them."""
        return PlanInputs(
            pipe=self.pipe.name,
            classes=classes,
            targets={},
            lookup=lookup,
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

    def _apply(self, inputs: PlanInputs, result: PlanResult, detail: str = "") -> Result:
        """Send the plan's one row (a partial plan of one entry), with the delete guard."""
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
            resource = self.scope.resources.get(row.class_name)
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

    def read_references(self, entries: Iterable[dict[str, Any]]) -> dict[str, list[Link]]:
        """The links of every DN these entries refer to, in a query per 500 DNs (managers and
        groups' members recur from entry to entry): what `known_references` takes."""
        dns = list(dict.fromkeys(dn for entry in entries for dn in self.scope.named_dns(entry)))
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
        for start in range(0, len(wanted) if self.scope.referencing else 0, REFERENCERS_CHUNK):
            chunk = wanted[start : start + REFERENCERS_CHUNK]
            referencing = self.scope.referencing
            for entry in self.source.find_any(referencing, chunk, self.scope.attributes):
                found.setdefault(entry_key(entry), entry)
        return list(found.values())

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


def _strings(value: Any) -> Iterable[str]:
    """Every string in a request body (where the ids of referenced resources sit)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
