"""The `accesslog` change detector: OpenLDAP's slapo-accesslog entries.

Each write leaves an entry `reqStart=<time>.<counter>Z,cn=accesslog` (auditAdd, auditModify,
auditModRDN, auditDelete) with reqType, reqDN, reqMod, reqOld, reqNewRDN, reqDeleteOldRDN,
reqNewSuperior, reqEntryUUID and reqAuthzID. reqStart is unique and ordered (its fraction is
a counter), so it is the position in the feed; it is read from the raw attribute, never
through a datetime, which would lose the counter.

slapd writes the log entry when an operation ends, but stamps reqStart when it starts, so
under concurrent writes an entry can appear after one with a later reqStart. The cursor
therefore re-reads a short window (`late_window`) before the newest change it delivered and
remembers which entries of that window it has delivered, so a late entry is still delivered
once, and nothing twice.

The log is read with the small BER decoder of bulk reads (toolkit.ldap.search), not ldap3's,
and the entries of the window already delivered are recognised by their DN and never decoded
again: at a few hundred changes a second the window holds more entries than a poll delivers.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from typing import Any

from toolkit.ldap.changes import (
    OPERATIONAL,
    Change,
    ChangeDetector,
    decode_cursor,
    encode_cursor,
    generalized_time,
    parse_generalized_time,
    record_of,
    record_text,
    renamed_dn,
)
from toolkit.ldap.errors import ChangeFeedError
from toolkit.ldap.ldif import Modification, value_of
from toolkit.ldap.search import paged_search

LOG_BASE = "cn=accesslog"
WRITE_FILTER = "(&(objectClass=auditWriteObject)(reqResult=0))"
ENTRY_ATTRIBUTES = [
    "reqStart",
    "reqType",
    "reqDN",
    "reqMod",
    "reqOld",
    "reqNewRDN",
    "reqDeleteOldRDN",
    "reqNewSuperior",
    "reqNewDN",
    "reqEntryUUID",
    "reqAuthzID",
]
_KINDS = {"add": "add", "modify": "modify", "delete": "delete", "modrdn": "modrdn"}
_OPS = {b"+": "add", b"-": "delete", b"=": "replace", b"#": "increment"}
_TEXT_OPS = {k.decode(): v for k, v in _OPS.items()}


def parse_reqmod(values: list[bytes | str]) -> list[Modification]:
    """reqMod values (`attr:+ value`, `attr:- value`, `attr:= value`, `attr:# n`, bare `attr:-`)
    as modifications, consecutive values of one attribute and operation grouped. Values come
    as bytes (ldap3) or, when UTF-8, already as text (the fast decoder): the same result."""
    mods: list[Modification] = []
    for raw in values:
        if isinstance(raw, str):
            name, _, text = raw.partition(":")
            op = _TEXT_OPS.get(text[:1], "replace")
            rest: bytes | str = text
        else:
            attribute, _, rest = raw.partition(b":")
            op = _OPS.get(rest[:1], "replace")
            name = attribute.decode(errors="replace")
        last = mods[-1] if mods else None
        if last is None or last.attribute != name or last.op != op:
            last = Modification(op, name)
            mods.append(last)
        if len(rest) > 1:  # `attr:-` alone deletes every value
            last.values.append(rest[2:] if isinstance(rest, str) else value_of(rest[2:]))
    return mods


def parse_reqold(values: list[bytes]) -> dict[str, list[str | bytes]]:
    """reqOld values (`attr: value`) as attribute -> old values."""
    old: dict[str, list[str | bytes]] = {}
    for raw in values:
        attribute, _, rest = raw.partition(b":")
        old.setdefault(attribute.decode(errors="replace").lower(), []).append(value_of(rest[1:]))
    return old


class AccesslogDetector(ChangeDetector):
    name = "accesslog"

    def __init__(
        self,
        *args: Any,
        log_base: str = LOG_BASE,
        late_window: timedelta = timedelta(seconds=2),
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.log_base = log_base
        self.late_window = late_window

    def describe(self) -> str:
        return f"accesslog ({self.log_base})"

    # --- start points -------------------------------------------------------------------------

    def cursor_at_beginning(self) -> str:
        self._check_readable()
        return encode_cursor(self.name, start=None, seen=[])

    def cursor_at_end(self) -> str:
        newest = self._newest_since(datetime.now(UTC) - timedelta(days=1)) or self._newest_since(
            None
        )
        if newest is None:  # an empty log: its end is its beginning
            return self.cursor_at_beginning()
        return encode_cursor(self.name, start=newest, seen=[newest])

    def cursor_at_time(self, when: datetime) -> str:
        self._check_readable()
        return encode_cursor(self.name, start=generalized_time(when) + ".000000Z", seen=[])

    def _check_readable(self) -> None:
        items, _ = self.search(self.log_base, "(objectClass=*)", ["1.1"], scope="BASE")
        if not items:
            conn, spec = self._connection()
            raise ChangeFeedError(
                f"{self.log_base} on {spec.label} does not exist or is not readable by "
                f"{spec.bind_dn or 'anonymous'}: enable slapo-accesslog and grant read access to it"
            )

    def _newest_since(self, since: datetime | None) -> str | None:
        """The largest reqStart in the log (at or after `since`), read as DNs only."""
        self._check_readable()
        search_filter = WRITE_FILTER
        if since is not None:
            search_filter = f"(&{WRITE_FILTER}(reqStart>={generalized_time(since)}Z))"
        with self._lock:
            conn, spec = self._connection()
            newest = None
            for entry in paged_search(
                conn, self.log_base, search_filter, ["1.1"], 1000, label=spec.label
            ):
                rdn = entry["dn"].split(",", 1)[0]
                value = rdn.partition("=")[2]
                if newest is None or value > newest:
                    newest = value
        return newest

    # --- reading ------------------------------------------------------------------------------

    def poll(self, cursor: str, limit: int = 500) -> tuple[list[Change], str]:
        state = decode_cursor(cursor, self.name)
        start: str | None = state.get("start")
        seen: set[str] = set(state.get("seen") or [])
        search_filter = WRITE_FILTER if start is None else f"(&{WRITE_FILTER}(reqStart>={start}))"
        page, more = self.read_page(
            self.log_base, search_filter, ENTRY_ATTRIBUTES, limit + len(seen)
        )
        if not page:
            # the log's base must still be readable: an empty answer is otherwise ambiguous
            self._check_readable()
        got: set[str] = set()
        fresh: list[tuple[str, dict[str, list[Any]]]] = []
        for encoded in page:
            req_start = _start_of_dn(encoded.dn)
            if req_start in seen:  # re-read in the late-write window: delivered, not decoded again
                got.add(req_start)
                continue
            record = record_of(encoded.decode())
            req_start = record_text(record, "reqstart")
            got.add(req_start)
            if req_start not in seen:
                fresh.append((req_start, record))
        if seen and not (seen & got) and (page or not more):
            self._check_not_purged(seen)
        fresh.sort(key=lambda item: item[0])
        fresh = fresh[:limit]
        cursors = self._cursors(start, seen, [req_start for req_start, _ in fresh])
        changes: list[Change] = []
        for (_, record), change_cursor in zip(fresh, cursors, strict=False):
            change = self.to_change(record, change_cursor)
            if change is not None and not self.is_ignored(change.modifier_dn):
                changes.append(change)
        return changes, cursors[-1]

    def _cursors(self, start: str | None, seen: set[str], fresh: list[str]) -> list[str]:
        """The cursor after each of `fresh` (delivered in this order after `seen`), then the
        cursor after all: each the same string `_cursor_after` gives, but without sorting and
        encoding the whole window again for every change (a sorted list grown in place, its
        JSON pieces joined), which made a 500-change poll quadratic."""
        delivered = sorted(seen)
        pieces = [json.dumps(s) for s in delivered]
        head = '{"detector":' + json.dumps(self.name) + ',"seen":['
        floors: dict[str, str | None] = {}
        out: list[str] = []

        def current() -> str:
            if not delivered:
                return encode_cursor(self.name, start=start, seen=[])
            second = delivered[-1][:14]
            if second not in floors:
                floors[second] = self._floor(start, delivered[-1])
            floor = floors[second]
            low = 0 if floor is None else bisect_left(delivered, floor)
            return head + ",".join(pieces[low:]) + '],"start":' + json.dumps(floor) + "}"

        for req_start in fresh:
            at = bisect_left(delivered, req_start)
            delivered.insert(at, req_start)
            pieces.insert(at, json.dumps(req_start))
            out.append(current())
        out.append(out[-1] if out else current())
        return out

    def _floor(self, start: str | None, newest: str) -> str | None:
        """Where to re-read from once `newest` is delivered: `late_window` before it."""
        newest_time = parse_generalized_time(newest)
        if newest_time is None:
            return start
        candidate = generalized_time(newest_time - self.late_window) + ".000000Z"
        return candidate if start is None or candidate > start else start

    def _check_not_purged(self, seen: set[str]) -> None:
        """Raise when the newest change already delivered is gone from the log (logpurge)."""
        newest = max(seen)
        items, _ = self.search(
            f"reqStart={newest},{self.log_base}", "(objectClass=*)", ["1.1"], scope="BASE"
        )
        if not items:
            conn, spec = self._connection()
            raise ChangeFeedError(
                f"the access log of {spec.label} no longer holds the last change read ({newest}): it was "
                "purged, and later changes may be lost; run a resync and set a new start point"
            )

    def _cursor_after(self, start: str | None, delivered: set[str]) -> str:
        """The cursor once `delivered` are done: re-read from `late_window` before the newest."""
        if not delivered:
            return encode_cursor(self.name, start=start, seen=[])
        floor = self._floor(start, max(delivered))
        kept = sorted(s for s in delivered if floor is None or s >= floor)
        return encode_cursor(self.name, start=floor, seen=kept)

    def to_change(self, record: dict[str, list[Any]], cursor: str) -> Change | None:
        """A log record (lower-case names; values bytes, or text when UTF-8) as a Change."""
        kind = _KINDS.get(record_text(record, "reqtype").lower())
        if kind is None:
            return None
        dn = record_text(record, "reqdn")
        mods = parse_reqmod(record.get("reqmod", []))
        req_start = record_text(record, "reqstart")
        new_rdn = record_text(record, "reqnewrdn") or None
        new_superior = record_text(record, "reqnewsuperior") or None
        delete_old = record_text(record, "reqdeleteoldrdn")
        new_dn = record_text(record, "reqnewdn") or (
            renamed_dn(dn, new_rdn, new_superior) if new_rdn else None
        )
        uuid = record_text(record, "reqentryuuid") or None
        modifier = record_text(record, "reqauthzid")
        if modifier.lower().startswith("dn:"):
            modifier = modifier[3:]
        changed = tuple(
            dict.fromkeys(
                m.attribute.lower() for m in mods if m.attribute.lower() not in OPERATIONAL
            )
        )
        return Change(
            kind=kind,
            dn=dn,
            cursor=cursor,
            new_dn=new_dn if kind == "modrdn" else None,
            entry_uuid=uuid,
            unique_id=uuid,
            unique_id_attribute="entryuuid" if uuid else None,
            csn=req_start,
            time=parse_generalized_time(req_start),
            changed_attributes=changed,
            modifier_dn=modifier or None,
            new_rdn=new_rdn,
            delete_old_rdn=delete_old.upper() == "TRUE" if delete_old else None,
            new_superior=new_superior,
            modifications=tuple(mods),
            raw={
                k: [v if isinstance(v, str) else value_of(v) for v in vs]
                for k, vs in record.items()
                if vs
            },
        )


def _start_of_dn(dn: str) -> str | None:
    """The reqStart in a log entry's DN (`reqStart=<time>,cn=accesslog`), if it has that form."""
    rdn = dn.partition(",")[0]
    name, _, value = rdn.partition("=")
    return value.strip() if name.strip().lower() == "reqstart" else None
