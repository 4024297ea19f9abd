"""Defensive paging over SCIM list responses (RFC 7644 §3.4.2.4, RFC 9865 cursors).

Targets get paging wrong in many ways (wrong totalResults, 0-based or ignored startIndex,
silent page-size caps), so totalResults is never trusted to stop: index paging ends on an
empty page, a page with nothing new, or a page short of what the server has been
returning. The functions take a `fetch` callable that returns one Page, so they run on
any transport and test without one.

A page that takes longer than the response timeout (a page of large groups) is asked for
again with half the count, down to 1, and the rest of the read keeps the smaller count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolkit.scim.discovery import Capabilities
from toolkit.scim.errors import ResponseTimeout, ScimError
from toolkit.scim.protocol import Page

log = logging.getLogger("toolkit.scim")

Fetch = Callable[..., Page]

# Page size of filtered searches, and of full reads when the server advertises no maximum
# (a server that silently caps pages and gives no totalResults would end a read early).
SEARCH_PAGE_SIZE = 100
# A full read asks for the server's advertised maximum, at most this: with offset paging
# (scim2-server sorts every resource for each page) 100 per page made reading 100,000
# users take 1,165 s against about 215 s at 1000.
FULL_READ_PAGE_CAP = 1000


def page_size(caps: Capabilities, explicit: int | None, full_read: bool) -> int:
    """The count to ask for: explicit if set, else the advertised maximum (capped) for a full
    read, else the server's default or SEARCH_PAGE_SIZE; never above what the server allows."""
    limits = [_int(c) for c in (caps.max_page_size, caps.filter_max_results)]
    allowed = min((n for n in limits if n), default=None)
    if explicit:
        size = explicit
    elif full_read and allowed:
        size = min(allowed, FULL_READ_PAGE_CAP)
    else:
        size = _int(caps.default_page_size) or SEARCH_PAGE_SIZE
    return max(1, min(size, allowed) if allowed else size)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def fetch_shrinking(fetch: Fetch, size: int, **position: Any) -> tuple[Page, int]:
    """One page at `position`, halving the count after each ResponseTimeout down to 1 (a
    timeout at count 1 propagates); the page and the count that worked.

    After each timeout a count=0 request at the same startIndex (the client gives it a
    longer timeout) waits for the server to finish the page it abandoned (a single-worker
    server such as scim2-server goes on computing it, and the smaller page would queue
    behind it and time out too), and its totalResults says how many are left: 50 slow
    groups asked for with count 1000 go to 25 at once, not through 500, 250, 125 and 62.
    Cursor paging has no such probe and just halves.
    """
    left: int | None = None
    while True:
        try:
            return fetch(count=size, **position), size
        except ResponseTimeout:
            if size <= 1:
                raise
            if "start_index" in position:
                left = _left_to_read(fetch, position["start_index"]) or left
            smaller = max(1, min(size, left or size) // 2)
            where = ", ".join(f"{k} {v!r}" for k, v in position.items())
            log.warning("page at %s timed out with count %d: asking for %d", where, size, smaller)
            size = smaller


def _left_to_read(fetch: Fetch, start_index: int) -> int | None:
    """Resources from `start_index` on, by totalResults of a count=0 request; None if unknown."""
    try:
        total = fetch(count=0, start_index=start_index).total_results
    except ScimError:
        return None
    return max(1, total - start_index + 1) if total is not None else None


def index_pages(fetch: Fetch, size: int, start: int = 1) -> Iterator[Page]:
    """Pages by startIndex/count: `fetch(start_index=, count=)`, from `start`."""
    return _index_pages_from(fetch, size, start)


def parallel_index_pages(fetch: Fetch, size: int, workers: int, total: int) -> Iterator[Page]:
    """`index_pages` with up to `workers` pages in flight: the startIndex ranges that
    `total` (a count=0 request's totalResults) says exist are asked for concurrently and
    yielded in order. A short page before the last (the server pages smaller than asked)
    or a timeout ends the concurrent part; the read goes on sequentially from there, as
    `index_pages` does, so a wrong totalResults costs time, never resources."""
    starts = list(range(1, total + 1, size))
    start = 1
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="scim-page") as pool:
            pending = [pool.submit(fetch, count=size, start_index=s) for s in starts]
            try:
                for index, future in enumerate(pending):
                    try:
                        page = future.result()
                    except ResponseTimeout:
                        break  # the sequential read below asks again for fewer
                    n = len(page.resources)
                    if n:
                        yield page
                    start = starts[index] + n
                    if n < size:
                        break
            finally:
                for future in pending:
                    future.cancel()
    for page in _index_pages_from(fetch, size, start):
        yield page


def _index_pages_from(fetch: Fetch, size: int, start: int) -> Iterator[Page]:
    full = size
    while True:
        page, size = fetch_shrinking(fetch, size, start_index=start)
        full = min(full, size)
        n = len(page.resources)
        if n == 0:
            return
        yield page
        start += n
        if n >= full:
            continue
        if page.total_results is not None and start - 1 < page.total_results:
            full = n  # the server pages smaller than asked: keep going at its size
            continue
        return


def cursor_pages(fetch: Fetch, size: int) -> Iterator[Page]:
    """Pages by RFC 9865 cursor: `fetch(cursor=, count=)`, "" first, then each nextCursor."""
    cursor = ""
    while True:
        page, size = fetch_shrinking(fetch, size, cursor=cursor)
        if not page.resources:
            return
        yield page
        if not page.next_cursor or page.next_cursor == cursor:
            return
        cursor = page.next_cursor


def unique_resources(pages: Iterable[Page]) -> Iterator[dict[str, Any]]:
    """Each resource once (by id); stops when a page brings nothing new (a server looping)."""
    seen: set[str] = set()
    for page in pages:
        fresh = []
        for resource in page.resources:
            rid = resource.get("id")
            if rid is None:
                fresh.append(resource)
            elif rid not in seen:
                seen.add(rid)
                fresh.append(resource)
        if not fresh:
            return
        yield from fresh
