"""Active Directory's DirSync as a change feed: the cookie is the cursor.

A DirSync search on the naming context returns every object changed since the cookie it is
given (each once, with the attributes that changed) and a new cookie. Without a cookie it
returns every object: a full DirSync. Each object becomes one Change, keyed by objectGUID:

- a tombstone (isDeleted) is a delete; its DN before the delete is rebuilt from its name
  (`CN=x\\0ADEL:<guid>`) and lastKnownParent;
- an object with its objectClass is new (AD sends the class only then): an add;
- a new name or parent (`name`, `parentGUID`) is a rename or move: a modrdn to its new DN;
- anything else is a modify; member changes come as incremental values
  (`member;range=1-1` added, `member;range=0-0` removed), which tell the consumer that the
  group changed: it re-reads the group (all its values, ranged reads) like any entry.

AD does not report the groups a deleted object leaves (their member values go without a
change of the group): the consumer drops the deleted object from its groups itself.

The cookie cannot be placed at a time: set-startpoint takes beginning (a full DirSync) or end
(the cookie after reading everything now), and refuses a time or a rewind saying why.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.protocol.microsoft import extended_dn_control, show_deleted_control
from ldap3.utils.dn import escape_rdn

from toolkit.ldap.ad import (
    DIRSYNC_ANCESTORS_FIRST,
    DIRSYNC_INCREMENTAL_VALUES,
    DIRSYNC_OID,
    dirsync_control,
    guid_text,
    parse_extended_dn,
    ranged_name,
)
from toolkit.ldap.changes import Change, ChangeDetector, decode_cursor, encode_cursor
from toolkit.ldap.connection import close, result_error
from toolkit.ldap.errors import CursorError
from toolkit.ldap.spec import LdapServerSpec

# the objects worth a change: users (people, and computers: the classes sort them) and groups
SYNC_FILTER = "(|(objectClass=user)(objectClass=group))"
FLAGS = DIRSYNC_ANCESTORS_FIRST | DIRSYNC_INCREMENTAL_VALUES
# what every DirSync entry carries, changed or not
_ALWAYS = {"objectguid", "instancetype"}
RIGHT = "Replicating Directory Changes"
REPLICATING_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"  # the right's GUID
NO_TIME = (
    "the dirsync change detector cannot start at a time or rewind: a DirSync cookie holds no "
    "time; use set-startpoint --beginning-of-changelog (a full DirSync) or --end-of-changelog"
)


class DomainDetector(ChangeDetector):
    """A change feed of an AD domain naming context `base` (default: the DC's own): its
    cursors hold no time, and a deleted object leaves its groups (and the managers naming
    it) without a change of them, so consumers drop it themselves."""

    silent_member_removal = True
    #: why a time or a rewind cannot be a start point of this feed
    no_time = ""

    def __init__(
        self,
        servers: Sequence[LdapServerSpec],
        ignore_changes_by_dn: Iterable[str] = (),
        base: str = "",
        sync_filter: str = SYNC_FILTER,
    ):
        super().__init__(servers, ignore_changes_by_dn)  # AD names no modifier: unused
        self.base = base
        self.sync_filter = sync_filter

    def cursor_at_time(self, when: datetime) -> str:
        raise CursorError(self.no_time)

    def cursor_rewound(self, by: timedelta | float) -> str:
        raise CursorError(self.no_time)

    def describe(self) -> str:
        return f"{self.name} on {self.base or 'the default naming context'}"

    def _base(self) -> str:
        if not self.base:
            dse = self.read_root_dse(["defaultNamingContext"])
            self.base = (dse.get("defaultnamingcontext") or [""])[0]
        return self.base


class DirSyncDetector(DomainDetector):
    """DirSync on the domain naming context `base` (DirSync refuses any other base)."""

    name = "dirsync"
    no_time = NO_TIME

    # --- cursors -----------------------------------------------------------------------------

    def _cursor(self, cookie: bytes) -> str:
        return encode_cursor(
            self.name, base=self._base(), cookie=base64.b64encode(cookie).decode("ascii")
        )

    def cursor_at_beginning(self) -> str:
        return self._cursor(b"")

    def cursor_at_end(self) -> str:
        """The cookie after a DirSync of everything there is now (only GUIDs asked for)."""
        _, cookie = self._dirsync(b"", ["objectGUID"])
        return self._cursor(cookie)

    # --- the feed ----------------------------------------------------------------------------

    def poll(self, cursor: str, limit: int = 500) -> tuple[list[Change], str]:
        """Every object changed since `cursor` (DirSync has no count limit: `limit` is not
        used), and the new cookie's cursor. The changes of one poll resume at `cursor`, but
        the last one, which resumes after it: a consumer stopped midway replays them."""
        state = decode_cursor(cursor, self.name)
        if state.get("base"):
            self.base = state["base"]
        try:
            cookie = base64.b64decode(state.get("cookie") or "")
        except ValueError:
            raise CursorError(f"dirsync cursor {cursor!r}: its cookie is not base64") from None
        items, new_cookie = self._dirsync(cookie, ["*"])
        after = self._cursor(new_cookie)
        changes = [c for c in (self._change(item, cursor) for item in items) if c is not None]
        if changes:
            changes[-1] = dataclasses.replace(changes[-1], cursor=after)
        return changes, after

    def _dirsync(self, cookie: bytes, attributes: list[str]) -> tuple[list[dict[str, Any]], bytes]:
        """The entries of a DirSync from `cookie` (every round while the DC has more) and the
        cookie after them."""
        base = self._base()
        items: list[dict[str, Any]] = []
        with self._lock:
            conn, spec = self._connection()
            while True:
                controls = [
                    dirsync_control(cookie, FLAGS),
                    extended_dn_control(),
                    show_deleted_control(),
                ]
                try:
                    conn.search(
                        base,
                        self.sync_filter,
                        search_scope=ldap3.SUBTREE,
                        attributes=attributes,
                        controls=controls,
                    )
                except lexc.LDAPInsufficientAccessRightsResult as exc:
                    raise result_error(
                        exc,
                        f"DirSync of {base} (the sync user needs the {RIGHT} right on {base})",
                        spec,
                    ) from None
                except lexc.LDAPException as exc:
                    if not isinstance(exc, lexc.LDAPOperationResult):
                        close(self._conn)
                        self._conn = None
                    raise result_error(exc, f"DirSync of {base}", spec) from None
                items.extend(r for r in conn.response or () if r.get("type") == "searchResEntry")
                value = ((conn.result.get("controls") or {}).get(DIRSYNC_OID) or {}).get("value")
                if not value:
                    raise CursorError(f"{spec.label} returned no DirSync cookie for {base}")
                cookie = value["cookie"]
                if not value.get("more_results"):
                    return items, cookie

    def _change(self, item: dict[str, Any], cursor: str) -> Change | None:
        raw = {k.lower(): v for k, v in (item.get("raw_attributes") or {}).items()}
        parsed = parse_extended_dn(item.get("dn") or "")
        guid = parsed.guid or (guid_text(raw["objectguid"][0]) if raw.get("objectguid") else None)
        if guid is None:
            return None
        changed = tuple(
            sorted(
                {(ranged_name(n) or (n,))[0] for n in raw}  # member;range=1-1 -> member
                - _ALWAYS
            )
        )
        common = {
            "cursor": cursor,
            "entry_uuid": guid,
            "unique_id": guid,
            "unique_id_attribute": "objectGUID",
            "changed_attributes": changed,
            "raw": raw,
        }
        if _text(raw, "isdeleted").upper() == "TRUE":
            return Change(kind="delete", dn=dn_before_delete(raw, parsed.dn), **common)
        if raw.get("objectclass"):
            return Change(kind="add", dn=parsed.dn, **common)
        if raw.get("name") or raw.get("parentguid"):
            return Change(kind="modrdn", dn=parsed.dn, new_dn=parsed.dn, **common)
        return Change(kind="modify", dn=parsed.dn, **common)


def _text(raw: dict[str, Any], name: str) -> str:
    values = raw.get(name)
    if not values:
        return ""
    value = values[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dn_before_delete(raw: dict[str, Any], tombstone_dn: str) -> str:
    """`CN=jdoe,OU=People,...` from a tombstone: its name before `\\nDEL:` under its
    lastKnownParent; the tombstone's own DN when those are missing."""
    name = _text(raw, "name").split("\nDEL:", 1)[0]
    parent = parse_extended_dn(_text(raw, "lastknownparent")).dn
    if not name or not parent:
        return tombstone_dn
    attribute = tombstone_dn.split("=", 1)[0] if "=" in tombstone_dn else "CN"
    return f"{attribute}={escape_rdn(name)},{parent}"
