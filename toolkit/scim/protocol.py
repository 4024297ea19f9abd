"""The SCIM protocol core: request descriptions and response interpretation, no I/O.

After scim2-client's split, the client describes each call as an `ApiCall` (method, path,
query, body, expected statuses, what a 404 means), the transport sends it, and the
functions here turn the httpx response into data or into an error of the one error tree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from toolkit.scim.errors import (
    AuthenticationError,
    ConfigurationError,
    Conflict,
    InvalidFilter,
    InvalidResponse,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    RequestInfo,
    ResponseInfo,
    ScimError,
    ServerBusy,
    ServerError,
    Unavailable,
    Unsupported,
    redact_body,
    redact_headers,
)

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
_TEXT_LIMIT = 2000


@dataclass
class ApiCall:
    """One SCIM call as the protocol sees it; the transport adds auth, retries and timing.

    `not_found` says what a 404 means: "resource" (NotFound, skippable: the object is gone)
    or "endpoint" (ConfigurationError, fatal: the URL is wrong). `retry_unsafe` lets a
    non-idempotent call (POST create) be retried after a read timeout or reset anyway.
    `retry_read_timeout=False` gives up on the first read timeout, for a caller with a
    better remedy than sending the same request again (a page read asks for fewer).
    `timeout` replaces the endpoint's response timeout for this call.
    `operations` is what max-rate-per-second counts the call as (a /Bulk request carries many).
    """

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    expected: tuple[int, ...] = (200,)
    not_found: str = "resource"
    retry_unsafe: bool = False
    retry_read_timeout: bool = True
    timeout: float | None = None
    raw_body: bytes | None = None  # form-encoded token requests; never carried in errors
    operations: int = 1  # what the rate limit counts: a /Bulk request, one per operation


@dataclass(frozen=True)
class Page:
    """One page of a list response; `total_results` is informational only, never trusted."""

    resources: list[dict[str, Any]]
    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None
    next_cursor: str | None = None


def request_info(request: httpx.Request, body: Any = None) -> RequestInfo:
    return RequestInfo(
        method=request.method,
        url=str(request.url),
        headers=redact_headers(request.headers),
        body=redact_body(body),
    )


def response_body(response: httpx.Response) -> Any:
    """The JSON body, or the text (truncated) when it is not JSON; None when empty."""
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text[:_TEXT_LIMIT]


def response_info(response: httpx.Response, body: Any = None) -> ResponseInfo:
    body = response_body(response) if body is None else body
    scim_type = detail = None
    if isinstance(body, Mapping):
        scim_type = body.get("scimType")
        detail = body.get("detail") or body.get("error_description") or body.get("error")
        if detail is None and isinstance(body.get("Errors"), list) and body["Errors"]:
            detail = str(body["Errors"][0].get("description", ""))  # SCIM 1.1 style
    return ResponseInfo(
        status=response.status_code,
        headers=redact_headers(response.headers),
        body=redact_body(body),
        scim_type=scim_type,
        detail=None if detail is None else str(detail),
    )


def error_message(req: RequestInfo, resp: ResponseInfo | None, what: str | None = None) -> str:
    """ "PATCH http://h/v2/Users/1: 412 Precondition Failed: <server detail> (scimType x)"."""
    text = f"{req.method} {req.url}"
    if resp is not None:
        try:
            reason = httpx.codes(resp.status).phrase
        except ValueError:
            reason = ""
        text += f": {resp.status} {reason}".rstrip()
        if resp.detail:
            text += f": {resp.detail}"
        if resp.scim_type:
            text += f" (scimType {resp.scim_type})"
    if what:
        text += f": {what}"
    return text


def classify(
    call: ApiCall, req: RequestInfo, resp: ResponseInfo, retry_after: float | None = None
) -> ScimError:
    """The error of the tree that a non-expected status stands for."""
    status = resp.status
    cls: type[ScimError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFound if call.not_found == "resource" else ConfigurationError
    elif status == 409:
        cls = Conflict
    elif status == 412:
        cls = PreconditionFailed
    elif status == 429:
        cls = ServerBusy
    elif status in (502, 503, 504):
        cls = Unavailable
    elif status in (405, 501):
        cls = Unsupported
    elif status == 415 or status == 406:
        cls = ConfigurationError
    elif status == 400 and resp.scim_type in ("invalidFilter", "tooMany"):
        cls = InvalidFilter
    elif 400 <= status < 500:
        cls = InvalidValue
    elif status >= 500:
        cls = ServerError
    elif 300 <= status < 400:  # redirects are not followed: PUT/PATCH must not change URL
        where = resp.headers.get("location") or resp.headers.get("Location") or "elsewhere"
        what = f"redirected to {where}; set scim-service-url to the final URL"
        return ConfigurationError(error_message(req, resp, what), req, resp)
    else:  # an unexpected 1xx/2xx
        cls = InvalidResponse
    return cls(error_message(req, resp), req, resp, retry_after=retry_after)


def etag_of(response: httpx.Response, body: Any = None) -> str | None:
    """The resource version: the ETag header, else meta.version of the body."""
    tag = response.headers.get("etag")
    if tag:
        return tag
    if isinstance(body, Mapping):
        meta = body.get("meta")
        if isinstance(meta, Mapping) and meta.get("version"):
            return str(meta["version"])
    return None


def parse_page(body: Any) -> Page:
    """A ListResponse as a Page; tolerant of a bare list and of missing counters."""
    if isinstance(body, list):
        return Page([r for r in body if isinstance(r, dict)])
    if not isinstance(body, Mapping):
        raise ValueError("a list response must be a JSON object")
    resources = body.get("Resources")
    if resources is None:
        resources = body.get("resources") or []

    def _int(name: str) -> int | None:
        value = body.get(name)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    return Page(
        resources=[r for r in resources if isinstance(r, dict)],
        total_results=_int("totalResults"),
        start_index=_int("startIndex"),
        items_per_page=_int("itemsPerPage"),
        next_cursor=body.get("nextCursor") or None,
    )
