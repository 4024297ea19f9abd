"""Building a plan: scope, map, correlate, diff, and the exact requests.

Pure functions over data already read (entries per class, target resources, links), so that
the same code serves a dry run, a resync, realtime's per-object reconcile, and partitions of a
larger job. Nothing here talks to a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit import collector
from toolkit.config.dn import normalize_dn
from toolkit.config.model import SyncClass
from toolkit.entry import Entry, entry_dn, entry_key
from toolkit.mapping.resource import MappingValueError, ResourceMapping
from toolkit.plan.correlate import (
    Lookup,
    TargetIndex,
    correlate,
    correlation_key,
    follow_link,
    get_ci,
    is_id_list,
    lookup_path,
)
from toolkit.plan.model import (
    ADOPT,
    CONFLICT,
    CREATE,
    DELETE,
    DUPLICATE,
    MODIFY,
    OUT_OF_SCOPE,
    PENDING,
    UNCHANGED,
    Link,
    Request,
    Row,
    pending_ref,
)
from toolkit.plan.names import note_name_takers
from toolkit.plan.quickcheck import QuickCheck
from toolkit.scim import requests
from toolkit.scim.validate import Validator

_TOKEN = "urn:scimsync:dn:"  # what the resolver hands out while ids are not yet decided
_TOKEN_LENGTH = len(_TOKEN)


@dataclass
class ClassRead:
    """The entries read for one sync class, and the resource its entries become."""

    sync_class: SyncClass
    mapping: ResourceMapping
    entries: list[Entry]


@dataclass
class PlanInputs:
    pipe: str
    classes: list[ClassRead]  # in evaluation order
    targets: dict[str, list[dict[str, Any]]]  # resource type name -> resources on the server
    links: dict[str, Link]  # entry key -> link
    endpoints: dict[str, str]  # resource type name -> endpoint path ("/Users")
    update_method: str = "patch"
    delete_policy: str = "delete"
    member_chunk_size: int = 100
    partial: bool = False  # a filtered read: absent entries are not deletes
    # checks every request against the server's schema, as a real run would meet it
    validator: Validator | None = None
    # keys of objects earlier plans found unchanged (toolkit.plan.quickcheck); None: compare all
    quick_check_keys: Mapping[str, bytes] | None = None
    # where correlation looks resources up (toolkit.plan.correlate); None: in `targets`
    lookup: Lookup | None = None


@dataclass
class PlanResult:
    rows: list[Row]
    # links to drop: their target is gone already, or an entry read has it now (adopt)
    stale_links: list[Link] = field(default_factory=list)
    source_count: int = 0
    quick_check_keys: dict[str, bytes] = field(default_factory=dict)  # found unchanged anew
    quick_checked: int = 0  # objects the quick check found unchanged without mapping them


# --- small helpers ---------------------------------------------------------------------------


def replace_refs(value: Any, prefix: str, ids: Callable[[str], str | None]) -> Any:
    """Swap `prefix + DN` strings for ids; drop references nobody can name (never invent one)."""
    if isinstance(value, str):
        return ids(value[len(prefix) :]) if value.startswith(prefix) else value
    if isinstance(value, list):
        out = []
        for item in value:
            new = replace_refs(item, prefix, ids)
            if (
                isinstance(item, dict)
                and isinstance(new, dict)
                and "value" in item
                and "value" not in new
            ):
                continue  # a member whose target cannot be named
            if new is not None:
                out.append(new)
        return out
    if isinstance(value, dict):
        out_dict = {}
        for key, item in value.items():
            new = replace_refs(item, prefix, ids)
            if new is not None and new != {}:
                out_dict[key] = new
        if value and "value" in value and "value" not in out_dict:
            return None  # a manager whose id cannot be named
        return out_dict
    return value


# --- the build -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    read: ClassRead
    entry: Entry
    key: str
    dn: str
    desired: dict[str, Any] | None = None
    target_id: str | None = None  # linked, or the one unlinked match (adopt)
    target: dict[str, Any] | None = None  # the linked target, once found
    linked: bool = False
    conflict: str = ""  # why several targets match
    note: str = ""  # unresolved references, mapping errors
    tokens: bool = False  # mapped before the ids were decided: references are tokens


class _Dns:
    """The DNs this build knows (read, or linked in a partial build) and their resource types.

    A DN is known by its first spelling; another spelling of it is found through normalized
    forms, computed only on the first such miss: references nearly always use the spelling
    the entry was read with, and normalizing 100,000 DNs costs more than all look-ups.
    """

    def __init__(self) -> None:
        self.kind: dict[str, str] = {}  # DN as first spelled -> resource type
        self._normalized: dict[str, str] | None = None  # normalized DN -> that spelling

    def add(self, dn: str, kind: str) -> None:
        if self.known(dn) is None:
            self.kind[dn] = kind
            if self._normalized is not None:
                self._normalized[normalize_dn(dn)] = dn

    def known(self, dn: str) -> str | None:
        """The spelling this build knows `dn` by, or None."""
        if dn in self.kind:
            return dn
        if self._normalized is None:
            self._normalized = {}
            for spelled in self.kind:
                self._normalized.setdefault(normalize_dn(spelled), spelled)
        return self._normalized.get(normalize_dn(dn))


class _Resolver:
    """References to the DNs this run knows (read or linked). Until the ids are decided (after
    correlation) it hands out a token per DN, swapped for the id later (`_with_ids`); once
    `ids` is set, the id itself, or () for a DN that will have none (left out, as a token
    without an id is)."""

    def __init__(self, dns: _Dns):
        self.dns = dns
        self._ids: dict[str, str] | None = None
        self._answers: dict[str, str] = {}  # DN -> outcome([DN]), once the ids are decided

    @property
    def ids(self) -> dict[str, str] | None:
        """DN as known -> id or pending reference; None until the ids are decided."""
        return self._ids

    @ids.setter
    def ids(self, ids: dict[str, str] | None) -> None:
        self._ids, self._answers = ids, {}

    def resolve(self, dn: str) -> tuple[str, str] | tuple[()] | None:
        known = self.dns.known(dn)
        if known is None:
            return None
        if self._ids is None:
            return self.dns.kind[known], _TOKEN + known
        scim_id = self._ids.get(known)
        return (self.dns.kind[known], scim_id) if scim_id is not None else ()

    def outcome(self, dns: list[str]) -> str | None:
        """What `resolve` answers now for each of these DNs, as exact text (a repr); None if
        one is unknown (the mapping reports those, so only a full comparison will do)."""
        if len(dns) == 1:
            # A manager: remembered, as the same few DNs recur (a few thousand managers head
            # 100,000 users) and a small table answers faster than two tables of every DN.
            # (A group's members are many and mostly distinct: not worth remembering.)
            answer = self._answers.get(dns[0])
            if answer is None:
                answer = self._answers[dns[0]] = self._outcome(dns) or ""
            return answer or None
        return self._outcome(dns)

    def _outcome(self, dns: list[str]) -> str | None:
        kind, ids = self.dns.kind, self._ids
        assert ids is not None, "outcome() needs the ids (after correlation)"
        answers: list[str | None] = []
        for dn in dns:
            if dn not in kind:  # rare: another spelling, or unknown
                known = self.dns.known(dn)
                if known is None:
                    return None
                dn = known
            answers += (kind[dn], ids.get(dn))
        return repr(answers)


class _Unresolved(list[str]):
    """The references a mapping could not resolve (its `on_unresolved`), and the row's note."""

    def __call__(self, path: str, dn: str) -> None:
        self.append(f"{path}: {dn}")

    def note(self) -> str:
        return "; ".join(f"unresolved {u}" for u in self) if self else ""


