"""What reads and writes of big data cost the server: the page size of full reads, pages that
time out (asked again for fewer), and write answers trimmed with excludedAttributes.

Against the real scim2-server, through the loopback fault proxy where a request has to be
seen or stalled."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.faults import FaultProxy, Seen
from toolkit.scim import (
    Capabilities,
    ResponseTimeout,
    ScimClient,
    ScimEndpoint,
    TransportError,
    eq,
    member_patches,
)
from toolkit.scim.paging import FULL_READ_PAGE_CAP, SEARCH_PAGE_SIZE, cursor_pages, page_size
from toolkit.scim.protocol import Page

# --- choosing the page size (pure) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "explicit", "full", "expected"),
    [
        (Capabilities(filter_max_results=1000), None, True, 1000),  # scim2-server
        (Capabilities(filter_max_results=5000), None, True, FULL_READ_PAGE_CAP),
        (Capabilities(filter_max_results=200), None, True, 200),
        (Capabilities(filter_max_results=1000, max_page_size=300), None, True, 300),
        (Capabilities(), None, True, SEARCH_PAGE_SIZE),  # nothing advertised: stay modest
        (Capabilities(default_page_size=50), None, True, 50),
        (Capabilities(filter_max_results=1000), None, False, SEARCH_PAGE_SIZE),  # a search
        (Capabilities(filter_max_results=1000, default_page_size=20), None, False, 20),
        (Capabilities(filter_max_results=1000), 250, True, 250),  # configured: kept
        (Capabilities(filter_max_results=1000), 250, False, 250),
        (Capabilities(filter_max_results=1000), 4000, True, 1000),  # never past the server
        (Capabilities(filter_max_results="500"), None, True, 500),  # a string in the SPC
    ],
)
def test_page_size_choice(caps, explicit, full, expected):
    assert page_size(caps, explicit, full) == expected


def test_cursor_pages_halve_without_a_probe():
    """Cursor paging has no startIndex to probe: plain halving (pure logic, a fake fetch)."""
    asked: list[tuple[str, int]] = []

    def fetch(cursor: str, count: int) -> Page:
        asked.append((cursor, count))
        if count > 3:
            raise ResponseTimeout(f"count {count} too slow")
        if cursor == "":
            return Page([{"id": str(i)} for i in range(count)], next_cursor="next")
        return Page([{"id": "last"}])

    pages = list(cursor_pages(fetch, 10))
    assert [len(p.resources) for p in pages] == [2, 1]
    assert asked == [("", 10), ("", 5), ("", 2), ("next", 2)]


# --- against the real server ----------------------------------------------------------------


@pytest.fixture
def proxy(scim_server):
    p = FaultProxy("127.0.0.1", scim_server.port).start()
    yield p
    p.stop()


def _client(proxy: FaultProxy, **settings) -> ScimClient:
    settings.setdefault("backoff_base", 0.01)
    return ScimClient(ScimEndpoint(proxy.url(), **settings))


def _fill(client: ScimClient, count: int, prefix: str = "reader") -> list[str]:
    ops = [
        client.bulk_operation("POST", "User", data={"userName": f"{prefix}{i:04}"}, bulk_id=str(i))
        for i in range(count)
    ]
    return [r.id for r in client.bulk(ops)]


def _list_reads(proxy: FaultProxy, endpoint: str = "/Users") -> list[Seen]:
    return [s for s in proxy.seen if s.method == "GET" and urlsplit(s.path).path.endswith(endpoint)]


def _query(seen: Seen) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(seen.path).query).items()}


def test_full_read_asks_for_the_advertised_maximum_and_searches_stay_small(proxy):
    with _client(proxy) as client:
        assert client.discovery.capabilities.filter_max_results == 1000
        ids = _fill(client, 30)
        proxy.clear()
        assert sorted(r["id"] for r in client.iter_resources("User")) == sorted(ids)
        assert client.find("User", eq("userName", "reader0007"))[0]["id"] == ids[7]
    full, search = (_query(s) for s in _list_reads(proxy))
    assert (full["count"], "filter" in full) == ("1000", False)
    assert (search["count"], search["filter"]) == (
        str(SEARCH_PAGE_SIZE),
        'userName eq "reader0007"',
    )


def test_a_configured_page_size_is_used_for_every_read(proxy):
    with _client(proxy, page_size=7) as client:
        ids = _fill(client, 30)
        proxy.clear()
        assert sorted(r["id"] for r in client.iter_resources("User")) == sorted(ids)
        client.find("User", eq("userName", "reader0001"))
    counts = [_query(s)["count"] for s in _list_reads(proxy)]
    assert counts == ["7"] * 5 + ["7"]  # 30 users: four full pages, a short one; the search


def _stalls_page_reads(proxy: FaultProxy, count: int) -> None:
    """Stall the next `count` page reads (not the count=0 probes of what is left)."""

    def accepts(seen: Seen) -> bool:
        if seen.method != "GET" or "startIndex" not in seen.path:
            return False
        return _query(seen)["count"] != "0"

    proxy.inject("stall", count, stall=1.0, when=accepts)


def _pages(proxy: FaultProxy) -> list[tuple[str, str, str | None]]:
    return [(_query(s)["startIndex"], _query(s)["count"], s.fault) for s in _list_reads(proxy)]


def test_a_page_that_times_out_is_asked_again_with_half_of_what_is_left(proxy):
    with _client(proxy, response_timeout=0.3) as client:
        ids = _fill(client, 30)
        proxy.clear()
        _stalls_page_reads(proxy, 1)
        read = [r["id"] for r in client.iter_resources("User")]
    assert sorted(read) == sorted(ids) and len(read) == len(set(read))
    # 1000 stalls; count=0 says 30 are left: 15, and the rest of the read keeps 15
    assert _pages(proxy) == [
        ("1", "1000", "stall"),
        ("1", "0", None),
        ("1", "15", None),
        ("16", "15", None),
        ("31", "15", None),
    ]


def _probes(seen: Seen) -> bool:
    return seen.method == "GET" and "startIndex" in seen.path and _query(seen)["count"] == "0"


def test_the_probe_may_take_longer_than_response_timeout(proxy):
    """The count=0 request after a timeout waits for the server's backlog: it has a longer
    timeout (PROBE_TIMEOUT_FACTOR response timeouts) than page reads."""
    with _client(proxy, response_timeout=0.3) as client:
        ids = _fill(client, 30)
        proxy.clear()
        _stalls_page_reads(proxy, 1)
        proxy.inject("delay", 1, stall=0.6, when=_probes)  # twice the response timeout
        assert sorted(r["id"] for r in client.iter_resources("User")) == sorted(ids)
    assert _pages(proxy)[:3] == [("1", "1000", "stall"), ("1", "0", "delay"), ("1", "15", None)]


def test_without_a_total_the_count_is_halved(proxy):
    with _client(proxy, response_timeout=0.3) as client:
        ids = _fill(client, 30)
        proxy.clear()
        _stalls_page_reads(proxy, 2)
        proxy.inject("400", 2, when=_probes)  # a server that refuses count=0
        read = [r["id"] for r in client.iter_resources("User")]
    assert sorted(read) == sorted(ids) and len(read) == len(set(read))
    # no in-place retry of a timed-out count: each timeout halves it
    assert _pages(proxy) == [
        ("1", "1000", "stall"),
        ("1", "0", "400"),
        ("1", "500", "stall"),
        ("1", "0", "400"),
        ("1", "250", None),
    ]


def test_later_pages_keep_the_smaller_count(proxy):
    with _client(proxy, response_timeout=0.3, page_size=8) as client:
        ids = _fill(client, 20)
        proxy.clear()
        _stalls_page_reads(proxy, 1)
        assert sorted(r["id"] for r in client.iter_resources("User")) == sorted(ids)
    pages = [(start, count) for start, count, _ in _pages(proxy)]
    assert pages == [("1", "8"), ("1", "0")] + [(str(i), "4") for i in (1, 5, 9, 13, 17, 21)]


def test_a_timeout_even_at_count_1_names_type_position_and_timeout(proxy):
    with _client(proxy, response_timeout=0.3, page_size=4, max_attempts=2) as client:
        _fill(client, 6)
        client.discover()
        proxy.clear()
        _stalls_page_reads(proxy, 10)
        with pytest.raises(ResponseTimeout) as info:
            list(client.iter_resources("User"))
    message = str(info.value)
    assert isinstance(info.value, TransportError)
    assert "reading User" in message and "startIndex 1" in message
    assert "response-timeout 0.3 s" in message and "count=1" in message
    assert "raise the scim2 external server's response-timeout" in message
    counts = [count for _, count, _ in _pages(proxy)]
    assert counts == ["4", "0", "2", "0", "1", "1"]  # halved to 1, then the usual attempts


# --- write answers trimmed (RFC 7644 §3.9) ----------------------------------------------------


def _group_with_members(client: ScimClient, members: list[str]) -> dict:
    return client.create(
        "Group", {"displayName": "trimmed", "members": [{"value": m} for m in members]}
    )


def test_member_patch_with_excluded_members_answers_without_them(proxy):
    with _client(proxy) as client:
        ids = _fill(client, 40)
        group = _group_with_members(client, ids[:20])
        (ops,) = member_patches(ids[20:], [])
        proxy.clear()
        answer = client.patch("Group", group["id"], ops, excluded_attributes=["members"])
        etag = client.etag("Group", group["id"])
        stored = client.get("Group", group["id"])
    assert answer is not None and "members" not in answer
    assert answer["id"] == group["id"] and answer["meta"]["version"] == etag
    assert etag == stored["meta"]["version"] != group["meta"]["version"]
    assert len(stored["members"]) == 40
    patch = next(s for s in proxy.seen if s.method == "PATCH")
    assert _query(patch) == {"excludedAttributes": "members"}


def test_a_patch_asking_nothing_is_answered_204_by_scim2_server(proxy):
    """Why excludedAttributes is the caller's choice: asked for nothing, scim2-server
    answers 204 with the ETag, shorter still; other servers send the whole resource."""
    with _client(proxy) as client:
        ids = _fill(client, 4)
        group = _group_with_members(client, ids[:2])
        (ops,) = member_patches(ids[2:], [])
        assert client.patch("Group", group["id"], ops) is None
        assert (
            client.etag("Group", group["id"]) == client.get("Group", group["id"])["meta"]["version"]
        )


def test_put_with_excluded_members_answers_without_them(proxy):
    with _client(proxy) as client:
        ids = _fill(client, 10)
        group = _group_with_members(client, ids[:5])
        body = {"displayName": "trimmed", "members": [{"value": m} for m in ids]}
        answer = client.replace("Group", group["id"], body, excluded_attributes=["members"])
        stored = client.get("Group", group["id"])
    assert "members" not in answer and answer["id"] == group["id"]
    assert answer["meta"]["version"] == stored["meta"]["version"]
    assert client.etag("Group", group["id"]) == stored["meta"]["version"]
    assert len(stored["members"]) == 10
    put = next(s for s in proxy.seen if s.method == "PUT")
    assert _query(put) == {"excludedAttributes": "members"}


def test_post_with_excluded_members_works_on_a_server_that_ignores_it(proxy):
    """scim2-server does not apply attributes/excludedAttributes to a creation's answer: the
    full group comes back, and the client still takes its id and ETag."""
    with _client(proxy) as client:
        ids = _fill(client, 5)
        created = client.create(
            "Group",
            {"displayName": "posted", "members": [{"value": m} for m in ids]},
            excluded_attributes=["members"],
        )
        etag = client.etag("Group", created["id"])
    assert created["id"] and etag == created["meta"]["version"]
    post = next(s for s in proxy.seen if s.method == "POST" and "/Groups" in s.path)
    assert _query(post) == {"excludedAttributes": "members"}


# --- parallel pages (toolkit.scim.paging.parallel_index_pages) ------------------------------


def _fake_server(resources: int, cap: int | None = None, delay: float = 0.0):
    """A fetch over `resources` ids (a page capped at `cap` if set), and what was asked."""
    import threading
    import time

    asked: list[tuple[int, int]] = []
    lock = threading.Lock()
    busy = [0, 0]  # in flight now, most in flight at once

    def fetch(start_index: int, count: int) -> Page:
        with lock:
            asked.append((start_index, count))
            busy[0] += 1
            busy[1] = max(busy)
        time.sleep(delay)
        with lock:
            busy[0] -= 1
        n = min(count, cap or count, max(0, resources - start_index + 1))
        ids = [{"id": str(i)} for i in range(start_index, start_index + n)]
        return Page(ids, total_results=resources)

    return fetch, asked, busy


def test_parallel_pages_overlap_and_come_in_order():
    from toolkit.scim.paging import parallel_index_pages, unique_resources

    fetch, asked, busy = _fake_server(95, delay=0.05)
    found = [r["id"] for r in unique_resources(parallel_index_pages(fetch, 10, 4, 95))]
    assert found == [str(i) for i in range(1, 96)]
    assert busy[1] == 4  # never more in flight than the workers
    assert sorted(asked)[:10] == [(s, 10) for s in range(1, 100, 10)]


@pytest.mark.parametrize(("total", "cap"), [(50, None), (95, 7), (500, None)])
def test_parallel_pages_never_trust_total_results(total, cap):
    """totalResults too low (the rest is read sequentially), too high (pages past the end
    come back empty), and a server that pages smaller than asked: every resource, once."""
    from toolkit.scim.paging import parallel_index_pages, unique_resources

    fetch, _, _ = _fake_server(95, cap=cap)
    found = [r["id"] for r in unique_resources(parallel_index_pages(fetch, 10, 3, total))]
    assert found == [str(i) for i in range(1, 96)]


def test_parallel_read_of_the_real_server_honours_retry_after(proxy):
    """Four workers against scim2-server: the same resources as a sequential read, and a 429
    with Retry-After on one page is waited out and asked again."""
    import time

    with _client(proxy, page_size=10) as client:
        ids = _fill(client, 45)
        proxy.clear()
        sequential = [r["id"] for r in client.iter_resources("User")]
        proxy.inject("429", 1, retry_after="1", when=lambda s: _query(s).get("startIndex") == "21")
        started = time.monotonic()
        parallel = [r["id"] for r in client.iter_resources("User", workers=4)]
        took = time.monotonic() - started
    assert sorted(parallel) == sorted(sequential) == sorted(ids)
    assert parallel == sequential  # pages yielded in order
    assert took >= 1.0  # the Retry-After was honoured
    faulted = [s for s in proxy.seen if s.fault == "429"]
    assert len(faulted) == 1
    pages = [_query(s) for s in _list_reads(proxy) if s.fault is None]
    assert sum(1 for q in pages if q.get("startIndex") == "21") == 2  # asked again


def test_parallel_pages_go_on_sequentially_after_a_timeout():
    """A page that times out ends the concurrent part; the read goes on from that page,
    asking for fewer as sequential paging does, and misses nothing."""
    from toolkit.scim.paging import parallel_index_pages, unique_resources

    inner, asked, _ = _fake_server(95)
    slow = {21}

    def fetch(start_index: int, count: int) -> Page:
        if start_index in slow and count == 10:
            raise ResponseTimeout("too slow")
        return inner(start_index=start_index, count=count)

    found = [r["id"] for r in unique_resources(parallel_index_pages(fetch, 10, 3, 95))]
    assert found == [str(i) for i in range(1, 96)]
    assert (21, 5) in asked  # asked again from there, for half as many
