"""The `changelog` change detector: draft-good-ldap-changelog entries under cn=changelog.

389-DS (retro changelog plugin), PingDirectory, DSEE and OUD keep one entry per change,
`changeNumber=N,cn=changelog`, and publish the retained range as `firstChangeNumber` and
`lastChangeNumber` on the root DSE. The cursor is the next change number to read. A cursor
that points before `firstChangeNumber` means changes were purged before they were read: that
raises, since only a resync can make up for it.
"""

from __future__ import annotations

import re
from datetime import datetime
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
from toolkit.ldap.ldif import Modification, parse_changes

ROOT_DSE_ATTRIBUTES = ["changelog", "firstChangeNumber", "lastChangeNumber"]
ENTRY_ATTRIBUTES = ["*", "targetUniqueId", "targetEntryUUID", "changeInitiatorsName"]
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KINDS = {
    "add": "add",
    "modify": "modify",
    "delete": "delete",
    "modrdn": "modrdn",
    "moddn": "modrdn",
}


class ChangelogDetector(ChangeDetector):
    name = "changelog"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.base = "cn=changelog"

    # --- the retained range -------------------------------------------------------------------

    def bounds(self) -> tuple[int, int]:
        """(firstChangeNumber, lastChangeNumber) from the root DSE; (0, 0) for an empty log."""
        dse = self.read_root_dse(ROOT_DSE_ATTRIBUTES)
        if not dse.get("changelog") and not dse.get("lastchangenumber"):
            conn, spec = self._connection()
            raise ChangeFeedError(
                f"{spec.label} publishes no change log on its root DSE (no changelog / lastChangeNumber "
                "attribute): enable it (389-DS: the Retro Changelog plugin) and make the root DSE readable"
            )
        self.base = dse.get("changelog", [self.base])[0]
        return _int(dse.get("firstchangenumber")), _int(dse.get("lastchangenumber"))

    def cursor_at_beginning(self) -> str:
        first, last = self.bounds()
        return encode_cursor(self.name, next=first if first else last + 1)

    def cursor_at_end(self) -> str:
        _, last = self.bounds()
        return encode_cursor(self.name, next=last + 1)

    def cursor_at_change_number(self, number: int) -> str:
        if number < 1:
            raise ValueError(f"change numbers start at 1, not {number}")
        return encode_cursor(self.name, next=int(number))

    def cursor_at_time(self, when: datetime) -> str:
        """The first change made at or after `when` (second precision), by binary search."""
        first, last = self.bounds()
        wanted = generalized_time(when)
        lo, hi = (first or last + 1), last + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._at_or_after(mid, last, wanted):
                hi = mid
            else:
                lo = mid + 1
        return encode_cursor(self.name, next=lo)

    def _at_or_after(self, number: int, last: int, wanted: str) -> bool:
        """Whether the first change numbered `number` or later was made at or after `wanted`."""
        window = 64
        while number <= last:
            items, _ = self.search(
                self.base,
                f"(&(changeNumber>={number})(changeNumber<={number + window - 1}))",
                ["changeNumber", "changeTime"],
            )
            if items:
                earliest = min(items, key=lambda i: _int(_raw(i, "changenumber")))
                return (_raw(earliest, "changetime") or "")[:14] >= wanted
            number += window
            window *= 4
        return True

    # --- reading ------------------------------------------------------------------------------

    def poll(self, cursor: str, limit: int = 500) -> tuple[list[Change], str]:
        state = decode_cursor(cursor, self.name)
        start = int(state["next"])
        first, last = self.bounds()
        if first and start < first:
            conn, spec = self._connection()
            raise ChangeFeedError(
                f"the change log of {spec.label} now starts at change {first}, but the next change to read "
                f"is {start}: changes {start}..{first - 1} were purged before they were read; run a resync "
                "and set a new start point"
            )
        if start > last:
            return [], cursor
        stop = min(start + limit - 1, last)
        # read with the fast decoder of bulk reads; a page one larger than the range can
        # never be cut short, and if it were, the cursor would skip changes: raise instead
        page, more = self.read_page(
            self.base,
            f"(&(changeNumber>={start})(changeNumber<={stop}))",
            ENTRY_ATTRIBUTES,
            stop - start + 2,
        )
        if more:
            conn, spec = self._connection()
            raise ChangeFeedError(
                f"the change log of {spec.label} returned more than {stop - start + 1} entries "
                f"for changes {start}..{stop}"
            )
        records = sorted(
            (record_of(encoded.decode()) for encoded in page),
            key=lambda r: _int(r.get("changenumber")),
        )
        changes: list[Change] = []
        for record in records:
            change = self.to_change(record)
            if change is not None and not self.is_ignored(change.modifier_dn):
                changes.append(change)
        # numbers the server skipped are below `stop`, which `last` shows were all assigned
        return changes, encode_cursor(self.name, next=stop + 1)

    def to_change(self, record: dict[str, list[Any]]) -> Change | None:
        """A changelog record (lower-case names; values bytes, or text when UTF-8) as a Change."""
        number = _int(record.get("changenumber"))
        kind = _KINDS.get(record_text(record, "changetype").lower())
        if kind is None:
            return None
        dn = record_text(record, "targetdn")
        mods: list[Modification] = []
        if record.get("changes"):
            try:
                mods = parse_changes(record["changes"][0], kind)
            except ValueError as exc:
                raise ChangeFeedError(
                    f"change {number} ({kind} {dn}): cannot parse its changes: {exc}"
                ) from None
        by_name = {m.attribute.lower(): m for m in mods}
        unique_id = record_text(record, "targetuniqueid") or None
        entry_uuid = record_text(record, "targetentryuuid") or _mod_value(by_name, "entryuuid")
        if unique_id and _UUID.match(unique_id):
            uid_attr = "entryuuid"
            entry_uuid = entry_uuid or unique_id
        else:
            uid_attr = "nsuniqueid" if unique_id else None
        new_rdn = record_text(record, "newrdn") or None
        new_superior = record_text(record, "newsuperior") or None
        delete_old = record_text(record, "deleteoldrdn")
        changed = tuple(
            dict.fromkeys(
                m.attribute.lower() for m in mods if m.attribute.lower() not in OPERATIONAL
            )
        )
        modifier = (
            record_text(record, "changeinitiatorsname")
            or _mod_value(by_name, "modifiersname")
            or (_mod_value(by_name, "creatorsname") if kind == "add" else None)
        )
        return Change(
            kind=kind,
            dn=dn,
            cursor=encode_cursor(self.name, next=number + 1),
            new_dn=renamed_dn(dn, new_rdn, new_superior) if kind == "modrdn" and new_rdn else None,
            entry_uuid=entry_uuid,
            unique_id=unique_id,
            unique_id_attribute=uid_attr,
            change_number=number,
            time=parse_generalized_time(record_text(record, "changetime")),
            changed_attributes=changed,
            modifier_dn=modifier or None,
            new_rdn=new_rdn,
            delete_old_rdn=delete_old.upper() == "TRUE" if delete_old else None,
            new_superior=new_superior,
            modifications=tuple(mods),
            raw={
                k: [v if isinstance(v, str) else v.decode(errors="replace") for v in vs]
                for k, vs in record.items()
                if vs
            },
        )


def _raw(item: dict[str, Any], name: str) -> str | None:
    for key, values in (item.get("raw_attributes") or {}).items():
        if key.lower() == name and values:
            return values[0].decode(errors="replace")
    return None


def _int(values: list[Any] | str | bytes | None) -> int:
    if isinstance(values, list):
        values = values[0] if values else None
    if values is None:
        return 0
    try:
        return int(values)
    except ValueError:
        return 0


def _mod_value(by_name: dict[str, Modification], name: str) -> str | None:
    mod = by_name.get(name)
    if mod and mod.values and isinstance(mod.values[0], str):
        return mod.values[0]
    return None