def _assign(classes: list[ClassRead]) -> list[_Draft]:
    """Each entry goes to the first class (by evaluation order) that read it."""
    seen: set[str] = set()
    out = []
    for read in classes:
        for entry in read.entries:
            key = entry_key(entry)
            if key not in seen:
                seen.add(key)
                out.append(_Draft(read, entry, key, entry_dn(entry)))
    return out


def build(inputs: PlanInputs) -> PlanResult:
    # a few containers per attribute of every object, all kept: see toolkit.collector
    with collector.paused():
        return _build(inputs)


def _build(inputs: PlanInputs) -> PlanResult:
    drafts = _assign(inputs.classes)
    # Only a partial read (realtime, filters) needs the links to name entries it did not read.
    # In a full read, a DN that no class read is gone (deleted, renamed, moved out): references
    # to it dangle and are dropped, rather than pointing at a resource this plan deletes.
    dns = _Dns()
    for draft in drafts:
        dns.kind[draft.dn] = draft.read.mapping.name  # entries have distinct DNs
    for link in inputs.links.values() if inputs.partial else ():
        dns.add(link.dn, link.resource_type)
    resolver = _Resolver(dns)
    index = inputs.lookup or TargetIndex(inputs.targets, inputs.links)
    present = {draft.key: draft for draft in drafts}

    def mapped(draft: _Draft) -> None:
        """The desired resource (references as tokens) and a note; None if a value is refused."""
        unresolved = _Unresolved()
        try:
            draft.desired = draft.read.mapping.to_scim(
                draft.entry, resolver, on_unresolved=unresolved
            )
            draft.note = unresolved.note()
            draft.tokens = resolver.ids is None
        except MappingValueError as exc:
            draft.desired, draft.note = None, str(exc)

    # 1. correlate every entry; decide which id each DN will have
    id_of_dn: dict[str, str] = {}

    def gives_up(owner: str, attrs: tuple[str, ...], key: tuple[str, ...]) -> bool:
        """Whether the entry linked to a matching target maps to other values of `attrs`:
        mapped now (once, rarely: a linked entry is otherwise mapped only in the diff)."""
        draft = present[owner]
        if draft.desired is None:
            mapped(draft)
        if draft.desired is None:  # a value its mapping refuses: it keeps what it has
            return False
        return correlation_key(lookup_path(draft.desired, a) for a in attrs) != key

    for draft in drafts:
        read = draft.read
        target = follow_link(inputs.links.get(draft.key), read.mapping.name, index)
        if target is not None:
            draft.target_id, draft.target, draft.linked = target["id"], target, True
        else:
            mapped(draft)  # correlation attributes come from the mapped resource
            if draft.desired is None:
                continue
            draft.target_id, draft.conflict = correlate(
                read.sync_class,
                read.mapping,
                draft.entry,
                draft.key,
                draft.desired,
                index,
                present,
                gives_up,
            )
        if draft.target_id:
            id_of_dn[draft.dn] = draft.target_id
        elif not draft.conflict and draft.read.sync_class.synchronize_creates:
            id_of_dn[draft.dn] = pending_ref(draft.dn)
    for link in inputs.links.values() if inputs.partial else ():
        # a partial read (realtime, filters) holds only some targets: trust the link then
        id_of_dn.setdefault(dns.known(link.dn) or link.dn, link.scim_id)
    resolver.ids = id_of_dn  # entries mapped from now on get ids, not tokens

    # 2. diff and requests. Linked entries (nearly all, after the first sync) are mapped only
    # now, one at a time, so that the mapped resources of all of them are never held at once;
    # those whose verdict's inputs are as when found unchanged are not mapped at all.
    quick = QuickCheck(inputs.quick_check_keys) if inputs.quick_check_keys is not None else None
    contexts = {
        id(read): QuickCheck.context(read.sync_class, read.mapping) for read in inputs.classes
    }
    rows = []
    for draft in drafts:
        key = None  # of the unchanged verdict on this draft's inputs now
        if quick is not None and draft.linked and not draft.read.sync_class.is_exclusion:
            key = _verdict_key(draft, contexts, resolver)
            if quick.known(draft.key, key):
                rows.append(_quick_row(draft))
                quick.quick_checked += 1
                continue
        if draft.linked:
            mapped(draft)
        row = _row(draft, inputs, index, id_of_dn)
        if quick is not None and row.situation == UNCHANGED and not row.reason:
            quick.remember(draft.key, key)
        rows.append(row)
        draft.desired = None  # the row holds it with ids
    stale: list[Link] = []
    if not inputs.partial:
        rows += _deletes(inputs, index, present, drafts, stale)
    rows += _duplicates(inputs, index, drafts)
    note_name_takers(rows)
    if inputs.validator is not None:
        for row in rows:
            for request in row.requests:
                row.problems += inputs.validator.problems(
                    row.resource_type, request.method, request.body
                )
    return PlanResult(
        rows=rows,
        stale_links=stale,
        source_count=len(drafts),
        quick_check_keys=quick.found if quick is not None else {},
        quick_checked=quick.quick_checked if quick is not None else 0,
    )


