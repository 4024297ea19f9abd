"""Bulk (RFC 7644 §3.7): operations, splitting to the server's limits, bulkId references.

The runners take the client's `send` (auth, retries, rate limit) as a callable. Splitting
respects `bulk.maxOperations` and `bulk.maxPayloadSize`; a "bulkId:x" reference to an
operation of an earlier request is replaced by the id that operation created, so a split
never breaks a user-then-group cross-reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from toolkit.errors import FatalError
from toolkit.scim.errors import InvalidResponse, RequestInfo, ResponseInfo, ScimError, redact_body
from toolkit.scim.protocol import (
    ApiCall,
    classify,
    error_message,
    etag_of,
    request_info,
    response_info,
)

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_PREFIX = "bulkId:"
# Room for the envelope ({"schemas": [...], "Operations": [...], "failOnErrors": n}).
_ENVELOPE = 200


@dataclass(frozen=True)
class BulkOperation:
    """One operation: `path` is relative to the base URL ("/Users", "/Groups/bulkId:g1")."""

    method: str
    path: str
    data: Any = None
    bulk_id: str | None = None
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method.upper(), "path": self.path}
        if self.bulk_id is not None:
            out["bulkId"] = self.bulk_id
        if self.version is not None:
            out["version"] = self.version
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass
class BulkResult:
    """The outcome of one operation; `error` is set (and classified) when it failed."""

    index: int
    operation: BulkOperation
    status: int
    location: str | None = None
    id: str | None = None
    version: str | None = None
    response: Any = None
    error: ScimError | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def resolve_refs(value: Any, ids: Mapping[str, str]) -> Any:
    """`value` with every "bulkId:x" whose x is in `ids` replaced by the created id."""
    if isinstance(value, str):
        if BULK_PREFIX in value:
            return "/".join(_resolve_segment(seg, ids) for seg in value.split("/"))
        return value
    if isinstance(value, list):
        return [resolve_refs(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: resolve_refs(v, ids) for k, v in value.items()}
    return value


def _resolve_segment(segment: str, ids: Mapping[str, str]) -> str:
    if segment.startswith(BULK_PREFIX):
        return ids.get(segment[len(BULK_PREFIX) :], segment)
    return segment


def resolve_operation(op: BulkOperation, ids: Mapping[str, str]) -> BulkOperation:
    if not ids:
        return op
    return BulkOperation(
        op.method, resolve_refs(op.path, ids), resolve_refs(op.data, ids), op.bulk_id, op.version
    )


def op_size(op: BulkOperation) -> int:
    """Bytes the operation adds to a request body (as the client serialises it, plus ", ")."""
    return len(json.dumps(op.to_json(), ensure_ascii=False).encode()) + 2


def next_chunk(
    ops: list[BulkOperation],
    start: int,
    ids: Mapping[str, str],
    max_operations: int,
    max_payload_size: int,
) -> list[tuple[int, BulkOperation]]:
    """The next request's operations from `start`: resolved with the ids created so far, and
    within both limits as they will be sent (a resolved reference is longer than "bulkId:x").

    An operation larger than the payload limit on its own still gets a request (the server
    answers 413 for it, and only it fails).
    """
    budget = max(1, max_payload_size - _ENVELOPE)
    chunk: list[tuple[int, BulkOperation]] = []
    size = 0
    for index in range(start, len(ops)):
        if len(chunk) >= max(1, max_operations):
            break
        op = resolve_operation(ops[index], ids)
        n = op_size(op)
        if chunk and size + n > budget:
            break
        chunk.append((index, op))
        size += n
    return chunk


def chunk_operations(
    ops: list[BulkOperation], max_operations: int, max_payload_size: int
) -> list[list[int]]:
    """Indexes of `ops` grouped into requests within both limits (no references resolved)."""
    chunks: list[list[int]] = []
    start = 0
    while start < len(ops):
        chunk = next_chunk(ops, start, {}, max_operations, max_payload_size)
        chunks.append([i for i, _ in chunk])
        start += len(chunk)
    return chunks


def id_from_location(location: str | None) -> str | None:
    if not location:
        return None
    return unquote(location.rstrip("/").rsplit("/", 1)[-1]) or None


def match_results(
    sent: list[BulkOperation], answered: list[Mapping[str, Any]]
) -> list[tuple[int, Mapping[str, Any]]]:
    """Pair each answered operation with the position of the operation it answers.

    Servers may reorder (RFC 7644 §3.7): by bulkId when there is one, else the next
    unanswered operation of the same method.
    """
    by_bulk_id = {op.bulk_id: i for i, op in enumerate(sent) if op.bulk_id is not None}
    taken: set[int] = set()
    pairs = []
    for answer in answered:
        index = by_bulk_id.get(answer.get("bulkId"))  # type: ignore[arg-type]
        if index is None or index in taken:
            method = str(answer.get("method", "")).upper()
            index = next(
                (
                    i
                    for i, op in enumerate(sent)
                    if i not in taken and op.method.upper() == method and op.bulk_id is None
                ),
                None,
            )
        if index is None:
            index = next((i for i in range(len(sent)) if i not in taken), None)
        if index is None:
            continue
        taken.add(index)
        pairs.append((index, answer))
    return pairs


# --- running (the transport is passed in as `send`) ----------------------------------------

Send = Callable[[ApiCall], tuple[httpx.Response, Any]]


def collection_of(op: BulkOperation) -> str:
    """The resource endpoint an operation works on ("/Users" for POST /Users or PUT /Users/1)."""
    return op.path if op.method == "POST" else op.path.rsplit("/", 1)[0]


def with_bulk_id(op: BulkOperation, index: int) -> BulkOperation:
    """RFC 7644 §3.7 requires a bulkId on every POST; give one to those that lack it."""
    if op.method != "POST" or op.bulk_id is not None:
        return op
    return BulkOperation(op.method, op.path, op.data, f"scimsync-{index}", op.version)


def run_bulk(
    send: Send,
    url_for: Callable[[str], str],
    operations: list[BulkOperation],
    max_operations: int,
    max_payload_size: int,
    fail_on_errors: int | None = None,
) -> list[BulkResult]:
    """POST /Bulk in as many requests as the limits need; one result per operation answered."""
    prepared = [with_bulk_id(op, i) for i, op in enumerate(operations)]
    results: list[BulkResult | None] = [None] * len(operations)
    ids: dict[str, str] = {}
    errors = start = 0
    while start < len(prepared):
        if fail_on_errors is not None and errors >= fail_on_errors:
            break
        chunk = next_chunk(prepared, start, ids, max_operations, max_payload_size)
        start += len(chunk)
        budget = None if fail_on_errors is None else fail_on_errors - errors
        sent = [op for _, op in chunk]
        for pos, item in _post_bulk(send, sent, budget):
            index = chunk[pos][0]
            result = _result(url_for, index, operations[index], sent[pos], item)
            results[index] = result
            errors += result.error is not None
            if prepared[index].bulk_id and result.id:
                ids[str(prepared[index].bulk_id)] = result.id
    return [r for r in results if r is not None]


def _post_bulk(
    send: Send, sent: list[BulkOperation], fail_on_errors: int | None
) -> list[tuple[int, Mapping[str, Any]]]:
    body: dict[str, Any] = {"schemas": [BULK_REQUEST], "Operations": [op.to_json() for op in sent]}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    call = ApiCall("POST", "/Bulk", body=body, not_found="endpoint", operations=len(sent))
    response, answer = send(call)
    answered = answer.get("Operations") if isinstance(answer, dict) else None
    if not isinstance(answered, list):
        req = request_info(response.request, body)
        resp = response_info(response, answer)
        raise InvalidResponse(error_message(req, resp, "no Operations in bulk response"), req, resp)
    return match_results(sent, answered)


def _result(
    url_for: Callable[[str], str],
    index: int,
    original: BulkOperation,
    sent: BulkOperation,
    item: Mapping[str, Any],
) -> BulkResult:
    status = _status_code(item.get("status"))
    location = item.get("location")
    rid = id_from_location(location) or (
        unquote(sent.path.rsplit("/", 1)[-1]) if sent.method != "POST" else None
    )
    result = BulkResult(
        index, original, status, location, rid, item.get("version"), item.get("response")
    )
    if status >= 400 or status == 0:
        body = item.get("response")
        req = RequestInfo(sent.method, url_for(sent.path), {}, redact_body(sent.data))
        resp = ResponseInfo(
            status,
            {},
            redact_body(body),
            body.get("scimType") if isinstance(body, Mapping) else None,
            body.get("detail") if isinstance(body, Mapping) else None,
        )
        result.error = classify(ApiCall(sent.method, sent.path), req, resp)
        if isinstance(result.error, FatalError):
            raise result.error
    return result


def run_one_by_one(send: Send, operations: list[BulkOperation]) -> list[BulkResult]:
    """The same operations as single requests, for servers without Bulk; same bulkId rules."""
    ids: dict[str, str] = {}
    results = []
    for index, original in enumerate(operations):
        op = resolve_operation(original, ids)
        call = ApiCall(op.method, op.path, body=op.data, expected=(200, 201, 204))
        if op.version:
            call.headers["If-Match"] = op.version
        try:
            response, body = send(call)
        except FatalError:
            raise
        except ScimError as exc:
            results.append(
                BulkResult(index, original, exc.status or 0, response=exc.response, error=exc)
            )
            continue
        rid = body.get("id") if isinstance(body, dict) else None
        rid = rid or (unquote(op.path.rsplit("/", 1)[-1]) if op.method != "POST" else None)
        location = response.headers.get("location")
        version = etag_of(response, body)
        results.append(
            BulkResult(index, original, response.status_code, location, rid, version, body)
        )
        if original.bulk_id and rid:
            ids[original.bulk_id] = rid
    return results


def _status_code(value: Any) -> int:
    """Bulk statuses are strings per RFC 7644 ("201"), ints on some servers, or objects."""
    if isinstance(value, dict):
        value = value.get("code")
    try:
        return int(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return 0
