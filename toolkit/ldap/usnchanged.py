"""Active Directory without DirSync's right: polling uSNChanged. The cursor is a USN.

Every write on a domain controller raises its highestCommittedUSN and stamps the object with
it (uSNChanged). A poll reads the users and groups with a uSNChanged above the cursor, up to
the root DSE's highestCommittedUSN read first, and the tombstones in CN=Deleted Objects the
same way (with the show-deleted control): each object once, in its current state, as a
modify (an add when uSNCreated is above the cursor) or a delete. A rename or a move is a
modify at its new DN; the consumer re-reads each object by objectGUID anyway.

It needs no replication right, unlike DirSync, but reading the tombstones needs List
Contents and Read Property on CN=Deleted Objects (administrators only by default; see
prepare-endpoint-server), and it tells nothing about which values changed,
and, like DirSync, nothing about the groups a deleted object leaves. USNs are per domain
controller: the cursor holds for the DC it was read from (list that DC first).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.protocol.microsoft import show_deleted_control

from toolkit.ldap.ad import guid_text
from toolkit.ldap.changes import Change, decode_cursor, encode_cursor
from toolkit.ldap.connection import close, result_error
from toolkit.ldap.dirsync import DomainDetector, dn_before_delete
from toolkit.ldap.errors import CursorError

ATTRIBUTES = ["objectGUID", "uSNChanged", "uSNCreated", "isDeleted", "name", "lastKnownParent"]
NO_TIME = (
    "the usnchanged change detector cannot start at a time or rewind: update sequence "
    "numbers hold no time; use set-startpoint --beginning-of-changelog or --end-of-changelog"
)


class UsnChangedDetector(DomainDetector):
    """uSNChanged polling on the domain naming context `base` (default: the DC's own)."""

    name = "usnchanged"
    no_time = NO_TIME

    def _cursor(self, usn: int) -> str:
        return encode_cursor(self.name, base=self._base(), usn=usn)

    def cursor_at_beginning(self) -> str:
        return self._cursor(0)

    def cursor_at_end(self) -> str:
        return self._cursor(self._highest())

    def _highest(self) -> int:
        dse = self.read_root_dse(["highestCommittedUSN"])
        try:
            return int((dse.get("highestcommittedusn") or [""])[0])
        except ValueError:
            raise CursorError("the root DSE shows no highestCommittedUSN") from None

    def deleted_objects_readable(self) -> bool:
        """Whether the sync user may read CN=Deleted Objects (AD: administrators only, unless
        granted List Contents and Read Property on it): without it deletes go unseen."""
        found = self._read(f"CN=Deleted Objects,{self._base()}", "(objectClass=*)", True, 0)
        return any(
            (item.get("raw_attributes") or {}).get("objectGUID")
            or (item.get("raw_attributes") or {}).get("objectguid")
            for item in found
        )

    def poll(self, cursor: str, limit: int = 500) -> tuple[list[Change], str]:
        """Every user and group changed or deleted since `cursor` (`limit` is not used: a
        poll reads up to the USN committed when it starts), oldest first."""
        state = decode_cursor(cursor, self.name)
        if state.get("base"):
            self.base = state["base"]
        low = int(state.get("usn") or 0)
        high = self._highest()
        if high <= low:
            return [], cursor
        window = f"(uSNChanged>={low + 1})(uSNChanged<={high})"
        live = self._read(self._base(), f"(&{self.sync_filter}{window})", deleted=False)
        gone = self._read(
            f"CN=Deleted Objects,{self._base()}", f"(&(isDeleted=TRUE){window})", deleted=True
        )
        items = sorted(live + gone, key=lambda item: _usn(item, "usnchanged"))
        changes = [c for c in (_change(item, cursor, low) for item in items) if c is not None]
        after = self._cursor(high)
        if changes:
            changes[-1] = dataclasses.replace(changes[-1], cursor=after)
        return changes, after

    def _read(
        self, base: str, search_filter: str, deleted: bool, scope: int | str = ldap3.SUBTREE
    ) -> list[dict[str, Any]]:
        """Every entry of a paged search (tombstones too when `deleted`); scope 0: the base."""
        scope = ldap3.BASE if scope == 0 else scope
        with self._lock:
            conn, spec = self._connection()
            controls = [show_deleted_control()] if deleted else None
            try:
                found = conn.extend.standard.paged_search(
                    base,
                    search_filter,
                    scope,
                    attributes=ATTRIBUTES,
                    controls=controls,
                    paged_size=1000,
                    generator=False,
                )
            except lexc.LDAPNoSuchObjectResult:
                return []
            except lexc.LDAPException as exc:
                if not isinstance(exc, lexc.LDAPOperationResult):
                    close(self._conn)
                    self._conn = None
                raise result_error(exc, f"search of {base} with {search_filter}", spec) from None
            return [r for r in found or () if r.get("type") == "searchResEntry"]


def _usn(item: dict[str, Any], name: str) -> int:
    raw = {k.lower(): v for k, v in (item.get("raw_attributes") or {}).items()}
    try:
        return int(raw[name][0])
    except (KeyError, IndexError, ValueError):
        return 0


def _change(item: dict[str, Any], cursor: str, low: int) -> Change | None:
    raw = {k.lower(): v for k, v in (item.get("raw_attributes") or {}).items()}
    if not raw.get("objectguid"):
        return None
    guid = guid_text(raw["objectguid"][0])
    common = {
        "cursor": cursor,
        "entry_uuid": guid,
        "unique_id": guid,
        "unique_id_attribute": "objectGUID",
        "raw": raw,
    }
    if raw.get("isdeleted") and raw["isdeleted"][0].upper() == b"TRUE":
        return Change(kind="delete", dn=dn_before_delete(raw, item["dn"]), **common)
    kind = "add" if _usn(item, "usncreated") > low else "modify"
    return Change(kind=kind, dn=item["dn"], **common)