def _verdict_key(draft: _Draft, contexts: dict[int, bytes], resolver: _Resolver) -> bytes | None:
    """The key of an unchanged verdict on this linked draft's inputs now (toolkit.plan.quickcheck);
    None if it can have none (a reference the mapping reports, a target without version)."""
    dns = draft.read.mapping.referenced_dns(draft.entry)
    references = resolver.outcome(dns) if dns is not None else None
    if references is None or draft.target is None:
        return None
    return QuickCheck.key(contexts[id(draft.read)], draft.entry, draft.target, references)


def _quick_row(draft: _Draft) -> Row:
    """The unchanged row of a linked draft an earlier plan found unchanged on the same inputs
    (its target is as mapped: Plan.desired() gives the mapped side from it, when asked)."""
    read, target = draft.read, draft.target
    assert target is not None
    return Row(
        class_name=read.sync_class.name,
        situation=UNCHANGED,
        dn=draft.dn,
        entry_uuid=draft.key,
        resource_type=read.mapping.name,
        scim_id=draft.target_id,
        source=draft.entry,
        target=target,
        etag=(target.get("meta") or {}).get("version"),
    )


def _situation_allowed(sync_class: SyncClass, situation: str) -> bool:
    if situation == CREATE:
        return sync_class.synchronize_creates
    if situation in (MODIFY, ADOPT):
        return sync_class.synchronize_modifies or (
            situation == ADOPT and sync_class.synchronize_creates
        )
    return True


