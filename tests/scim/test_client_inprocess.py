"""Configurations the lab server does not offer, on the real scim2-server run in-process.

scim2-server's WSGI application over httpx.WSGITransport (no socket), with RFC 9865 cursor
paging, a small page-size cap and a small Bulk payload limit; plus paging quirks of real
targets (lying totalResults, ignored or 0-based startIndex) bent by a transport wrapper.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.faults import RewritingTransport, with_params
from toolkit.scim import NotFound, ScimClient, ScimEndpoint, check_scim_server

MAX_PAGE = 7
BULK_PAYLOAD = 3000


def _app():
    from scim2_models import Pagination, ScimProvider
    from scim2_server.applications.wsgi import WSGIApplication
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    config.pagination = Pagination(
        cursor=True, index=True, default_pagination_method="cursor", max_page_size=MAX_PAGE
    )
    config.bulk.max_payload_size = BULK_PAYLOAD
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    return WSGIApplication(InMemoryStorage(), provider, ScimService(provider, secret="test-only"))


@pytest.fixture
def app():
    return _app()


def _client(
    app, *, rewrite_request=None, rewrite_body=None, **overrides
) -> tuple[ScimClient, RewritingTransport]:
    transport = RewritingTransport(
        httpx.WSGITransport(app=app), rewrite_request=rewrite_request, rewrite_body=rewrite_body
    )
    endpoint = ScimEndpoint("http://scim.test/v2", overrides=overrides)
    return ScimClient(endpoint, transport=transport), transport


def _fill(app, count: int) -> list[str]:
    client, _ = _client(app)
    ops = [
        client.bulk_operation("POST", "User", data={"userName": f"p{i:03}"}) for i in range(count)
    ]
    results = client.bulk(ops)
    assert all(r.ok for r in results)
    return [r.id for r in results]


def _searches(transport: RewritingTransport) -> list[httpx.Request]:
    return [r for r in transport.requests if r.method == "GET" and r.url.path == "/v2/Users"]


def test_cursor_paging_when_the_server_advertises_it(app):
    ids = _fill(app, 30)
    client, transport = _client(app)
    assert client.discovery.capabilities.cursor
    found = [r["id"] for r in client.iter_resources("User", page_size=10)]
    assert sorted(found) == sorted(ids) and len(found) == len(set(found))
    searches = _searches(transport)
    assert len(searches) == 5  # 30 at the server's maxPageSize of 7
    assert all("cursor" in r.url.params and "startIndex" not in r.url.params for r in searches)
    assert searches[0].url.params["cursor"] == "" and searches[1].url.params["cursor"]


def test_bulk_respects_max_payload_size(app):
    client, transport = _client(app)
    assert client.discovery.capabilities.bulk_max_payload_size == BULK_PAYLOAD
    ops = [
        client.bulk_operation(
            "POST", "User", data={"userName": f"big{i:03}", "title": "x" * 200}, bulk_id=f"b{i}"
        )
        for i in range(40)
    ]
    results = client.bulk(ops)
    assert [r.status for r in results] == [201] * 40
    bulk_posts = [r for r in transport.requests if r.url.path == "/v2/Bulk"]
    assert len(bulk_posts) > 3 and all(len(r.content) <= BULK_PAYLOAD for r in bulk_posts)


def test_index_paging_reads_a_server_that_caps_the_page_silently(app):
    ids = _fill(app, 30)
    # discovery hidden: the client asks for 10 and the server quietly returns 7
    client, transport = _client(app, cursor=False, max_page_size=None)
    found = [r["id"] for r in client.iter_resources("User", page_size=10)]
    assert sorted(found) == sorted(ids)
    assert [len(client.search("User", start_index=1, count=10).resources)] == [MAX_PAGE]


@pytest.mark.parametrize("lie", [3, 10_000])
def test_paging_never_trusts_total_results(app, lie):
    ids = _fill(app, 25)

    def lying(request, body):
        if isinstance(body, dict) and "totalResults" in body:
            body["totalResults"] = lie
        return body

    client, transport = _client(app, rewrite_body=lying, cursor=False)
    found = [r["id"] for r in client.iter_resources("User", page_size=MAX_PAGE)]
    assert sorted(found) == sorted(ids)
    pages = len(_searches(transport))
    assert pages <= 25 // MAX_PAGE + 2  # at most one extra, empty page


def test_paging_stops_on_a_server_that_ignores_start_index(app):
    _fill(app, 20)

    def ignore_start(request):
        return with_params(request, startIndex=1) if "startIndex" in request.url.params else request

    client, transport = _client(app, rewrite_request=ignore_start, cursor=False)
    found = [r["id"] for r in client.iter_resources("User", page_size=5)]
    assert len(found) == 5 == len(set(found))  # the first page, once, then it stops
    assert len(_searches(transport)) == 2


def test_paging_deduplicates_a_zero_based_start_index(app):
    ids = _fill(app, 20)

    def zero_based(request):
        start = request.url.params.get("startIndex")
        return with_params(request, startIndex=max(1, int(start) - 1)) if start else request

    client, transport = _client(app, rewrite_request=zero_based, cursor=False)
    found = [r["id"] for r in client.iter_resources("User", page_size=5)]
    assert sorted(found) == sorted(ids) and len(found) == len(set(found))


def _hide_discovery(request: httpx.Request) -> httpx.Request:
    """A target without discovery endpoints (GitLab, vCenter): they answer 404."""
    if request.url.path.rsplit("/", 1)[-1] in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
        url = request.url.copy_with(path="/v2/NoSuchEndpoint")
        return httpx.Request(request.method, url, headers=request.headers)
    return request


def test_server_without_discovery_uses_defaults_and_overrides(app):
    client, _ = _client(app, rewrite_request=_hide_discovery)
    d = client.discovery
    assert set(d.missing) == {"/ServiceProviderConfig", "/ResourceTypes", "/Schemas"}
    assert d.capabilities.patch and not d.capabilities.bulk and not d.capabilities.etag
    uid = client.create("User", {"userName": "nodisco"})["id"]
    assert client.get("User", uid)["userName"] == "nodisco"

    results = {r.name: r for r in check_scim_server(client, {"User": ["userName"]})}
    assert not results["/ServiceProviderConfig"].ok and results["/ServiceProviderConfig"].fix
    assert results["resource type User at /Users"].ok

    tuned, transport = _client(
        app,
        rewrite_request=_hide_discovery,
        etag=True,
        bulk=True,
        resource_types={"User": "/Users"},
    )
    assert tuned.discovery.capabilities.etag and tuned.supports_bulk
    tuned.get("User", uid)
    tuned.patch("User", uid, [{"op": "replace", "path": "title", "value": "T"}])
    assert transport.requests[-1].headers["if-match"]


def test_opaque_ids_are_percent_encoded_in_urls(app):
    client, transport = _client(app)
    with pytest.raises(NotFound):
        client.get("User", "we/ird id?x=1")
    assert transport.requests[-1].url.raw_path == b"/v2/Users/we%2Fird%20id%3Fx%3D1"
