"""ScimClient: a SCIM 2.0 client on httpx that real, imperfect servers do not break.

One `httpx.Client` (keep-alive, HTTP/2 where TLS ALPN offers it) shared by all worker
threads. Every call goes through `_send`: rate limiter -> `prepare_request` (auth header,
If-Match) -> send -> one token refresh on 401 -> `should_retry`/`backoff_delay` for
connect errors, timeouts, resets, 429 and 5xx (honouring Retry-After) -> `classify_error`.
Those four methods are the hooks to override for a quirky target (Singer SDK style), e.g.
a GitHub-like server that throttles with 403 and a rate-limit message instead of 429.

Resources are plain dicts: no model validation on the hot path.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import httpx

from toolkit.scim.auth import Authenticator, authenticator_for
from toolkit.scim.bulk import (
    BulkOperation,
    BulkResult,
    collection_of,
    run_bulk,
    run_one_by_one,
)
from toolkit.scim.discovery import Discovery
from toolkit.scim.endpoint import ScimEndpoint
from toolkit.scim.errors import (
    ConfigurationError,
    InvalidResponse,
    RequestInfo,
    ResponseTimeout,
    ScimError,
    TransportError,
    redact_body,
)
from toolkit.scim.paging import (
    cursor_pages,
    index_pages,
    parallel_index_pages,
    unique_resources,
)
from toolkit.scim.paging import page_size as page_size_for_caps
from toolkit.scim.patch import patch_document
from toolkit.scim.protocol import (
    SCIM_JSON,
    SEARCH_REQUEST,
    ApiCall,
    Page,
    classify,
    error_message,
    etag_of,
    parse_page,
    request_info,
    response_body,
    response_info,
)
from toolkit.scim.ratelimit import RateLimiter
from toolkit.scim.requests import Request, member_path
from toolkit.scim.retry import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    exponential_backoff,
    parse_retry_after,
)

log = logging.getLogger("toolkit.scim")

# Above this filter length, search with POST /.search instead of a long URL.
MAX_GET_FILTER = 2000
# After a page read times out, the count=0 request that waits for the server to finish the
# abandoned page (see paging.fetch_shrinking) may take this many response timeouts.
PROBE_TIMEOUT_FACTOR = 6
# Discovery endpoints answering these are taken as not offered, not as an error (403: some
# targets restrict /Schemas; a token with no rights at all fails the probe of _probe_base).
_ABSENT = (400, 403, 404, 405, 501)

IfMatch = str | bool | None
# request bodies as json.dumps(body, ensure_ascii=False) writes them; one encoder for every
# request (json.dumps with an option builds a new encoder per call)
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


class ScimClient:
    """Thread-safe SCIM 2.0 client for one endpoint. Use as a context manager, or `close()`.

    `resource_type` arguments take a resource type name ("User") or an endpoint ("/Users").
    `if_match`: None sends the remembered ETag when the server supports ETags, a string
    sends that ETag, False sends none.
    """

    def __init__(
        self,
        endpoint: ScimEndpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._base = endpoint.base_url
        try:  # fail fast on a misspelt override, before any request
            Discovery().with_overrides(endpoint.overrides)
        except ValueError as exc:
            raise ConfigurationError(f"{self._base}: {exc}") from None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            http2=endpoint.http2,
            verify=_verify(endpoint),
            timeout=httpx.Timeout(
                endpoint.response_timeout,
                connect=endpoint.connect_timeout,
                pool=endpoint.response_timeout,
            ),
            limits=httpx.Limits(
                max_connections=endpoint.max_connections,
                max_keepalive_connections=endpoint.max_connections,
            ),
            headers={"User-Agent": endpoint.user_agent, "Accept": f"{SCIM_JSON}, application/json"},
            transport=transport,
            follow_redirects=False,
        )
        self._auth: Authenticator = authenticator_for(endpoint.auth, self._http)
        self._limiter = RateLimiter(endpoint.max_rate_per_second)
        self._etags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self.requests_sent = 0  # every HTTP request, retries included (for status and tests)
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScimClient({self._base!r}, auth={self.endpoint.auth!r})"

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- hooks (override for quirky targets) ------------------------------------------------

    def prepare_request(self, call: ApiCall) -> httpx.Request:
        """The httpx request for a call: URL, query, JSON body, Authorization."""
        headers = dict(call.headers)
        auth = self._auth.header()
        if auth:
            headers["Authorization"] = auth
        content: bytes | None = call.raw_body
        if content is None and call.body is not None:
            content = _ENCODE(call.body).encode()
            headers["Content-Type"] = SCIM_JSON
        return self._http.build_request(
            call.method,
            self.url_for(call.path),
            params=call.params,
            content=content,
            headers=headers,
            timeout=self._http.timeout if call.timeout is None else self._timeout(call.timeout),
        )

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self.endpoint.connect_timeout, pool=seconds)

    def should_retry(
        self,
        call: ApiCall,
        attempt: int,
        response: httpx.Response | None,
        exc: Exception | None,
    ) -> bool:
        """Retry connect errors always; timeouts and resets for idempotent calls; 429 and 5xx."""
        if attempt >= self.endpoint.max_attempts:
            return False
        if response is not None:
            if response.status_code not in RETRY_STATUSES:
                return False
            wait = parse_retry_after(response.headers.get("retry-after"))
            return wait is None or wait <= self.endpoint.max_retry_after
        if isinstance(exc, ScimError):  # token endpoint unreachable
            return isinstance(exc, TransportError)
        if _tls_failure(exc) or isinstance(
            exc, httpx.UnsupportedProtocol | httpx.ProxyError | httpx.LocalProtocolError
        ):
            return False  # sending again cannot help; a request we cannot build never will
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return True  # the request never reached the server
        if isinstance(exc, httpx.ReadTimeout) and not call.retry_read_timeout:
            return False
        return call.method.upper() in IDEMPOTENT_METHODS or call.retry_unsafe

    def backoff_delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Retry-After when the server gave one, else exponential backoff with jitter."""
        if response is not None:
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is not None:
                # A little jitter on top, so workers told the same moment do not stampede.
                return wait + self._rng.random() * min(0.1, self.endpoint.backoff_base)
        return exponential_backoff(
            attempt, self.endpoint.backoff_base, self.endpoint.backoff_max, self._rng
        )

    def classify_error(
        self, call: ApiCall, request: httpx.Request, response: httpx.Response, body: Any
    ) -> ScimError:
        """The error of the tree for a response with an unexpected status."""
        req = request_info(request, call.body)
        resp = response_info(response, body)
        return classify(call, req, resp, parse_retry_after(response.headers.get("retry-after")))

    # --- transport loop ----------------------------------------------------------------------

    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self._base + ("" if path.startswith("/") else "/") + path

    def send(self, call: ApiCall) -> tuple[httpx.Response, Any]:
        """Send a call with auth, rate limit and retries; the response and its parsed body."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            self._limiter.acquire(call.operations)
            request: httpx.Request | None = None
            try:
                request = self.prepare_request(call)
                with self._count_lock:
                    self.requests_sent += 1
                started = time.perf_counter()
                response = self._http.send(request)
            except (httpx.TransportError, TransportError) as exc:
                if self.should_retry(call, attempt, None, exc):
                    self._wait(call, attempt, None, exc)
                    continue
                raise self._transport_error(call, request, exc, attempt) from exc
            body = response_body(response)
            status = response.status_code
            log.debug(
                "%s %s -> %s in %.1f ms",
                call.method,
                request.url,
                status,
                (time.perf_counter() - started) * 1000,
            )
            if status == 401 and not refreshed:
                refreshed = True
                if self._auth.refresh(request.headers.get("authorization")):
                    attempt -= 1  # a refresh is not a failed attempt
                    continue
            if status in call.expected:
                return response, body
            if self.should_retry(call, attempt, response, None):
                self._wait(call, attempt, response, None)
                continue
            raise self.classify_error(call, request, response, body)

    def _wait(
        self, call: ApiCall, attempt: int, response: httpx.Response | None, exc: Exception | None
    ) -> None:
        delay = self.backoff_delay(attempt, response)
        why = response.status_code if response is not None else type(exc).__name__
        log.info(
            "%s %s: %s, retry %d of %d in %.2f s",
            call.method,
            self.url_for(call.path),
            why,
            attempt,
            self.endpoint.max_attempts - 1,
            delay,
        )
        self._sleep(delay)

    def _transport_error(
        self, call: ApiCall, request: httpx.Request | None, exc: Exception, attempt: int
    ) -> ScimError:
        if isinstance(exc, ScimError):
            return exc
        req = (
            request_info(request, call.body)
            if request is not None
            else RequestInfo(call.method, self.url_for(call.path), {}, redact_body(call.body))
        )
        if _tls_failure(exc):
            return ConfigurationError(
                error_message(
                    req, None, f"TLS failure ({exc}); check trust-ca-file and the host name"
                ),
                req,
            )
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ConfigurationError(error_message(req, None, f"bad URL: {exc}"), req)
        if isinstance(exc, httpx.LocalProtocolError):  # its text may quote a header: a secret
            return ConfigurationError(
                error_message(
                    req,
                    None,
                    "the request cannot be sent (a header value is not allowed); "
                    "check the credentials the config names",
                ),
                req,
            )
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = error_message(req, None, f"{what} (after {attempt} attempts)")
        if isinstance(exc, httpx.ReadTimeout):
            return ResponseTimeout(message, req)
        return TransportError(message, req)

    # --- discovery ---------------------------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """The server's discovered capabilities (fetched once, then cached)."""
        found = self._discovery
        if found is None:
            with self._lock:
                if self._discovery is None:
                    self._discovery = self._discover()
                found = self._discovery
        return found

    def discover(self, refresh: bool = False) -> Discovery:
        if refresh:
            with self._lock:
                self._discovery = None
        return self.discovery

    def _discover(self) -> Discovery:
        missing: list[str] = []
        spc = self._optional_get("/ServiceProviderConfig", missing)
        types = self._optional_get("/ResourceTypes", missing)
        schemas = self._optional_get("/Schemas", missing)
        found = Discovery.build(
            spc if isinstance(spc, dict) else None,
            _as_list(types),
            _as_list(schemas),
            self.endpoint.overrides,
            tuple(missing),
        )
        if len(missing) == 3:
            self._probe_base(found)
        return found

    def _optional_get(self, path: str, missing: list[str]) -> Any:
        response, body = self.send(ApiCall("GET", path, expected=(200,) + _ABSENT))
        if response.status_code in _ABSENT:
            missing.append(path)
            return None
        if not isinstance(body, dict | list):
            raise ConfigurationError(
                f"GET {self.url_for(path)}: 200 but not SCIM JSON "
                f"({response.headers.get('content-type')}); is scim-service-url the SCIM base URL?",
                RequestInfo("GET", self.url_for(path)),
                response_info(response, body),
            )
        return body

    def _probe_base(self, found: Discovery) -> None:
        """No discovery at all: a wrong base URL, unless a resource endpoint answers."""
        first = next(iter(found.resource_types.values()), None)
        if first is None:
            raise ConfigurationError(f"{self._base}: no discovery and no resource types")
        self.send(ApiCall("GET", first.endpoint, {"count": 1}, not_found="endpoint"))

    def endpoint_path(self, resource_type: str) -> str:
        """ "/Users" for "User" (or "Users", "/Users"); ConfigurationError if unknown."""
        info = self.discovery.resource_type(resource_type)
        if info is not None:
            return info.endpoint
        if resource_type.startswith("/"):
            return resource_type
        known = ", ".join(sorted(self.discovery.resource_types)) or "none"
        raise ConfigurationError(
            f"{self._base}: no SCIM resource type {resource_type!r} (server has: {known}); "
            "add it to the endpoint's resource_types override"
        )

    # --- ETags -------------------------------------------------------------------------------

    def etag(self, resource_type: str, resource_id: str) -> str | None:
        """The last ETag seen for a resource."""
        return self._etags.get(self._key(self.endpoint_path(resource_type), resource_id))

    def remember_etag(self, resource_type: str, resource_id: str, etag: str | None) -> None:
        self._remember(self._key(self.endpoint_path(resource_type), resource_id), etag)

    @staticmethod
    def _key(endpoint: str, resource_id: str) -> str:
        return f"{endpoint.strip('/').lower()}/{resource_id}"

    def _remember(self, key: str, etag: str | None) -> None:
        if etag:
            with self._lock:
                self._etags[key] = etag

    def _if_match(self, key: str, if_match: IfMatch) -> dict[str, str]:
        if if_match is False:
            return {}
        if isinstance(if_match, str):
            return {"If-Match": if_match}
        tag = self._etags.get(key)
        return {"If-Match": tag} if tag and self.discovery.capabilities.etag else {}

    # --- CRUD --------------------------------------------------------------------------------

    def create(
        self,
        resource_type: str,
        resource: Mapping[str, Any],
        *,
        excluded_attributes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """POST a new resource; returns the server's copy (with id and meta).

        `excluded_attributes` (RFC 7644 §3.9), e.g. ["members"] for a large group, asks for a
        shorter answer; id and meta stay. A server may ignore it (scim2-server does on POST).
        """
        path = self.endpoint_path(resource_type)
        body = self._with_schemas(resource_type, resource)
        params = _attr_params(None, excluded_attributes) or None
        call = ApiCall("POST", path, params, body=body, expected=(200, 201))
        response, created = self.send(call)
        return self._resource(path, response, created)

    def get(
        self,
        resource_type: str,
        resource_id: str,
        *,
        attributes: Iterable[str] | None = None,
        excluded_attributes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        path = self.endpoint_path(resource_type)
        params = _attr_params(attributes, excluded_attributes)
        response, body = self.send(ApiCall("GET", member_path(path, resource_id), params or None))
        return self._resource(path, response, body)

    def replace(
        self,
        resource_type: str,
        resource_id: str,
        resource: Mapping[str, Any],
        *,
        if_match: IfMatch = None,
        excluded_attributes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """PUT the full resource; returns the server's copy (less `excluded_attributes`)."""
        path = self.endpoint_path(resource_type)
        key = self._key(path, resource_id)
        body = {k: v for k, v in self._with_schemas(resource_type, resource).items() if k != "meta"}
        body["id"] = resource_id
        call = ApiCall(
            "PUT",
            member_path(path, resource_id),
            _attr_params(None, excluded_attributes) or None,
            body=body,
            headers=self._if_match(key, if_match),
        )
        response, replaced = self.send(call)
        return self._resource(path, response, replaced, resource_id)

    def patch(
        self,
        resource_type: str,
        resource_id: str,
        operations: list[dict[str, Any]],
        *,
        if_match: IfMatch = None,
        attributes: Iterable[str] | None = None,
        excluded_attributes: Iterable[str] | None = None,
    ) -> dict[str, Any] | None:
        """PATCH with a PatchOp; the resource if the server returned it (200), else None (204).

        A server that answers 200 sends the whole resource unless asked otherwise: for a
        member PATCH pass `excluded_attributes=["members"]` (RFC 7644 §3.9), and the answer
        still carries id and meta.version. Note that a server which answers 204 when no
        attributes are asked for (scim2-server) answers 200 with the body once they are.
        """
        path = self.endpoint_path(resource_type)
        key = self._key(path, resource_id)
        call = ApiCall(
            "PATCH",
            member_path(path, resource_id),
            _attr_params(attributes, excluded_attributes) or None,
            body=patch_document(operations),
            headers=self._if_match(key, if_match),
            expected=(200, 204),
        )
        response, body = self.send(call)
        if response.status_code == 204 or not isinstance(body, dict):
            self._remember(key, etag_of(response))
            return None
        return self._resource(path, response, body, resource_id)

    def delete(self, resource_type: str, resource_id: str, *, if_match: IfMatch = None) -> None:
        path = self.endpoint_path(resource_type)
        key = self._key(path, resource_id)
        call = ApiCall(
            "DELETE",
            member_path(path, resource_id),
            headers=self._if_match(key, if_match),
            expected=(200, 204),
        )
        self.send(call)
        with self._lock:
            self._etags.pop(key, None)

    def execute(self, request: Request, *, if_match: IfMatch = None) -> dict[str, Any] | None:
        """Send one request as a plan carries it (toolkit.scim.requests): its method, path and
        body as they are. The resource the server answered with; None for a DELETE or a 204.
        ETags as for the typed calls: remembered from answers, sent with If-Match when the
        server supports them (`if_match`: a tag, False for none, None for the remembered)."""
        method = request.method
        if method == "POST":
            collection, resource_id = request.path, None
        else:
            collection, _, encoded = request.path.rpartition("/")
            resource_id = unquote(encoded)
        key = self._key(collection, resource_id) if resource_id else None
        call = ApiCall(
            method,
            request.path,
            body=request.body,
            headers=self._if_match(key, if_match) if key else {},
            expected=_EXPECTED[method],
        )
        response, body = self.send(call)
        if method == "DELETE":
            with self._lock:
                self._etags.pop(key or "", None)
            return None
        if response.status_code == 204 or not isinstance(body, dict):
            if key:
                self._remember(key, etag_of(response))
            return None
        return self._resource(collection, response, body, resource_id)

    def _resource(
        self, path: str, response: httpx.Response, body: Any, resource_id: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            req = RequestInfo(response.request.method, str(response.request.url))
            resp = response_info(response, body)
            raise InvalidResponse(error_message(req, resp, "expected a SCIM resource"), req, resp)
        rid = body.get("id") or resource_id
        if rid:
            self._remember(self._key(path, str(rid)), etag_of(response, body))
        return body

    def _with_schemas(self, resource_type: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        """The resource with `schemas` filled in (core + extensions used) when it lacks them."""
        out = dict(resource)
        if out.get("schemas"):
            return out
        info = self.discovery.resource_type(resource_type)
        if info is not None and info.schema:
            keys = {k.lower() for k in out}
            out["schemas"] = [info.schema] + [e for e in info.extensions if e.lower() in keys]
        return out

    # --- search and paging -------------------------------------------------------------------

    def search(
        self,
        resource_type: str,
        filter: str | None = None,
        *,
        attributes: Iterable[str] | None = None,
        excluded_attributes: Iterable[str] | None = None,
        start_index: int | None = None,
        count: int | None = None,
        cursor: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> Page:
        """One page of a search (GET with query, or POST /.search for long filters)."""
        return self._search(
            resource_type,
            filter,
            attributes=attributes,
            excluded_attributes=excluded_attributes,
            start_index=start_index,
            count=count,
            cursor=cursor,
            sort_by=sort_by,
            sort_order=sort_order,
        )

    def _search(
        self,
        resource_type: str,
        filter: str | None,
        *,
        retry_read_timeout: bool = True,
        timeout: float | None = None,
        **options: Any,
    ) -> Page:
        path = self.endpoint_path(resource_type)
        attributes, excluded_attributes = options["attributes"], options["excluded_attributes"]
        params: dict[str, Any] = _attr_params(attributes, excluded_attributes)
        for name, value in (
            ("filter", filter),
            ("startIndex", options.get("start_index")),
            ("count", options.get("count")),
            ("cursor", options.get("cursor")),
            ("sortBy", options.get("sort_by")),
            ("sortOrder", options.get("sort_order")),
        ):
            if value is not None:
                params[name] = value
        if filter is not None and len(filter) > MAX_GET_FILTER:
            body = {"schemas": [SEARCH_REQUEST], **_search_body(params)}
            call = ApiCall(
                "POST", f"{path}/.search", body=body, not_found="endpoint", retry_unsafe=True
            )
        else:
            call = ApiCall("GET", path, params or None, not_found="endpoint")
        call.retry_read_timeout = retry_read_timeout
        call.timeout = timeout
        response, body = self.send(call)
        try:
            page = parse_page(body)
        except ValueError as exc:
            req = request_info(response.request, call.body)
            resp = response_info(response, body)
            raise InvalidResponse(error_message(req, resp, str(exc)), req, resp) from exc
        for resource in page.resources:
            if resource.get("id"):
                self._remember(self._key(path, str(resource["id"])), etag_of_body(resource))
        return page

    def iter_resources(
        self,
        resource_type: str,
        filter: str | None = None,
        *,
        attributes: Iterable[str] | None = None,
        excluded_attributes: Iterable[str] | None = None,
        page_size: int | None = None,
        workers: int = 1,
        start_index: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every matching resource, page by page, each id once (see toolkit.scim.paging).

        totalResults is never trusted to stop: paging ends on an empty page, a page with
        nothing new, or a short page (short against what the server has been returning, so
        a server that caps the page size below `page_size` is still read to the end).
        Uses RFC 9865 cursors when the server advertises them. The page size is
        `page_size_for(filter, page_size)`. A page that times out is asked for again with
        half the count, down to 1; a timeout at count 1 raises ResponseTimeout naming the
        resource type, the position and the timeout. With `workers` > 1 (and index paging)
        up to that many pages are asked for at once, the ranges a count=0 request's
        totalResults gives (a far server's latency overlaps; the rate limit and Retry-After
        hold per request as always). `start_index` > 1 goes on with index paging from there
        (after a first page read by `search`); a server with cursors is read from its start.
        """
        caps = self.discovery.capabilities
        size = self.page_size_for(filter, page_size)
        attrs = list(attributes) if attributes is not None else None
        if attrs is not None and not any(a.lower() == "id" for a in attrs):
            attrs.append("id")

        probe_timeout = PROBE_TIMEOUT_FACTOR * self.endpoint.response_timeout

        def fetch(**position: Any) -> Page:
            last = position["count"] == 1  # nothing smaller to ask for: the usual retries
            try:
                return self._search(
                    resource_type,
                    filter,
                    attributes=attrs,
                    excluded_attributes=excluded_attributes,
                    retry_read_timeout=last,
                    timeout=probe_timeout if position["count"] == 0 else None,
                    **position,
                )
            except ResponseTimeout as exc:
                if not last:
                    raise  # paging asks again for fewer
                raise self._page_timeout(resource_type, position, exc) from exc

        if caps.cursor:
            pages = cursor_pages(fetch, size)
        elif start_index > 1:
            pages = index_pages(fetch, size, start_index)
        elif workers > 1:
            pages = self._parallel_pages(fetch, size, workers)
        else:
            pages = index_pages(fetch, size)
        return unique_resources(pages)

    @staticmethod
    def _parallel_pages(fetch: Callable[..., Page], size: int, workers: int) -> Iterator[Page]:
        total = fetch(count=0, start_index=1).total_results
        if not total:
            return index_pages(fetch, size)
        return parallel_index_pages(fetch, size, workers, total)

    def count(
        self, resource_type: str, filter: str | None = None
    ) -> tuple[int | None, datetime | None]:
        """The server's totalResults for a search (count=0: no resource sent) and the
        server's own time of the answer (its Date header), each None when not given."""
        path = self.endpoint_path(resource_type)
        params: dict[str, Any] = {"count": 0}
        if filter is not None:
            params["filter"] = filter
        call = ApiCall("GET", path, params, not_found="endpoint")
        response, body = self.send(call)
        try:
            total = parse_page(body).total_results
        except ValueError:
            total = None
        return total, _http_date(response.headers.get("date"))

    def page_size_for(self, filter: str | None = None, page_size: int | None = None) -> int:
        """The count `iter_resources` asks for: `page_size`, else the endpoint's explicit
        page size, else for a full read (no filter) the server's advertised maximum up to
        1000, else the server's default page size or 100; capped by the server's limits."""
        explicit = page_size or self.endpoint.page_size or None
        return page_size_for_caps(self.discovery.capabilities, explicit, filter is None)

    def _page_timeout(
        self, resource_type: str, position: Mapping[str, Any], exc: ResponseTimeout
    ) -> ResponseTimeout:
        where = (
            f"startIndex {position['start_index']}"
            if "start_index" in position
            else f"cursor {position.get('cursor')!r}"
        )
        return ResponseTimeout(
            f"reading {resource_type} from {self._base}: the page at {where} got no answer "
            f"within response-timeout {self.endpoint.response_timeout:g} s, even with "
            "count=1; raise the scim2 external server's response-timeout",
            exc.request,
        )

    def find(self, resource_type: str, filter: str, **kwargs: Any) -> list[dict[str, Any]]:
        """All resources matching a filter (see `iter_resources`)."""
        return list(self.iter_resources(resource_type, filter, **kwargs))

    # --- bulk --------------------------------------------------------------------------------

    def bulk_operation(
        self,
        method: str,
        resource_type: str,
        resource_id: str | None = None,
        data: Any = None,
        *,
        bulk_id: str | None = None,
        version: str | None = None,
    ) -> BulkOperation:
        """A bulk operation on a resource type; `resource_id` may be "bulkId:x"."""
        path = self.endpoint_path(resource_type)
        if resource_id is not None:
            path = member_path(path, resource_id)
        if method.upper() in ("POST", "PUT") and isinstance(data, Mapping):
            data = self._with_schemas(resource_type, data)
        elif method.upper() == "PATCH" and isinstance(data, list):
            data = patch_document(data)
        return BulkOperation(method.upper(), path, data, bulk_id, version)

    @property
    def supports_bulk(self) -> bool:
        return self.discovery.capabilities.bulk

    def bulk(
        self,
        operations: list[BulkOperation],
        *,
        fail_on_errors: int | None = None,
        fallback: bool = True,
    ) -> list[BulkResult]:
        """Run operations with /Bulk (split to maxOperations/maxPayloadSize), one result each.

        Without Bulk support on the server, `fallback` sends them one by one with the same
        bulkId resolution (else Unsupported). Fatal errors (auth) raise; other per-operation
        failures are in each result's `.error`.
        """
        caps = self.discovery.capabilities
        if not caps.bulk:
            if not fallback:
                raise ConfigurationError(f"{self._base}: the server does not advertise Bulk")
            results = run_one_by_one(self.send, operations)
        else:
            results = run_bulk(
                self.send,
                self.url_for,
                operations,
                caps.bulk_max_operations,
                caps.bulk_max_payload_size,
                fail_on_errors,
            )
        for result in results:
            if result.ok and result.id and result.operation.method != "DELETE":
                self._remember(
                    self._key(collection_of(result.operation), result.id), result.version
                )
        return results


# --- helpers -------------------------------------------------------------------------------


_EXPECTED = {"POST": (200, 201), "PUT": (200,), "PATCH": (200, 204), "DELETE": (200, 204)}


def _verify(endpoint: ScimEndpoint) -> bool | ssl.SSLContext:
    if endpoint.verify is False:
        return False
    cafile = endpoint.verify if isinstance(endpoint.verify, str) else None
    context = ssl.create_default_context(cafile=cafile)
    if not endpoint.check_hostname:
        context.check_hostname = False
    return context


def _tls_failure(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None


def _as_list(body: Any) -> list[dict[str, Any]] | None:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        found = body.get("Resources")
        return found if isinstance(found, list) else [body]
    return None


def _attr_params(
    attributes: Iterable[str] | None, excluded: Iterable[str] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if attributes:
        params["attributes"] = ",".join(attributes)
    if excluded:
        params["excludedAttributes"] = ",".join(excluded)
    return params


def _search_body(params: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(params)
    for name in ("attributes", "excludedAttributes"):
        if name in body:
            body[name] = body[name].split(",")
    return body


def etag_of_body(resource: Mapping[str, Any]) -> str | None:
    meta = resource.get("meta")
    return str(meta["version"]) if isinstance(meta, Mapping) and meta.get("version") else None