def _row(draft: _Draft, inputs: PlanInputs, index: Lookup, id_of_dn: dict[str, str]) -> Row:
    mapping, sync_class = draft.read.mapping, draft.read.sync_class
    kind = mapping.name
    base = {
        "class_name": sync_class.name,
        "dn": draft.dn,
        "entry_uuid": draft.key,
        "resource_type": kind,
        "source": draft.entry,
    }
    if draft.desired is None:  # the mapping rejected a value: nothing can be sent for it
        return Row(situation=CONFLICT, scim_id=None, reason=f"cannot map: {draft.note}", **base)
    desired = _with_ids(draft.desired, mapping, id_of_dn) if draft.tokens else draft.desired
    if draft.conflict:
        return Row(situation=CONFLICT, scim_id=None, reason=draft.conflict, desired=desired, **base)
    target = draft.target or (index.get(kind, draft.target_id) if draft.target_id else None)
    if (
        target is not None
        and draft.linked
        and not sync_class.is_exclusion
        and mapping.same_values(desired, target)
    ):
        # already as mapped, value for value: no comparable forms needed (the common case).
        # The row keeps no mapped copy: Plan.desired() gives it from the target when asked.
        return Row(
            situation=UNCHANGED,
            scim_id=draft.target_id,
            reason=draft.note,
            target=target,
            etag=(target.get("meta") or {}).get("version"),
            **base,
        )
    form = mapping.normalize(desired)
    endpoint = inputs.endpoints.get(kind, f"/{mapping.endpoint.strip('/')}")
    if target is None:
        situation, changes = CREATE, _changes({}, form)
        requests = _create_requests(endpoint, draft.dn, desired, inputs.member_chunk_size)
    else:
        changes = _changes(mapping.normalize(target, like=(desired, form)), form)
        requests = (
            _update_requests(endpoint, draft.target_id, target, desired, changes, inputs)
            if changes
            else []
        )
        situation = (MODIFY if changes else UNCHANGED) if draft.linked else ADOPT
    reason = draft.note
    if sync_class.is_exclusion or not _situation_allowed(sync_class, situation):
        flag = {CREATE: "creates"}.get(situation, "modifies")
        reason = f"class {sync_class.name} does not synchronize {flag}"
        situation, requests = OUT_OF_SCOPE, []
    return Row(
        situation=situation,
        scim_id=draft.target_id if target is not None else None,
        changes=changes,
        requests=requests,
        reason=reason,
        desired=desired,
        target=target,
        form=form,
        etag=((target or {}).get("meta") or {}).get("version"),
        **base,
    )


