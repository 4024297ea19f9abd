"""Defensive paging over SCIM list responses (RFC 7644 §3.4.2.4, RFC 9865 cursors).

Targets get paging wrong in many ways (wrong totalResults, 0-based or ignored startIndex,
silent page-size caps), so totalResults is never trusted to stop: index paging ends on an
empty page, a page with nothing new, or a page short of what the server has been
returning. The functions take a `fetch` callable that returns one Page, so they run on
any transport and test without one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from toolkit.scim.protocol import Page

Fetch = Callable[..., Page]


def index_pages(fetch: Fetch, size: int) -> Iterator[Page]:
    """Pages by startIndex/count: `fetch(start_index=, count=)`."""
    start, full = 1, size
    while True:
        page = fetch(start_index=start, count=size)
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
        page = fetch(cursor=cursor, count=size)
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
