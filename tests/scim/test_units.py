"""Pure logic of the SCIM client: filters, PATCH building, discovery, bulk planning,
retry policy, rate limiter, errors and redaction. No server needed."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from toolkit.errors import FatalError, RetriableError, SkippableError
from toolkit.scim import (
    AuthenticationError,
    BasicAuth,
    BearerAuth,
    ConfigurationError,
    Conflict,
    Discovery,
    InvalidFilter,
    InvalidValue,
    NotFound,
    OAuth2ClientCredentials,
    PreconditionFailed,
    ScimClient,
    ScimEndpoint,
    ServerBusy,
    Unavailable,
    Unsupported,
    and_,
    eq,
    member_patches,
    not_,
    or_,
    pr,
    sw,
    value_path,
)
from toolkit.scim.bulk import BulkOperation, chunk_operations, match_results, op_size, resolve_refs
from toolkit.scim.errors import REDACTED, RequestInfo, ResponseInfo
from toolkit.scim.protocol import ApiCall, classify, parse_page, request_info
from toolkit.scim.ratelimit import RateLimiter
from toolkit.scim.retry import exponential_backoff, parse_retry_after

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# --- filters -------------------------------------------------------------------------------


def test_filter_escapes_quotes_and_backslashes():
    assert eq("userName", 'a"b\\c') == r'userName eq "a\"b\\c"'
    # the literal is JSON: decoding it gives the value back
    assert json.loads(str(eq("userName", 'x"\\"y')).split(" eq ", 1)[1]) == 'x"\\"y'


def test_filter_literals_and_non_ascii():
    assert eq("active", True) == "active eq true"
    assert eq("x", None) == "x eq null"
    assert eq("n", 3) == "n eq 3"
    assert eq("displayName", "Jürgen Ødegård") == 'displayName eq "Jürgen Ødegård"'
    assert eq("meta.lastModified", datetime(2024, 1, 2, tzinfo=UTC)).endswith(
        '"2024-01-02T00:00:00+00:00"'
    )
    assert eq("note", "line\nbreak") == 'note eq "line\\nbreak"'


def test_filter_combinators_parenthesise_by_precedence():
    a, b, c = eq("userName", "a"), sw("name.familyName", "J"), pr("emails")
    assert and_(a, b) == 'userName eq "a" and name.familyName sw "J"'
    assert and_(or_(a, b), c) == '(userName eq "a" or name.familyName sw "J") and emails pr'
    # not needed by precedence, but unambiguous for readers and lax servers alike
    assert or_(and_(a, b), c) == '(userName eq "a" and name.familyName sw "J") or emails pr'
    assert or_(or_(a, b), c) == 'userName eq "a" or name.familyName sw "J" or emails pr'
    assert not_(a) == 'not (userName eq "a")'
    assert (a & c) == and_(a, c)
    assert value_path("emails", eq("type", "work")) == 'emails[type eq "work"]'


def test_filter_extension_path_allowed_and_injection_refused():
    assert eq(f"{ENT}:employeeNumber", "7") == f'{ENT}:employeeNumber eq "7"'
    for bad in ('userName eq "x" or userName', "a b", "", "emails[type eq 1]"):
        with pytest.raises(ValueError, match="attribute path"):
            eq(bad, "v")
    with pytest.raises(ValueError):
        and_()


# --- member_patches --------------------------------------------------------------------------


def test_member_patches_chunks_without_resending_the_list():
    added = [f"a{i}" for i in range(5)]
    removed = ["r1", "r2", 'we"ird']
    requests = member_patches(added, removed, chunk=3)
    assert [sum(len(op.get("value", [None])) for op in req) for req in requests] == [3, 3, 2]
    assert requests[0] == [
        {"op": "remove", "path": 'members[value eq "r1"]'},
        {"op": "remove", "path": 'members[value eq "r2"]'},
        {"op": "remove", "path": 'members[value eq "we\\"ird"]'},
    ]
    assert requests[1] == [
        {"op": "add", "path": "members", "value": [{"value": f"a{i}"} for i in range(3)]}
    ]
    assert member_patches([], []) == []
    with pytest.raises(ValueError):
        member_patches(["a"], [], chunk=0)


# --- discovery -----------------------------------------------------------------------------

SCHEMAS = [
    {
        "id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "attributes": [
            {
                "name": "userName",
                "type": "string",
                "mutability": "readWrite",
                "uniqueness": "server",
            },
            {"name": "id", "type": "string", "mutability": "readOnly"},
            {
                "name": "emails",
                "type": "complex",
                "multiValued": True,
                "subAttributes": [{"name": "value", "type": "string"}],
            },
            {"name": "password", "type": "string", "mutability": "writeOnly"},
            {"name": "groups", "type": "complex", "multiValued": True, "mutability": "readOnly"},
        ],
    },
    {
        "id": ENT,
        "attributes": [
            {"name": "employeeNumber", "type": "string"},
            {
                "name": "manager",
                "type": "complex",
                "subAttributes": [
                    {"name": "value"},
                    {"name": "displayName", "mutability": "readOnly"},
                ],
            },
        ],
    },
]
TYPES = [
    {
        "name": "User",
        "endpoint": "/Users",
        "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
        "schemaExtensions": [{"schema": ENT, "required": False}],
    }
]


def test_discovery_attribute_lookup_and_writability():
    d = Discovery.build({"etag": {"supported": True}}, TYPES, SCHEMAS)
    assert d.is_writable("User", "userName")
    assert d.is_writable("users", "USERNAME")  # endpoint name, any case
    assert d.is_writable("User", "password")  # writeOnly
    assert not d.is_writable("User", "id")
    assert not d.is_writable("User", "groups")
    # RFC 7643 common attributes are known even though /Schemas does not list them
    assert d.is_writable("User", "externalId") and not d.is_writable("User", "meta.version")
    assert d.attribute("User", f"{ENT}:externalId") is None
    assert d.is_writable("User", 'emails[type eq "work"].value')
    # a "]" or an escaped quote inside a quoted filter value does not end the filter
    assert d.attribute("User", 'emails[value eq "a]b"].value').name == "value"
    assert d.attribute("User", 'emails[value eq "a\\"]b"].value').name == "value"
    assert d.is_writable("User", f"{ENT}:employeeNumber")
    assert d.is_writable("User", f"{ENT}:manager.value")
    assert not d.is_writable("User", f"{ENT}:manager.displayName")
    assert d.attribute("User", "nope") is None
    assert d.attribute("Group", "displayName") is None  # no such resource type
    assert d.attribute("User", ENT).type == "complex"
    assert d.capabilities.etag and not d.capabilities.bulk


def test_discovery_defaults_and_overrides():
    d = Discovery.build(None, None, None, missing=("/ServiceProviderConfig",))
    assert d.resource_type("User").endpoint == "/Users"
    assert d.capabilities.patch and not d.capabilities.bulk and not d.capabilities.etag
    o = d.with_overrides({"bulk": True, "etag": True, "resource-types": {"User": "scim/users"}})
    assert o.capabilities.bulk and o.capabilities.etag
    assert o.resource_type("User").endpoint == "/scim/users"
    with pytest.raises(ValueError, match="bogus"):
        d.with_overrides({"bogus": 1})


def test_discovery_rfc9865_pagination_block():
    spc = {
        "pagination": {"cursor": True, "index": False, "defaultPageSize": 50, "maxPageSize": 200}
    }
    caps = Discovery.build(spc, TYPES, SCHEMAS).capabilities
    assert caps.cursor and not caps.index and caps.max_page_size == 200


# --- bulk planning -------------------------------------------------------------------------


def test_bulk_chunks_respect_operation_and_payload_limits():
    ops = [BulkOperation("POST", "/Users", {"userName": f"u{i:03}"}, f"b{i}") for i in range(10)]
    assert chunk_operations(ops, max_operations=4, max_payload_size=10**6) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]
    per_op = op_size(ops[0])
    chunks = chunk_operations(ops, max_operations=100, max_payload_size=200 + 3 * per_op)
    assert all(len(c) <= 3 for c in chunks) and sum(map(len, chunks)) == 10


def test_bulk_resolve_refs_and_match_results_reordered():
    data = {"members": [{"value": "bulkId:u1"}, {"value": "bulkId:other"}]}
    assert resolve_refs(data, {"u1": "abc"}) == {
        "members": [{"value": "abc"}, {"value": "bulkId:other"}]
    }
    assert resolve_refs("/Groups/bulkId:g1", {"g1": "9"}) == "/Groups/9"
    sent = [
        BulkOperation("POST", "/Users", {}, "u1"),
        BulkOperation("DELETE", "/Users/1"),
        BulkOperation("POST", "/Groups", {}, "g1"),
    ]
    answered = [
        {"method": "POST", "bulkId": "g1"},
        {"method": "DELETE"},
        {"method": "POST", "bulkId": "u1"},
    ]
    assert [i for i, _ in match_results(sent, answered)] == [2, 1, 0]


# --- retry policy and rate limiter ----------------------------------------------------------


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_exponential_backoff_grows_with_jitter_and_cap():
    rng = random.Random(1)
    delays = [exponential_backoff(n, 0.5, 4.0, rng) for n in range(1, 7)]
    ceilings = [0.5, 1, 2, 4, 4, 4]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not lockstep


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_bulk_request_counts_as_its_operations_against_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=lambda s: None)
    assert limiter.reserve(20) == pytest.approx(1.9)  # 20 operations at 10/s, one in the bucket
    assert limiter.reserve() == pytest.approx(2.0)  # the next waits behind all twenty


def test_rate_limiter_spaces_requests_and_is_thread_safe():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=lambda s: None)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    clock.now = 10.0  # idle: the bucket refills to its burst only
    assert limiter.reserve() == 0.0 and limiter.reserve() == pytest.approx(0.1)
    assert RateLimiter(0).acquire() == 0.0

    shared = RateLimiter(100, clock=FakeClock(), sleep=lambda s: None)
    results: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            wait = shared.reserve()
            with lock:
                results.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 reservations at 100/s with a frozen clock: each slot exactly once, 10 ms apart
    assert sorted(round(w, 6) for w in results) == [round(i / 100, 6) for i in range(200)]


# --- errors --------------------------------------------------------------------------------


def _resp(status: int, scim_type: str | None = None) -> ResponseInfo:
    return ResponseInfo(status, {}, None, scim_type, "server says why")


@pytest.mark.parametrize(
    ("status", "scim_type", "not_found", "cls", "kind"),
    [
        (401, None, "resource", AuthenticationError, FatalError),
        (403, None, "resource", AuthenticationError, FatalError),
        (404, None, "resource", NotFound, SkippableError),
        (404, None, "endpoint", ConfigurationError, FatalError),
        (409, "uniqueness", "resource", Conflict, SkippableError),
        (412, None, "resource", PreconditionFailed, SkippableError),
        (400, "invalidValue", "resource", InvalidValue, SkippableError),
        (400, "invalidFilter", "endpoint", InvalidFilter, SkippableError),
        (429, None, "resource", ServerBusy, RetriableError),
        (503, None, "resource", Unavailable, RetriableError),
        (501, None, "resource", Unsupported, FatalError),
    ],
)
def test_classify_status(status, scim_type, not_found, cls, kind):
    req = RequestInfo("PATCH", "http://h/v2/Users/1")
    err = classify(ApiCall("PATCH", "/Users/1", not_found=not_found), req, _resp(status, scim_type))
    assert type(err) is cls and isinstance(err, kind)
    assert err.request is req and err.response.status == status
    text = str(err)
    assert text.startswith(f"PATCH http://h/v2/Users/1: {status} ") and "server says why" in text
    if scim_type:
        assert err.scim_type == scim_type and scim_type in text


def test_redirect_is_a_configuration_error_naming_the_target():
    req = RequestInfo("GET", "http://h/v2/ServiceProviderConfig")
    resp = ResponseInfo(301, {"location": "https://h/v2/ServiceProviderConfig"})
    err = classify(ApiCall("GET", "/ServiceProviderConfig"), req, resp)
    assert isinstance(err, ConfigurationError) and "https://h/v2/ServiceProviderConfig" in str(err)


def test_request_info_redacts_authorization_and_passwords():
    request = httpx.Request(
        "POST",
        "http://h/v2/Users",
        headers={"Authorization": "Bearer s3cret-token", "X-Other": "1"},
    )
    info = request_info(
        request, {"userName": "a", "password": "hunter2", "nested": [{"password": "p"}]}
    )
    assert info.headers["authorization"] == REDACTED and info.headers["x-other"] == "1"
    assert "hunter2" not in repr(info) and "s3cret" not in repr(info)
    assert info.body["nested"][0]["password"] == REDACTED


def test_settings_reprs_hide_secrets():
    endpoint = ScimEndpoint(
        "https://h/v2",
        auth=OAuth2ClientCredentials("https://idp/token", "cid", "very-secret", scope="scim"),
    )
    text = repr(endpoint) + repr(BasicAuth("u", "pw-secret")) + repr(BearerAuth("tok-secret"))
    for secret in ("very-secret", "pw-secret", "tok-secret"):
        assert secret not in text
    assert "cid" in text and "'***'" in text


def test_misspelt_override_is_a_configuration_error_at_construction():
    with pytest.raises(ConfigurationError, match="etags"):
        ScimClient(ScimEndpoint("http://127.0.0.1:9/v2", overrides={"etags": True}))


def test_parse_page_tolerates_missing_counters():
    page = parse_page({"Resources": [{"id": "1"}], "nextCursor": "c2"})
    assert (
        page.resources == [{"id": "1"}] and page.total_results is None and page.next_cursor == "c2"
    )
    assert parse_page({"totalResults": 0}).resources == []
    with pytest.raises(ValueError):
        parse_page("not json")