def _ids_for_tokens(value: Any, id_of_dn: dict[str, str]) -> Any:
    """replace_refs for what the derived attributes produce: {"value": token} (manager) and
    lists of those (members, groups), written out for speed; anything else goes generic."""
    if type(value) is list:
        out = []
        for item in value:
            token = item.get("value") if type(item) is dict else None
            if type(token) is not str or not token.startswith(_TOKEN):
                return replace_refs(value, _TOKEN, id_of_dn.get)
            scim_id = id_of_dn.get(token[_TOKEN_LENGTH:])
            if scim_id is not None:
                out.append({**item, "value": scim_id})
        return out
    if type(value) is dict and len(value) == 1:
        token = value.get("value")
        if type(token) is str and token.startswith(_TOKEN):
            scim_id = id_of_dn.get(token[_TOKEN_LENGTH:])
            return {"value": scim_id} if scim_id is not None else None
    return replace_refs(value, _TOKEN, id_of_dn.get)


def _with_ids(
    desired: dict[str, Any], mapping: ResourceMapping, id_of_dn: dict[str, str]
) -> dict[str, Any]:
    """`desired` (fresh from to_scim, changed in place) with each reference token swapped for
    the id its DN will have."""
    for container, name in mapping.reference_attributes():
        holder = desired if container is None else desired.get(container)
        if not isinstance(holder, dict) or name not in holder:
            continue
        value = _ids_for_tokens(holder[name], id_of_dn)
        if value is None or value == {}:
            del holder[name]
            if container is not None and not holder:
                del desired[container]
        else:
            holder[name] = value
    return desired


