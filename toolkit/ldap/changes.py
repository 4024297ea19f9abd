"""Change records and the interface every change detector implements.

A detector turns its directory's feed (cn=changelog, cn=accesslog) into `Change`s in order,
with an opaque cursor: a JSON string that says where to resume. Consumers persist the cursor
of the last change whose outcome they recorded (`Change.cursor`), or the cursor `poll`
returns once a whole batch is done.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ldap3
from ldap3.core import exceptions as lexc

from toolkit.config.dn import DNError, dn_key
from toolkit.ldap.connection import close, connect_first, result_error
from toolkit.ldap.errors import CursorError, LdapOperationError, LdapRetriableOperationError
from toolkit.ldap.ldif import Modification
from toolkit.ldap.search import AnyOf, EncodedEntry, search_page
from toolkit.ldap.spec import LdapServerSpec

KINDS = ("add", "modify", "delete", "modrdn")

# Attributes a server maintains itself: not what a change is "about".
OPERATIONAL = frozenset(
    "modifiersname modifytimestamp creatorsname createtimestamp entrycsn entryuuid nsuniqueid "
    "entryid parentid entrydn dsentrydn numsubordinates hassubordinates structuralobjectclass "
    "subschemasubentry contextcsn nstombstonecsn nscpentrydn".split()
)


@dataclass(frozen=True)
class Change:
    """One change to one entry, as the feed recorded it.

    `dn` is the entry's DN before the change; `new_dn` its DN after a modrdn. `unique_id` is
    the id the feed gives (389-DS: targetUniqueId, nsUniqueId format; OpenLDAP: reqEntryUUID)
    and `unique_id_attribute` the entry attribute holding it, so a consumer can look the entry
    up; `entry_uuid` is the entry's entryUUID when the feed tells it. Never trust the values
    of a change: re-read the entry.
    """

    kind: str  # add | modify | delete | modrdn
    dn: str
    cursor: str  # resume here to read the changes after this one
    new_dn: str | None = None
    entry_uuid: str | None = None
    unique_id: str | None = None
    unique_id_attribute: str | None = None
    change_number: int | None = None  # changelog
    csn: str | None = None  # accesslog: reqStart
    time: datetime | None = None
    changed_attributes: tuple[str, ...] = ()
    modifier_dn: str | None = None
    new_rdn: str | None = None
    delete_old_rdn: bool | None = None
    new_superior: str | None = None
    modifications: tuple[Modification, ...] = field(default=(), compare=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class ChangeDetector(ABC):
    """Reads a change feed from a list of servers (failover order) on its own connection."""

    name = "abstract"

    def __init__(self, servers: Sequence[LdapServerSpec], ignore_changes_by_dn: Iterable[str] = ()):
        self.servers = list(servers)
        self._ignored = {_normal(dn) for dn in ignore_changes_by_dn}
        self._conn: ldap3.Connection | None = None
        self._spec: LdapServerSpec | None = None
        self._lock = threading.Lock()

    # --- the interface -----------------------------------------------------------------------

    @abstractmethod
    def poll(self, cursor: str, limit: int = 500) -> tuple[list[Change], str]:
        """Up to `limit` feed records after `cursor`, as changes (ignored ones left out), in
        order, and the cursor after the last record read."""

    @abstractmethod
    def cursor_at_beginning(self) -> str:
        """Replay every change the feed still holds."""

    @abstractmethod
    def cursor_at_end(self) -> str:
        """Ignore every change made up to now."""

    @abstractmethod
    def cursor_at_time(self, when: datetime) -> str:
        """Start with the first change made at or after `when`."""

    def cursor_at_change_number(self, number: int) -> str:
        """Start with change number `number` (changelog feeds only)."""
        raise CursorError(f"the {self.name} change detector has no change numbers")

    def cursor_rewound(self, by: timedelta | float) -> str:
        """Start with the changes of the last `by` (a timedelta or seconds): now - by."""
        if not isinstance(by, timedelta):
            by = timedelta(seconds=float(by))
        return self.cursor_at_time(datetime.now(UTC) - by)

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        with self._lock:
            close(self._conn)
            self._conn, self._spec = None, None

    def __enter__(self) -> ChangeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers for subclasses ---------------------------------------------------------------

    def is_ignored(self, modifier_dn: str | None) -> bool:
        return bool(modifier_dn) and bool(self._ignored) and _normal(modifier_dn) in self._ignored

    def _connection(self) -> tuple[ldap3.Connection, LdapServerSpec]:
        if self._conn is None or self._conn.closed:
            self._conn, self._spec = connect_first(self.servers)
        assert self._spec is not None
        return self._conn, self._spec

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        scope: str = ldap3.SUBTREE,
        paged_size: int | None = None,
    ) -> tuple[list[dict[str, Any]], bytes | None]:
        """One search on the detector's connection: (response items, paged cookie or None).

        Any LDAP error raises (the connection is dropped so the next call fails over).
        """
        with self._lock:
            conn, spec = self._connection()
            try:
                conn.search(
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=list(attributes),
                    paged_size=paged_size,
                )
            except lexc.LDAPNoSuchObjectResult:
                return [], None
            except lexc.LDAPException as exc:
                if not isinstance(exc, lexc.LDAPOperationResult):
                    close(self._conn)
                    self._conn = None
                raise result_error(exc, f"search of {base} with {search_filter}", spec) from None
            items = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
            cookie = None
            if paged_size:
                control = (conn.result.get("controls") or {}).get("1.2.840.113556.1.4.319")
                cookie = control["value"]["cookie"] if control else None
                if cookie:  # abandon the rest of this paged search
                    try:
                        conn.search(
                            base,
                            search_filter,
                            search_scope=scope,
                            attributes=["1.1"],
                            paged_size=0,
                            paged_cookie=cookie,
                        )
                    except lexc.LDAPException:
                        close(self._conn)
                        self._conn = None
            return items, cookie or None

    def read_page(
        self, base: str, search_filter: str | AnyOf, attributes: Sequence[str], page_size: int
    ) -> tuple[list[EncodedEntry], bool]:
        """The first `page_size` entries of a subtree search, read with the fast decoder of
        bulk reads (toolkit.ldap.search), and whether the server had more. An absent base
        reads as empty; any other LDAP error raises (a broken connection is dropped, so the
        next call fails over)."""
        with self._lock:
            conn, spec = self._connection()
            try:
                return search_page(
                    conn, base, search_filter, attributes, page_size, label=spec.label
                )
            except (LdapOperationError, LdapRetriableOperationError) as exc:
                if exc.result_code == 32:  # noSuchObject
                    return [], False
                if exc.result_code is None:  # not an answer of the server: the read broke
                    close(self._conn)
                    self._conn = None
                raise

    def read_root_dse(self, attributes: Sequence[str]) -> dict[str, list[str]]:
        items, _ = self.search("", "(objectClass=*)", attributes, scope=ldap3.BASE)
        return raw_text(items[0]) if items else {}


def raw_text(item: dict[str, Any]) -> dict[str, list[str]]:
    """An ldap3 response item's raw attributes, names in lower case, values as text."""
    out: dict[str, list[str]] = {}
    for name, values in (item.get("raw_attributes") or {}).items():
        out.setdefault(name.lower(), []).extend(v.decode(errors="replace") for v in values)
    return out


