"""What dry-run and resync read: only what changed since the last read, where that is safe.

A run keeps a private snapshot of what it read (`.scimsync/<pipe>-scim-snapshot.bin` and
`-ldap-snapshot.bin`) and the next run reads only what changed since, merges it in, and
hands the plan the whole merged set: the plan is the one a full read gives.

SCIM: the server must honour a filter on `meta.lastModified` (probed once, remembered in the
snapshot). The changed resources are those modified since the server's own time (its Date
header) when the last read began, less SAFETY (which also covers a skew between the clock
of Date and that of lastModified); never the local clock. Deletes and creates out
of band: the server's totalResults (count=0) is compared with what the merged set holds, and
when they disagree the ids of the whole type are read to find which.

LDAP: every entry's unique id, DN, modifyTimestamp and entryCSN are listed (a light read);
an entry is re-read when it is new, its DN or stamps differ, (without an entryCSN) its
timestamp of whole seconds lies within SAFETY of the newest of the last read, or the change
feed (where the source has one) names it since the cursor taken before the last read. An
entry listed no more is gone. A feed purged past that cursor means a full read, and so does
a class whose mapping reads an attribute the server derives from other entries (memberOf).

A full read happens on `--full-read`, without a usable snapshot, and at least every
`full-read-interval`. Each read says what it was and why (ReadNote): the CLI prints it, the
`--json` of dry-run and resync carry it as `reads`.
"""

from __future__ import annotations

import itertools
import json
import logging
import marshal
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toolkit import collector
from toolkit.config.dn import normalize_dn
from toolkit.config.private import open_private
from toolkit.errors import FatalError
from toolkit.ldap.errors import LdapError
from toolkit.ldap.search import ReadEntry
from toolkit.ldap.source import LdapSource, equality
from toolkit.progress import READ_LDAP, READ_SCIM, Listener, counted
from toolkit.scim.errors import NotFound, ScimError
from toolkit.sync.runtime import PipeRuntime

log = logging.getLogger("toolkit.sync")

SNAPSHOT_VERSION = 1
# Subtracted from the server's time at the start of the last read: writes the server stamped
# a little earlier than they became visible, clocks of a cluster's nodes, 1 s granularity.
SAFETY = timedelta(seconds=60)
MOSTLY_CHANGED = 0.25  # past this share of the resources changed, a full read is cheaper
REFUSALS = (400, 403, 501)  # what a server that cannot filter on meta.lastModified answers
FUTURE = "9999-12-31T23:59:59Z"  # a filter no resource matches: the probe
ID_CHUNK = 200  # unique ids per LDAP filter when re-reading changed entries
STAMPS = ("modifyTimestamp", "entryCSN")  # read beside each entry, kept out of the plan
# attributes a server derives from other entries (virtual, or kept by an overlay): an entry's
# own stamps need not move when they change, so a class reading one is read fully
DERIVED = frozenset({"memberof", "ismemberof", "numsubordinates", "hassubordinates"})


@dataclass
class ReadNote:
    """One read: side (ldap, scim), what (a sync class, a resource type), how and why."""

    side: str
    name: str
    mode: str  # full | incremental
    count: int  # objects the plan got
    changed: int | None = None  # incremental: objects read again (new or changed)
    removed: int | None = None  # incremental: objects gone since the last read
    since: str | None = None  # incremental SCIM: the server time changes were read from
    why: str = ""

    def text(self) -> str:
        what = f"{'SCIM' if self.side == 'scim' else 'LDAP'} {self.name}"
        noun = "resources" if self.side == "scim" else "entries"
        if self.mode == "full":
            because = f" ({self.why})" if self.why else ""
            return f"{what}: full read: {self.count:,} {noun}{because}"
        since = f" since {self.since} (server time)" if self.since else ""
        gone = f", {self.removed:,} gone" if self.removed else ""
        why = f"; {self.why}" if self.why else ""
        return f"{what}: incremental: {self.changed:,} changed{since}{gone}, {self.count:,} {noun}{why}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def read_lines(reads: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a plan's reads were and why, a line each (as the CLI and the notebooks say it)."""
    return [ReadNote(**read).text() for read in reads]