def _create_requests(endpoint: str, dn: str, desired: dict[str, Any], chunk: int) -> list[Request]:
    """POST the resource; a large group goes with its first members, the rest in PATCH chunks.

    A group of tens of thousands of members would exceed servers' payload limits in one
    POST; the later requests address the new resource by a pending id resolved on apply.
    """
    members = desired.get("members")
    if not isinstance(members, list) or len(members) <= chunk:
        return [requests.create(endpoint, desired)]
    rest = [m["value"] for m in members[chunk:] if isinstance(m, dict) and "value" in m]
    # the new resource's path while its id is pending: the Applier puts the id in
    pending = f"{endpoint}/{pending_ref(dn)}"
    return [
        requests.create(endpoint, {**desired, "members": members[:chunk]}),
        *requests.member_chunks(pending, rest, [], chunk),
    ]


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Attribute-level differences of two comparable forms (extension attributes by URN path)."""
    out: list[dict[str, Any]] = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if key.lower().startswith("urn:") and (isinstance(a, dict) or isinstance(b, dict)):
            a, b = a or {}, b or {}
            for sub in dict.fromkeys([*a, *b]):
                if a.get(sub) != b.get(sub):
                    out.append({"attribute": f"{key}:{sub}", "old": a.get(sub), "new": b.get(sub)})
        elif a != b:
            if key == "members":
                olds = {m.get("value") for m in a or []}
                news = {m.get("value") for m in b or []}
                out.append(
                    {"attribute": key, "add": sorted(news - olds), "remove": sorted(olds - news)}
                )
            else:
                out.append({"attribute": key, "old": a, "new": b})
    return out


def _update_requests(
    endpoint: str,
    scim_id: str,
    target: Mapping[str, Any],
    desired: Mapping[str, Any],
    changes: list[dict[str, Any]],
    inputs: PlanInputs,
) -> list[Request]:
    path = requests.member_path(endpoint, scim_id)
    member_change = next((c for c in changes if c["attribute"] == "members"), None)
    changes = [c for c in changes if c is not member_change]
    if inputs.update_method == "put" and changes:
        # the PUT keeps the current members; membership still goes as PATCH chunks below,
        # never the whole member list for one change
        body = {k: v for k, v in target.items() if k not in ("meta",)}
        for change in changes:
            _put_value(body, desired, change["attribute"])
        body["schemas"] = list(
            dict.fromkeys([*target.get("schemas", []), *desired.get("schemas", [])])
        )
        out = [requests.replace(path, body)]
        changes = []
    else:
        out = []
    ops: list[dict[str, Any]] = []
    for change in changes:
        attr = change["attribute"]
        value = (
            lookup_path(desired, attr)
            if not attr.lower().startswith("urn:")
            else _ext_value(desired, attr)
        )
        ops.append(
            {"op": "replace", "path": attr, "value": value}
            if value is not None
            else {"op": "remove", "path": attr}
        )
    if ops:
        out.append(requests.patch(path, ops))
    if member_change:
        added, removed = member_change["add"], member_change["remove"]
        out += requests.member_chunks(path, added, removed, inputs.member_chunk_size)
    return out


def _ext_value(resource: Mapping[str, Any], path: str) -> Any:
    urn, _, attr = path.rpartition(":")
    return (get_ci(resource, urn) or {}).get(attr)


def _put_value(body: dict[str, Any], desired: Mapping[str, Any], attr: str) -> None:
    if attr.lower().startswith("urn:"):
        urn, _, sub = attr.rpartition(":")
        ext = dict(body.get(urn) or {})
        value = _ext_value(desired, attr)
        if value is None:
            ext.pop(sub, None)
        else:
            ext[sub] = value
        body[urn] = ext
    elif desired.get(attr) is None:
        body.pop(attr, None)
    else:
        body[attr] = desired[attr]


def _deletes(
    inputs: PlanInputs,
    index: Lookup,
    present: Mapping[str, _Draft],
    drafts: list[_Draft],
    stale: list[Link],
) -> list[Row]:
    """Linked resources whose entry left every class: only what this pipe manages, and never
    one an entry read links to or adopts (an entry read again under a new entryUUID, or a new
    entry with the userName of one that left): its old link is dropped instead."""
    classes = {read.sync_class.name: read.sync_class for read in inputs.classes}
    claimed: set[tuple[str, str]] | None = None  # (type, id) of targets entries read have
    rows = []
    for key, link in inputs.links.items():
        if key in present:
            continue
        target = index.get(link.resource_type, link.scim_id)
        if target is None:
            stale.append(link)
            continue
        if claimed is None:  # the first delete candidate
            claimed = {(d.read.mapping.name, d.target_id) for d in drafts if d.target_id}
        if (link.resource_type, link.scim_id) in claimed:
            stale.append(link)
            continue
        sync_class = classes.get(link.class_name)
        base = {
            "class_name": link.class_name,
            "dn": link.dn,
            "entry_uuid": key,
            "resource_type": link.resource_type,
            "scim_id": link.scim_id,
            "target": target,
            "etag": (target.get("meta") or {}).get("version"),
        }
        if sync_class is None or not sync_class.synchronize_deletes:
            rows.append(
                Row(
                    situation=OUT_OF_SCOPE,
                    reason=f"class {link.class_name} does not synchronize deletes",
                    **base,
                )
            )
            continue
        endpoint = inputs.endpoints.get(link.resource_type, f"/{link.resource_type}s")
        path = requests.member_path(endpoint, link.scim_id)
        if inputs.delete_policy == "deactivate":
            if target.get("active") is False:
                rows.append(Row(situation=UNCHANGED, reason="already deactivated", **base))
                continue
            deactivate = requests.deactivate(path)
            rows.append(
                Row(
                    situation=DELETE,
                    changes=[{"attribute": "active", "old": target.get("active"), "new": False}],
                    requests=[deactivate],
                    reason="deactivate",
                    **base,
                )
            )
        else:
            rows.append(Row(situation=DELETE, requests=[requests.delete(path)], **base))
    return rows


def _duplicate_keys(inputs: PlanInputs) -> dict[str, list[tuple[str, ...]]]:
    """Per resource type, the attributes on which two resources are the same object: the
    externalId, and each correlation attribute list of its classes (not the id shortcut)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for read in inputs.classes:
        keys = out.setdefault(read.mapping.name, [("externalId",)])
        for attrs in read.sync_class.destination_correlation_attributes:
            if tuple(attrs) not in keys and not is_id_list(attrs, read.mapping):
                keys.append(tuple(attrs))
    return out