def lower_raw(item: dict[str, Any]) -> dict[str, list[bytes]]:
    """An ldap3 response item's raw attributes by lower-case name (values as bytes)."""
    out: dict[str, list[bytes]] = {}
    for name, values in (item.get("raw_attributes") or {}).items():
        out.setdefault(name.lower(), []).extend(values)
    return out


def record_of(entry: dict[str, Any]) -> dict[str, list[Any]]:
    """An entry of the fast decoder (values text when UTF-8, else bytes) as a change record."""
    return {name: values for name, values in entry.items() if name != "dn"}


def record_text(record: dict[str, list[Any]], name: str) -> str:
    """A change record's first value of `name` as stripped text ("" when absent)."""
    values = record.get(name)
    if not values:
        return ""
    value = values[0]
    return (value if isinstance(value, str) else value.decode(errors="replace")).strip()


def _normal(dn: str) -> Any:
    try:
        return dn_key(dn)
    except DNError:
        return dn.strip().lower()


def encode_cursor(detector: str, **state: Any) -> str:
    return json.dumps({"detector": detector, **state}, sort_keys=True, separators=(",", ":"))


def decode_cursor(cursor: str, detector: str) -> dict[str, Any]:
    """The state in `cursor`; CursorError when it is not a cursor of `detector`."""
    try:
        state = json.loads(cursor)
    except (TypeError, ValueError):
        raise CursorError(f"not a change detector cursor: {cursor!r}") from None
    if not isinstance(state, dict) or state.get("detector") != detector:
        found = state.get("detector") if isinstance(state, dict) else None
        raise CursorError(
            f"cursor {cursor!r} belongs to the {found or 'unknown'} change detector, not {detector}"
        )
    return state


def describe_cursor(cursor: str | None) -> str:
    """Where a cursor stands, for people: `next change number 1234`, `after the change of
    2026-12-06 13:01:02 UTC`, `the beginning of the feed`; never its raw state."""
    if cursor is None:
        return "not set"
    try:
        state = json.loads(cursor)
    except (TypeError, ValueError):
        return "unreadable"
    if not isinstance(state, dict):
        return "unreadable"
    if "next" in state:
        return f"next change number {state['next']}"
    if state.get("detector") == "usnchanged":
        return f"changes after USN {state.get('usn', 0)}"
    if state.get("detector") == "dirsync":
        cookie = state.get("cookie")
        return "a DirSync cookie" if cookie else "the beginning: a full DirSync"
    start = state.get("start")
    when = parse_generalized_time(start) if isinstance(start, str) else None
    if when is None:
        return "the beginning of the feed"
    seen = len(state.get("seen") or ())
    at = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"after the change of {at}" if seen else f"changes from {at} on"


def parse_generalized_time(text: str) -> datetime | None:
    """'20261128155817Z' or '20261128155817.000009Z' -> an aware UTC datetime (seconds)."""
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None


def generalized_time(when: datetime) -> str:
    """An aware (or UTC-naive) datetime as 'YYYYmmddHHMMSS' in UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def parent_dn(dn: str) -> str:
    """The DN without its first RDN (escaped commas respected)."""
    i = 0
    while i < len(dn):
        if dn[i] == "\\":
            i += 2
            continue
        if dn[i] == ",":
            return dn[i + 1 :].strip()
        i += 1
    return ""


def renamed_dn(dn: str, new_rdn: str, new_superior: str | None) -> str:
    parent = new_superior if new_superior else parent_dn(dn)
    return f"{new_rdn},{parent}" if parent else new_rdn
