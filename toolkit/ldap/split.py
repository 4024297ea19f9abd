"""One LDAP subtree read split into disjoint parts, read at once on connections of their own.

    parts = plan_parts(spec, base_dn, search_filter, schema)   # how to split (or not)
    yield from read_parts(read_one_part, parts, spec.read_connections)

How, safest first:
- ranges of the unique id (entryUUID) when the schema declares it SINGLE-VALUE with an
  ORDERING rule: `(!(id>=b1))`, `(id>=b1)(!(id>=b2))`, ..., `(id>=bn)`. The first and last
  ranges are open, so every entry is in exactly one part, whatever was added meanwhile. The
  bounds are quantiles of the ids the last read found, else of the ids listed first
  (OpenLDAP's UUIDs are time-based: a directory loaded in minutes has them all in a sliver
  of the space, so even bounds would leave one part with everything);
- else by subtree: the base entry itself, then each child's subtree (at most MAX_CHILDREN;
  a child the sync user may not see, above entries it may, would be missed);
- else one search.

When it helps (bench reads; BENCHMARKS.md): against a far directory, with bounds from the
ids of a last read. On loopback one search is faster: the client decodes under the GIL and
one search already asks for its next page while decoding; bounds from a listing first cost
what the parts save.

Entries come out in a fixed order, parts in order and each part in the server's order. Any
part failing raises its error; every connection is closed, also when the reader stops early.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import ldap3
from ldap3.utils.conv import escape_filter_chars

from toolkit.entry import Entry
from toolkit.ldap.connection import close, connect_first
from toolkit.ldap.schema import DirectorySchema
from toolkit.ldap.search import paged_search, search_page
from toolkit.ldap.spec import SourceSpec

#: A base with more children than this is read whole (one part per child would not pay).
MAX_CHILDREN = 256
_BATCH = 256  # entries handed over at once (one queue operation per batch, not per entry)


@dataclass(frozen=True)
class Part:
    """One search of a split read."""

    base_dn: str
    scope: str  # ldap3.BASE or ldap3.SUBTREE
    search_filter: str


def plan_parts(
    spec: SourceSpec,
    base_dn: str,
    search_filter: str,
    schema: DirectorySchema | None,
    ids: Sequence[str] | None = None,
) -> list[Part]:
    """The parts to read `base_dn` in: one (no split) unless spec.read_connections > 1 and a
    split by id ranges or subtrees applies. Reads the children to decide, and the ids
    unless `ids` (those a last read found) are given: bounds from them are as good, at
    no cost, and any bounds make a partition."""
    whole = [Part(base_dn, ldap3.SUBTREE, search_filter)]
    count = spec.read_connections
    uid = spec.unique_id_attribute
    if count < 2:
        return whole
    if schema is not None and schema.is_ordered(uid) and not schema.is_binary(uid):
        bounds = quantiles(ids or _ids(spec, base_dn, search_filter), count)
        return range_parts(base_dn, search_filter, uid, bounds) if bounds else whole
    children = _children(spec, base_dn)
    if len(children) < 2:
        return whole
    return [
        Part(base_dn, ldap3.BASE, search_filter),
        *(Part(dn, ldap3.SUBTREE, search_filter) for dn in children),
    ]


def quantiles(ids: Sequence[str], count: int) -> list[str]:
    """Up to `count - 1` distinct ascending bounds cutting `ids` into parts of equal size.

    Hex UUIDs as OpenLDAP writes them (lower case) sort here as UUIDOrderingMatch orders
    them (their octets); for other syntaxes the bounds may be uneven, never wrong: each is
    a value the server holds, and the ranges stay a partition whatever the bounds."""
    ordered = sorted(ids)
    found = (ordered[len(ordered) * k // count] for k in range(1, count)) if ordered else ()
    return sorted({b for b in found if b != ordered[0]})


def range_parts(base_dn: str, search_filter: str, attribute: str, bounds: list[str]) -> list[Part]:
    """Parts `(!(a>=b1))`, `(a>=b1)(!(a>=b2))`, ..., `(a>=bn)` of `search_filter`."""
    ge = [f"({attribute}>={escape_filter_chars(b)})" for b in bounds]
    terms = [f"(!{ge[0]})", *(f"{lo}(!{hi})" for lo, hi in pairwise(ge)), ge[-1]]
    return [Part(base_dn, ldap3.SUBTREE, f"(&{search_filter}{t})") for t in terms]


def _ids(spec: SourceSpec, base_dn: str, search_filter: str) -> list[str]:
    conn, server = connect_first(spec.servers)
    uid = spec.unique_id_attribute.lower()
    try:
        found = paged_search(
            conn, base_dn, search_filter, [uid], spec.page_size, label=server.label
        )
        return [e[uid][0] for e in found if isinstance((e.get(uid) or [None])[0], str)]
    finally:
        close(conn)


def _children(spec: SourceSpec, base_dn: str) -> list[str]:
    """The DNs one level below `base_dn`; none when more than MAX_CHILDREN."""
    conn, server = connect_first(spec.servers)
    try:
        found, more = search_page(
            conn, base_dn, "(objectClass=*)", ["1.1"], MAX_CHILDREN, ldap3.LEVEL, server.label
        )
        return [] if more else [e.dn for e in found]
    finally:
        close(conn)


def read_parts(
    read: Callable[[Part], Iterator[Entry]], parts: Sequence[Part], connections: int
) -> Iterator[Entry]:
    """The entries of every part, parts in order, read by at most `connections` threads.

    Parts run ahead of the reader, buffered without bound (a full read keeps every entry
    anyway), so the server and network never wait for the caller; a part's error is raised
    as soon as it arrives. Stopping early stops the parts and waits until their connections
    are closed.
    """
    if len(parts) == 1:
        yield from read(parts[0])
        return
    inbox: queue.Queue[tuple[int, list[Entry] | BaseException | None]] = queue.Queue()
    stop = threading.Event()

    def work(index: int, part: Part) -> None:
        if stop.is_set():
            return
        reader = read(part)
        try:
            batch: list[Entry] = []
            for entry in reader:
                if stop.is_set():
                    return
                batch.append(entry)
                if len(batch) == _BATCH:
                    inbox.put((index, batch))
                    batch = []
            inbox.put((index, batch))
            inbox.put((index, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread
            inbox.put((index, exc))
        finally:
            reader.close()  # a part stopped early closes its connection

    pool = ThreadPoolExecutor(min(connections, len(parts)), thread_name_prefix="ldap-part")
    try:
        for index, part in enumerate(parts):  # started in order: the part read next runs first
            pool.submit(work, index, part)
        buffers: list[deque[list[Entry]]] = [deque() for _ in parts]
        done = [False] * len(parts)
        current = 0
        while current < len(parts):
            while buffers[current]:
                yield from buffers[current].popleft()
            if done[current]:
                current += 1
                continue
            index, item = inbox.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                done[index] = True
            else:
                buffers[index].append(item)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