def _duplicates(inputs: PlanInputs, index: Lookup, drafts: list[_Draft]) -> list[Row]:
    """SCIM resources that no entry links to or adopts, with the externalId or correlation
    values of one that is ours (two runs at once each created it): a row each, sending
    nothing, as only the operator knows which copy others use. Two copies of which neither
    is ours are duplicates only by externalId (equal names may be two real objects).

    One pass over the targets per attribute list; only groups of equal values, rare, look
    further."""
    keys = _duplicate_keys(inputs)
    groups = [
        (kind, attrs, ids)
        for kind, attr_lists in keys.items()
        for attrs in attr_lists
        for ids in index.repeated(kind, attrs)
    ]
    if not groups:
        return []
    classes = {read.mapping.name: read.sync_class.name for read in reversed(inputs.classes)}
    ours: dict[tuple[str, str], tuple[str, str]] = {}  # (type, id) -> (class, DN) of its entry
    for draft in drafts:
        if draft.target_id:
            ours[(draft.read.mapping.name, draft.target_id)] = (
                draft.read.sync_class.name,
                draft.dn,
            )
    for link in inputs.links.values():
        ours.setdefault((link.resource_type, link.scim_id), (link.class_name, link.dn))
    rows: list[Row] = []
    flagged: set[tuple[str, str]] = set()
    for kind, attrs, ids in groups:
        kept = [i for i in ids if (kind, i) in ours]
        if not kept and attrs != ("externalId",):
            continue
        keeper = kept[0] if kept else ids[0]
        class_name, dn = ours.get((kind, keeper), (classes.get(kind, ""), ""))
        whose = f"linked to {dn}" if kept else "neither is linked to this pipe"
        for scim_id in ids:
            if (kind, scim_id) in ours or scim_id == keeper or (kind, scim_id) in flagged:
                continue
            flagged.add((kind, scim_id))
            target = index.get(kind, scim_id) or {}
            values = ", ".join(f"{a} {lookup_path(target, a)!r}" for a in attrs)
            rows.append(
                Row(
                    class_name=class_name,
                    situation=DUPLICATE,
                    dn="",  # no entry of its own (the reason names the one it duplicates)
                    entry_uuid="",
                    resource_type=kind,
                    scim_id=scim_id,
                    reason=(
                        f"duplicates {kind} {keeper} ({whose}) on {values}; "
                        "a run leaves it: remove or keep it by hand"
                    ),
                    target=target,
                    etag=(target.get("meta") or {}).get("version"),
                )
            )
    return rows


def has_pending(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(PENDING)
    if isinstance(value, list):
        return any(has_pending(v) for v in value)
    if isinstance(value, dict):
        return any(has_pending(v) for v in value.values())
    return False