def due_reason(snapshot: dict[str, Any] | None, full_read: bool, interval: float) -> str | None:
    """Why this run must read fully, or None when an incremental read may be tried."""
    if full_read:
        return "--full-read"
    if snapshot is None:
        return "no earlier read to start from"
    age = time.time() - float(snapshot.get("full_read_at", 0))
    if age > interval:
        return f"the last full read is older than full-read-interval ({_hours(interval)})"
    return None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


# --- SCIM ----------------------------------------------------------------------------------


class ScimReads:
    """The SCIM resources of a run's resource types, read fully or incrementally."""

    def __init__(
        self,
        session: PipeRuntime,
        full_read: bool,
        workers: int,
        on_progress: Listener | None = None,
    ):
        self.session = session
        self.client = session.client
        self.workers = workers
        self.on_progress = on_progress
        self.path = session.files.scim_snapshot
        snapshot = _load(self.path)
        if snapshot is not None and snapshot.get("url") != self.client.endpoint.base_url:
            snapshot = None  # another server: nothing of it holds
        self.snapshot = snapshot
        self.full_reason = due_reason(snapshot, full_read, session.pipe.full_read_interval)
        self.notes: list[ReadNote] = []
        self._types: dict[str, Any] = {}

    def read(self, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for name in dict.fromkeys(names):
            out[name] = self._read_type(name)
        self._save()
        return out

    def _read_type(self, name: str) -> list[dict[str, Any]]:
        why = self.full_reason
        held = (self.snapshot or {}).get("types", {}).get(name)
        if why is None and (held is None or not held.get("since")):
            why = (
                "the last read's resources carry no meta.lastModified"
                if held is not None
                else "no earlier read of this type"
            )
        if why is None:
            why = self._filter_refused(name)
        if why is None:
            try:
                return self._incremental(name, held)
            except _Refused as refused:
                why = str(refused)
                log.warning("SCIM %s: %s; reading fully", name, why)
            except (KeyError, TypeError, AttributeError) as exc:  # a snapshot not as written
                why = f"the snapshot {self.path.name} could not be used ({exc!r})"
        return self._full(name, why)

    def _filter_refused(self, name: str) -> str | None:
        """Why the server's meta.lastModified filter cannot be used, probed once per server."""
        snapshot = self.snapshot or {}
        accepted = snapshot.get("filter_ok")
        age = time.time() - float(snapshot.get("probed_at") or 0)
        if accepted is None or age > self.session.pipe.full_read_interval:
            try:
                total, _ = self.client.count(name, _since_filter(FUTURE))
            except ScimError as exc:
                if exc.status not in REFUSALS:  # not an answer about the filter: ask next time
                    return f"the probe of the meta.lastModified filter failed ({exc})"
                accepted, reason = False, f"{exc}".splitlines()[0]
            else:
                accepted = total == 0
                reason = f"it matched {total} resources modified after {FUTURE}"
            if self.snapshot is not None:
                self.snapshot["filter_ok"] = accepted
                self.snapshot["filter_reason"] = None if accepted else reason
                self.snapshot["probed_at"] = time.time()
        if accepted:
            return None
        reason = (self.snapshot or {}).get("filter_reason") or "refused"
        return f"the server does not filter on meta.lastModified ({reason})"

    def _full(self, name: str, why: str) -> list[dict[str, Any]]:
        total, began = self.client.count(name)
        started = time.monotonic()
        newest: datetime | None = None
        stamped = True
        found = []
        resources = self.client.iter_resources(name, workers=self.workers)
        desc = f"reading SCIM ({name})"
        for resource in counted(resources, self.on_progress, READ_SCIM, desc, "resources"):
            stamp = _last_modified(resource)
            if stamp is None:
                stamped = False
            elif newest is None or stamp > newest:
                newest = stamp
            found.append(compact(resource))
        since = _since(began, newest, time.monotonic() - started) if stamped else None
        self._types[name] = {
            "since": since,
            "newest": _iso(newest),
            "totals_ok": _agrees(total, found),
            "resources": found,
        }
        self.notes.append(ReadNote("scim", name, "full", len(found), why=why))
        return found

    def _incremental(self, name: str, held: dict[str, Any]) -> list[dict[str, Any]]:
        total, began = self.client.count(name)
        started = time.monotonic()
        if total is None:
            raise _Refused("the server gives no totalResults to check deletes with")
        since = held["since"]
        held_newest = _parse_time(held.get("newest"))
        merged: list[dict[str, Any]] = list(held["resources"])
        where = {r.get("id"): i for i, r in enumerate(merged)}
        size = self.client.page_size_for()  # the full read's page size: few, large pages
        flt = _since_filter(since)
        try:
            # the first page says how many changed: past a share of what is held, a filtered
            # read costs a server that evaluates the filter for each page more than a full one
            first = self.client.search(name, flt, start_index=1, count=size)
            many = first.total_results or 0
            if many > max(size, len(merged) * MOSTLY_CHANGED):
                raise _Refused(f"{many:,} of {len(merged):,} changed since {since}")
            found: Iterable[dict[str, Any]] = first.resources
            n = len(first.resources)
            # a full page that is all totalResults says ends the read where the last full
            # read proved this server's totals right; else more, as index paging judges a
            # page (a short page agreeing with totalResults ends a read, totalResults alone
            # never does). Page 1 is not asked again.
            ended = held.get("totals_ok") is True and first.total_results == n
            if not ended and (
                n >= size or (first.total_results is not None and n < first.total_results)
            ):
                rest = self.client.iter_resources(name, flt, page_size=size, start_index=n + 1)
                found = itertools.chain(first.resources, rest)
            desc = f"reading SCIM ({name}, changed)"
            changed = list(counted(found, self.on_progress, READ_SCIM, desc, "resources"))
        except ScimError as exc:
            if exc.status in REFUSALS:
                if self.snapshot is not None:
                    self.snapshot["filter_ok"] = False
                    self.snapshot["filter_reason"] = str(exc).splitlines()[0]
                raise _Refused(
                    f"the server refused the filter on meta.lastModified ({exc.status})"
                ) from None
            raise
        newest = None
        for resource in changed:
            stamp = _last_modified(resource)
            if stamp is None:
                raise _Refused("a changed resource carries no meta.lastModified")
            newest = stamp if newest is None or stamp > newest else newest
            resource = compact(resource)
            at = where.get(resource.get("id"))
            if at is None:
                where[resource.get("id")] = len(merged)
                merged.append(resource)
            else:
                merged[at] = resource
        removed, why = 0, ""
        if total != len(merged):
            merged, removed, added = self._by_ids(name, merged)
            why = f"totalResults {total:,} against {len(merged) - added + removed:,} held: ids read"
        newest = max((t for t in (newest, held_newest) if t is not None), default=None)
        since_next = _since(began, newest, time.monotonic() - started)
        fresh = len({r.get("id") for r in changed})
        if first.total_results is not None and fresh < first.total_results:
            # fewer than the filter matched: a delete while paging shifts the index and skips
            # one, stamped before this read began; the next read starts where this one did
            since_next = since
            why = "; ".join(filter(None, (why, f"{fresh:,} of {first.total_results:,} read")))
        self._types[name] = {
            "since": since_next,
            "newest": _iso(newest),
            "totals_ok": _agrees(total, merged),
            "resources": merged,
        }
        note = ReadNote("scim", name, "incremental", len(merged), fresh, removed, since, why)
        self.notes.append(note)
        return merged

    def _by_ids(
        self, name: str, merged: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int, int]:
        """The merged set made to hold exactly the ids the server has: those gone dropped,
        those it has that no read brought (made during this read) read one by one."""
        size = self.client.page_size_for()
        ids = [
            r["id"]
            for r in self.client.iter_resources(
                name, attributes=["id"], page_size=size, workers=self.workers
            )
            if "id" in r
        ]
        present = set(ids)
        kept = [r for r in merged if r.get("id") in present]
        known = {r.get("id") for r in kept}
        added = 0
        for rid in ids:
            if rid not in known:
                try:
                    kept.append(compact(self.client.get(name, rid)))
                except NotFound:
                    continue  # deleted since it was listed
                added += 1
        return kept, len(merged) - (len(kept) - added), added

    def _save(self) -> None:
        previous = self.snapshot or {}
        full = bool(self.notes) and all(n.mode == "full" for n in self.notes)
        types = {**previous.get("types", {}), **self._types}
        snapshot = {
            "version": SNAPSHOT_VERSION,
            "url": self.client.endpoint.base_url,
            "filter_ok": previous.get("filter_ok"),
            "filter_reason": previous.get("filter_reason"),
            "probed_at": previous.get("probed_at"),
            # the interval runs from the oldest full read among the types read
            "full_read_at": time.time() if full else previous.get("full_read_at", time.time()),
            "types": types,
        }
        _save(self.path, snapshot)


def _agrees(total: int | None, resources: list[dict[str, Any]]) -> bool:
    """The server's count=0 told how many resources a read found: its totalResults may then
    end an incremental read whose last page is full (a server answering count=0 with 0 or a
    page's size, as some do, never agrees with a read that found some)."""
    return total is not None and total == len(resources) > 0


def forget(session: PipeRuntime, deleted: Mapping[str, set[str]]) -> None:
    """The resources a run deleted dropped from the SCIM snapshot: the next incremental read
    then finds the server's count as it expects, without reading every id to learn why."""
    if not any(deleted.values()):
        return
    path = session.files.scim_snapshot
    snapshot = _load(path)
    if snapshot is None or snapshot.get("url") != session.client.endpoint.base_url:
        return
    for name, ids in deleted.items():
        held = snapshot.get("types", {}).get(name)
        if held is not None and ids:
            held["resources"] = [r for r in held["resources"] if r.get("id") not in ids]
    try:
        _save(path, snapshot)
    except FatalError as exc:  # the writes are done: the next read's count check finds them
        log.warning("%s", exc)


class _Refused(Exception):
    """An incremental read cannot be trusted; the message says why (a full read follows)."""


def compact(resource: dict[str, Any]) -> dict[str, Any]:
    """What a plan keeps of a resource read: its `meta` only as the version (the ETag a
    plan sends with If-Match), its `schemas` URNs shared. At 100,000 users that is ~50 MB."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        resource["meta"] = {"version": meta["version"]} if "version" in meta else {}
    schemas = resource.get("schemas")
    if isinstance(schemas, list):
        resource["schemas"] = [sys.intern(s) if isinstance(s, str) else s for s in schemas]
    return resource


def _since_filter(when: str) -> str:
    return f'meta.lastModified gt "{when}"'


def _last_modified(resource: dict[str, Any]) -> datetime | None:
    meta = resource.get("meta")
    return _parse_time(meta.get("lastModified") if isinstance(meta, dict) else None)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _since(began: datetime | None, newest: datetime | None, took: float) -> str | None:
    """Where the next read starts, less SAFETY: the server's time when this read began (the
    Date header of its first answer), else the newest lastModified held less how long the
    read took (no write after the read began is stamped earlier); whole UTC seconds or finer.
    Not the newest lastModified alone: on a quiet server it would not move, and every run
    would read the last writes of the last busy time again."""
    if began is not None:
        start = began
    elif newest is not None:
        start = newest - timedelta(seconds=took)
    else:
        return None
    start = (start - SAFETY).astimezone(UTC)
    fraction = f".{start.microsecond:06d}" if start.microsecond else ""
    return start.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


# --- LDAP ----------------------------------------------------------------------------------


class LdapReads:
    """The entries of each sync class, read fully or by what changed (see the module)."""

    def __init__(
        self,
        session: PipeRuntime,
        full_read: bool,
        on_progress: Listener | None = None,
        partial: bool = False,
    ):
        self.session = session
        self.on_progress = on_progress
        self.path = session.files.ldap_snapshot
        source = session.source
        self.source = source if isinstance(source, LdapSource) else None
        self.enabled = self.source is not None and not partial
        snapshot = _load(self.path) if self.enabled else None
        self.snapshot = snapshot
        if not self.enabled:
            self.full_reason: str | None = (
                "a filtered read" if partial else "the source is an LDIF file"
            )
        else:
            self.full_reason = due_reason(snapshot, full_read, session.pipe.full_read_interval)
        self.notes: list[ReadNote] = []
        self._classes: dict[str, Any] = {}
        self._feed = _Feed(self.source) if self.enabled else None
        self._feed_why: str | None = None
        self._changed: _Changed | None = None

    def read(
        self, name: str, bases: Sequence[str], flt: str, attributes: Sequence[str]
    ) -> list[dict[str, Any]]:
        key = json.dumps([list(bases), flt, sorted(attributes)])
        held = (self.snapshot or {}).get("classes", {}).get(name)
        why = self.full_reason
        if why is None and (held is None or held.get("key") != key):
            why = "no earlier read of this class with its bases, filter and attributes"
        derived = sorted(a for a in attributes if a.lower() in DERIVED)
        if why is None and derived:
            why = (
                f"the mapping reads {', '.join(derived)}, which changes without the entry's stamps"
            )
        if why is None:
            why = self._feed_problem()
        if why is None:
            try:
                return self._incremental(name, bases, flt, attributes, key, held)
            except LdapError as exc:
                why = f"the incremental read failed ({exc})"
            except _Refused as refused:
                why = str(refused)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                why = f"the snapshot {self.path.name} could not be used ({exc!r})"
        return self._full(name, bases, flt, attributes, key, why, _held_ids(held))

    def _feed_problem(self) -> str | None:
        """Why the change feed says a full read is needed (purged past the last read)."""
        if self._changed is None and self._feed is not None:
            cursor = (self.snapshot or {}).get("cursor")
            try:
                self._changed = self._feed.changed_since(cursor)
            except Exception as exc:  # noqa: BLE001 - any failure of the feed: read fully
                self._feed_why = f"the change feed no longer reaches the last read: {exc}"
                self._changed = _Changed()
        return self._feed_why

    def _full(
        self,
        name: str,
        bases: Sequence[str],
        flt: str,
        attributes: Sequence[str],
        key: str,
        why: str,
        ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        desc = f"reading LDAP ({name})"
        extra = _stamps_to_ask(attributes) if self.enabled else []
        entries: list[dict[str, Any]] = []
        stamps: dict[str, list[Any]] = {}
        uid = self._uid()
        for base in bases:
            found = self.session.source.iter_entries(
                base, flt, [*attributes, *extra], split=True, ids=ids
            )
            for entry in counted(found, self.on_progress, READ_LDAP, desc, "entries"):
                if self.enabled:
                    stamps[_first(entry.get(uid)) or entry["dn"]] = _stamp(entry)
                    for attr in extra:
                        entry.pop(attr.lower(), None)
                entries.append(entry)
        if self.enabled:
            self._classes[name] = {"key": key, "entries": entries, "stamps": stamps}
        self.notes.append(ReadNote("ldap", name, "full", len(entries), why=why))
        return entries

    def _incremental(
        self,
        name: str,
        bases: Sequence[str],
        flt: str,
        attributes: Sequence[str],
        key: str,
        held: dict[str, Any],
    ) -> list[dict[str, Any]]:
        uid = self._uid()
        old_stamps: dict[str, list[Any]] = held["stamps"]
        newest = max((s[1] for s in old_stamps.values() if s[1] and not s[2]), default=None)
        recent = _generalized_minus(newest, SAFETY) if newest else None
        changed = self._changed or _Changed()
        listing: dict[str, list[Any]] = {}
        desc = f"reading LDAP ({name}, ids)"
        for base in bases:
            found = self.session.source.iter_entries(
                base, flt, [uid, *STAMPS], split=True, ids=list(old_stamps)
            )
            for entry in counted(found, self.on_progress, READ_LDAP, desc, "entries"):
                unique_id = _first(entry.get(uid))
                if not isinstance(unique_id, str):  # not to be looked up again: read fully
                    raise _Refused(f"{entry['dn']} has no {uid} to re-read it by")
                listing[unique_id] = _stamp(entry)
        stale = [
            u
            for u, (dn, stamp, csn) in listing.items()
            if old_stamps.get(u) != [dn, stamp, csn]
            # a timestamp of whole seconds may not have moved since the last read
            or (not csn and recent is not None and stamp is not None and stamp >= recent)
            or changed.names(u, dn)
        ]
        fresh = {
            _first(e.get(uid)) or e["dn"]: e for e in self._by_ids(bases, flt, attributes, stale)
        }
        old = {_first(e.get(uid)) or e["dn"]: e for e in _held_entries(held)}
        reread = set(stale)  # asked once per entry listed: a list made the merge quadratic
        entries = []
        stamps: dict[str, list[Any]] = {}
        for u, pair in listing.items():
            entry = fresh.get(u) if u in fresh or u not in old else old[u]
            if entry is None or (u in reread and u not in fresh):
                continue  # gone (or out of scope) between the listing and the re-read
            entries.append(entry)
            stamps[u] = pair
        removed = len(set(old) - set(listing))
        self._classes[name] = {"key": key, "entries": entries, "stamps": stamps}
        feed = self._feed is not None and self._feed.detector is not None
        how = (
            "the change feed, modifyTimestamp and entryCSN"
            if feed
            else "modifyTimestamp and entryCSN"
        )
        note = ReadNote(
            "ldap", name, "incremental", len(entries), len(fresh), removed, why=f"by {how}"
        )
        self.notes.append(note)
        return entries

    def _by_ids(
        self, bases: Sequence[str], flt: str, attributes: Sequence[str], ids: list[str]
    ) -> Iterator[dict[str, Any]]:
        uid = self._uid()
        # asked as a full read asks (stamps too, dropped after): the entry's digest, which the
        # quick check keys on, is of the bytes the server sent
        extra = _stamps_to_ask(attributes)
        for start in range(0, len(ids), ID_CHUNK):
            terms = "".join(equality(uid, u) for u in ids[start : start + ID_CHUNK])
            for base in bases:
                found = self.session.source.iter_entries(
                    base, f"(&{flt}(|{terms}))", [*attributes, *extra]
                )
                for entry in found:
                    for attr in extra:
                        entry.pop(attr.lower(), None)
                    yield entry

    def _uid(self) -> str:
        return self.source.spec.unique_id_attribute.lower() if self.source else "entryuuid"

    def finish(self) -> None:
        """Write the snapshot (the feed's cursor taken before this run read anything)."""
        if not self.enabled:
            return
        previous = self.snapshot or {}
        full = bool(self.notes) and all(n.mode == "full" for n in self.notes)
        snapshot = {
            "version": SNAPSHOT_VERSION,
            "cursor": self._feed.start if self._feed is not None else None,
            "full_read_at": time.time() if full else previous.get("full_read_at", time.time()),
            "classes": {**previous.get("classes", {}), **_plain(self._classes)},
        }
        _save(self.path, snapshot)
        if self._feed is not None:
            self._feed.close()


def _held_ids(held: Any) -> list[str] | None:
    """The unique ids a class's last read found: where a read is split by id ranges, the
    bounds come from them (toolkit.ldap.split)."""
    stamps = held.get("stamps") if isinstance(held, dict) else None
    return list(stamps) if isinstance(stamps, dict) and stamps else None


def _stamps_to_ask(attributes: Sequence[str]) -> list[str]:
    """The stamps a read asks for beside the mapping's attributes (and drops after)."""
    asked = {a.lower() for a in attributes}
    return [a for a in STAMPS if a.lower() not in asked]


def _plain(classes: dict[str, Any]) -> dict[str, Any]:
    """The classes with their entries as plain dicts and the digests of the bytes they were
    read from beside them (marshal stores no subclass; the quick check keys on digests)."""
    return {
        name: {
            **held,
            "entries": [e if type(e) is dict else dict(e) for e in held["entries"]],
            "digests": [getattr(e, "digest", None) for e in held["entries"]],
        }
        for name, held in classes.items()
    }


def _held_entries(held: dict[str, Any]) -> list[dict[str, Any]]:
    """A class's entries as the snapshot holds them, each with its digest again: an entry
    from the snapshot keys the quick check as the same entry read from the server does."""
    digests = held.get("digests") or []
    out: list[dict[str, Any]] = []
    for entry, digest in itertools.zip_longest(held["entries"], digests[: len(held["entries"])]):
        if digest is None:
            out.append(entry)
        else:
            read = ReadEntry(entry)
            read.digest = digest
            out.append(read)
    return out


class _Feed:
    """The source's change feed, if it has one: the cursor before this run's reads, and the
    DNs (normalized) changed since an earlier run's cursor."""

    def __init__(self, source: LdapSource):
        self.detector = None
        self.start: str | None = None
        try:
            self.detector, _ = source.change_detector()
            self.start = self.detector.cursor_at_end()
        except Exception as exc:  # noqa: BLE001 - the feed is optional here: listing still tells
            log.info("no change feed for incremental reads (%s): by modifyTimestamp", exc)
            self.close()
            self.detector = None

    def changed_since(self, cursor: str | None) -> _Changed:
        changed = _Changed()
        if self.detector is None or cursor is None:
            return changed
        for _ in range(100_000):
            changes, after = self.detector.poll(cursor, 1000)
            for change in changes:
                if change.entry_uuid:
                    changed.ids.add(change.entry_uuid.lower())
                for dn in (change.dn, change.new_dn):
                    if dn and not change.entry_uuid:
                        changed.dns.add(normalize_dn(dn))
            if not changes and after == cursor:
                break
            cursor = after
        return changed

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()


@dataclass
class _Changed:
    """The entries a change feed named: by unique id where it gives one, else by DN."""

    ids: set[str] = field(default_factory=set)
    dns: set[str] = field(default_factory=set)  # normalized

    def names(self, unique_id: str, dn: str) -> bool:
        if unique_id.lower() in self.ids:
            return True
        return bool(self.dns) and normalize_dn(dn) in self.dns  # a DN is parsed only if need be


def _stamp(entry: dict[str, Any]) -> list[Any]:
    """What says an entry changed: its DN, modifyTimestamp and entryCSN (OpenLDAP's, changed
    by every write, unlike a timestamp of whole seconds)."""
    return [entry["dn"], _first(entry.get("modifytimestamp")), _first(entry.get("entrycsn"))]


def _first(values: Any) -> Any:
    if isinstance(values, list):
        return values[0] if values else None
    return values


def _generalized_minus(stamp: str, by: timedelta) -> str | None:
    """A generalizedTime (YYYYmmddHHMMSS[.f]Z) less `by`, in the same 14-digit form."""
    try:
        when = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (when - by).strftime("%Y%m%d%H%M%S") + "Z"


# --- the snapshot files --------------------------------------------------------------------

# Python's marshal: four times faster than JSON both ways at 100,000 entries, and an LDAP
# value that is not UTF-8 stays bytes without a hook per object. The file is private and
# read only by the code that wrote it; one another Python wrote, or any other, is not used.
MAGIC = b"scimsync-snapshot\n"


def _load(path: Path) -> dict[str, Any] | None:
    """A snapshot, or None (missing, unreadable, of another version: a full read follows)."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read()  # whole: marshal.load on a file reads it piece by piece
        if not blob.startswith(MAGIC):
            return None
        with collector.paused():
            data = marshal.loads(memoryview(blob)[len(MAGIC) :])
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
        return None
    return data


def _save(path: Path, data: dict[str, Any]) -> None:
    """Written whole to a private file beside, then moved in place: a killed run leaves the
    earlier snapshot, never half of one."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.new")  # concurrent runs: one each
    try:
        with collector.paused():
            blob = marshal.dumps(data)
        with open_private(partial, "wb") as handle:
            handle.write(MAGIC)
            handle.write(blob)
        os.replace(partial, path)
        path.with_suffix(".json").unlink(missing_ok=True)  # an earlier version's, as JSON
    except OSError as exc:
        raise FatalError(f"{path}: cannot write the read snapshot: {exc.strerror}") from None
    except ValueError as exc:  # marshal: a value of a type it cannot store
        # the snapshot only saves reading: the run goes on, the next reads from the last one
        log.warning("%s: the read snapshot was not written: %s", path, exc)
