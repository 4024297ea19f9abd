"""The LDAP sync source: paged reads of its base DNs, entry look-ups, and its change feed.

Entries are plain dicts: `{"dn": str, attribute name in lower case: [values]}`, values as
`str` (or `bytes` when not UTF-8), the unique id attribute (entryUUID) always requested.
Each `iter_entries` call reads on a connection of its own (OpenLDAP allows one paged search
per connection), so several reads may run at once from different threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.utils.conv import escape_filter_chars

from toolkit.entry import Entry
from toolkit.ldap.ad import complete_ranges, filter_value
from toolkit.ldap.changes import ChangeDetector
from toolkit.ldap.connection import close, connect_first, result_error
from toolkit.ldap.detect import make_detector
from toolkit.ldap.errors import LdapOperationError
from toolkit.ldap.schema import DirectorySchema, SchemaUnavailable, read_schema
from toolkit.ldap.search import entry_from_raw, paged_search, request_attributes
from toolkit.ldap.spec import SourceSpec
from toolkit.ldap.split import Part, plan_parts, read_parts


def equality(attribute: str, value: str) -> str:
    """The filter `(attribute=value)`, the value escaped, or sent as bytes where the server
    stores it so (AD's objectGUID, which entries carry in string form)."""
    return f"({attribute}={filter_value(attribute, value) or escape_filter_chars(value)})"


class EntrySource(Protocol):
    """What dry-run and resync need from a source: its base DNs and a subtree read of each."""

    base_dns: Sequence[str]

    def iter_entries(
        self,
        base_dn: str,
        search_filter: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
        page_size: int | None = None,
        split: bool = False,
        ids: Sequence[str] | None = None,
    ) -> Iterator[Entry]: ...

    def close(self) -> None: ...


class LdapSource:
    """An LDAP sync source (see SourceSpec): servers in failover order, base DNs, change feed."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.base_dns = list(spec.base_dns)
        self._lookup: ldap3.Connection | None = None
        self._lookup_label = ""
        self._lock = threading.Lock()
        self._schema: DirectorySchema | None | bool = False  # False: not read yet

    def iter_entries(
        self,
        base_dn: str,
        search_filter: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
        page_size: int | None = None,
        split: bool = False,
        ids: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Every entry at or below `base_dn` matching `search_filter`, read page by page.

        `split` (a full read): split into parts read at once on up to `read_connections`
        connections where that applies (toolkit.ldap.split), in a fixed order; `ids`, the
        unique ids a last read found, place the parts' bounds without listing. Raises (never
        ends short) when the read cannot complete: a size limit, a lost connection, a
        missing base DN.
        """
        wanted = request_attributes(attributes, self.spec.unique_id_attribute)
        size = page_size or self.spec.page_size
        whole = Part(base_dn, ldap3.SUBTREE, search_filter)
        if not split or self.spec.read_connections < 2:
            yield from self._read(whole, wanted, size)
            return
        parts = plan_parts(self.spec, base_dn, search_filter, self.schema(), ids)
        yield from read_parts(
            lambda part: self._read(part, wanted, size), parts, self.spec.read_connections
        )

    def _read(self, part: Part, attributes: list[str], page_size: int) -> Iterator[Entry]:
        """One paged search, on a connection of its own."""
        conn, server = connect_first(self.spec.servers)
        try:
            for entry in paged_search(
                conn,
                part.base_dn,
                part.search_filter,
                attributes,
                page_size,
                scope=part.scope,
                label=server.label,
            ):
                yield self.complete(entry)
        finally:
            close(conn)

    def schema(self) -> DirectorySchema | None:
        """The directory's schema, read once; None when it shows this user none."""
        with self._lock:
            if self._schema is False:
                try:
                    self._schema = read_schema(self.spec.servers)
                except SchemaUnavailable:
                    self._schema = None
            return self._schema if isinstance(self._schema, DirectorySchema) else None

    def complete(self, entry: Entry) -> Entry:
        """The entry with its ranged values (AD's `member;range=0-1499`) read to the end, on
        the look-up connection (a paged read's connection is busy with its pages)."""
        if not any(";range=" in name for name in entry):
            return entry
        try:
            return complete_ranges(dict(entry), self._read_range)
        except ValueError as exc:
            raise LdapOperationError(f"ranged read of {exc}") from None

    def _read_range(self, dn: str, request: str) -> dict[str, list[Any]]:
        found = self._search(dn, "(objectClass=*)", ldap3.BASE, [request], complete=False)
        return {k: v for k, v in found[0].items() if k != "dn"} if found else {}

    def iter_all(
        self, search_filter: str = "(objectClass=*)", attributes: Sequence[str] | None = None
    ) -> Iterator[Entry]:
        """`iter_entries` over every base DN of the source, one after the other."""
        for base_dn in self.base_dns:
            yield from self.iter_entries(base_dn, search_filter, attributes)

    # --- look-ups (realtime sync re-reads each changed entry) ----------------------------------

    def _search(
        self,
        base: str,
        search_filter: str,
        scope: str,
        attributes: Sequence[str] | None,
        complete: bool = True,
    ) -> list[Entry]:
        found = self._search_once(base, search_filter, scope, attributes, complete)
        return [self.complete(e) for e in found] if complete else found

    def _search_once(
        self,
        base: str,
        search_filter: str,
        scope: str,
        attributes: Sequence[str] | None,
        with_unique_id: bool = True,
    ) -> list[Entry]:
        wanted = request_attributes(
            attributes, self.spec.unique_id_attribute if with_unique_id else None
        )
        with self._lock:
            for attempt in (1, 2):
                if self._lookup is None or self._lookup.closed:
                    self._lookup, server = connect_first(self.spec.servers)
                    self._lookup_label = server.label
                try:
                    self._lookup.search(base, search_filter, search_scope=scope, attributes=wanted)
                except lexc.LDAPNoSuchObjectResult:
                    return []
                except lexc.LDAPOperationResult as exc:
                    raise result_error(
                        exc, f"search of {base} with {search_filter}", None
                    ) from None
                except lexc.LDAPException as exc:
                    close(self._lookup)
                    self._lookup = None
                    if attempt == 2:  # one reconnect (failover) for a broken connection
                        raise result_error(
                            exc, f"search of {base} with {search_filter}", None
                        ) from None
                    continue
                return [
                    entry_from_raw(item["dn"], item["raw_attributes"])
                    for item in self._lookup.response or ()
                    if item.get("type") == "searchResEntry"
                ]
        return []

    def get_entry(self, dn: str, attributes: Sequence[str] | None = None) -> Entry | None:
        """The entry at `dn` now, or None if it does not exist."""
        found = self._search(dn, "(objectClass=*)", ldap3.BASE, attributes)
        return found[0] if found else None

    def find_entries(
        self, attribute: str, value: str, attributes: Sequence[str] | None = None
    ) -> list[Entry]:
        """Entries of every base DN whose `attribute` equals `value` (e.g. entryUUID, nsUniqueId)."""
        search_filter = equality(attribute, value)
        found: list[Entry] = []
        for base_dn in self.base_dns:
            found.extend(self._search(base_dn, search_filter, ldap3.SUBTREE, attributes))
        return found

    def find_any(
        self,
        names: Sequence[str],
        values: Sequence[str],
        attributes: Sequence[str] | None = None,
    ) -> list[Entry]:
        """Entries of every base DN where one of the attributes `names` equals one of `values`
        (e.g. the entries naming some DNs as manager or member), read page by page."""
        terms = "".join(equality(n, v) for v in values for n in names)
        if not terms:
            return []
        return list(self.iter_all(f"(|{terms})", attributes))

    # --- change feed -------------------------------------------------------------------------

    def change_detector(self) -> tuple[ChangeDetector, str]:
        """The configured (or detected) change detector and a sentence saying which and why."""
        return make_detector(
            self.spec.servers, self.spec.change_detector, self.spec.ignore_changes_by_dn
        )

    def close(self) -> None:
        with self._lock:
            close(self._lookup)
            self._lookup = None

    def __enter__(self) -> LdapSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
