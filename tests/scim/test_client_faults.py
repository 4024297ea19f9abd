"""Faults between the client and the real scim2-server, injected by a loopback proxy:
429 with Retry-After, 5xx, stalled answers (timeouts), connection resets, refused
connections; plus keep-alive reuse and the rate limiter's effect, measured as ratios."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tests.support.faults import FaultProxy
from toolkit.errors import FatalError, RetriableError, SkippableError
from toolkit.scim import (
    AuthenticationError,
    Conflict,
    InvalidValue,
    NotFound,
    ScimClient,
    ScimEndpoint,
    ServerBusy,
    ServerError,
    TransportError,
    Unavailable,
)


class RecordingSleep:
    """Sleeps for real (the server is real too) and remembers each delay."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def proxy(scim_server):
    p = FaultProxy("127.0.0.1", scim_server.port).start()
    yield p
    p.stop()


@pytest.fixture
def sleep():
    return RecordingSleep()


def _client(proxy: FaultProxy, sleep: RecordingSleep, **settings) -> ScimClient:
    settings.setdefault("backoff_base", 0.05)
    return ScimClient(ScimEndpoint(proxy.url(), **settings), sleep=sleep)


def _user(client: ScimClient, name: str = "faulty") -> str:
    return client.create("User", {"userName": name})["id"]


def _hits(proxy: FaultProxy, path_part: str) -> list:
    return [s for s in proxy.seen if path_part in s.path]


def test_429_retry_after_seconds_is_honoured(proxy, sleep):
    with _client(proxy, sleep) as client:
        uid = _user(client)
        proxy.inject("429", 2, retry_after="1")
        assert client.get("User", uid)["id"] == uid
    assert len(sleep.delays) == 2 and all(1.0 <= d <= 1.1 for d in sleep.delays)
    assert [s.fault for s in _hits(proxy, uid)] == ["429", "429", None]


def test_429_retry_after_http_date_is_honoured(proxy, sleep):
    with _client(proxy, sleep) as client:
        uid = _user(client)
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
        proxy.inject("429", 1, retry_after=when)
        client.patch("User", uid, [{"op": "replace", "path": "title", "value": "T"}])
        assert client.get("User", uid)["title"] == "T"
    # an HTTP date has 1 s resolution: between 1 and 2 s from now
    assert len(sleep.delays) == 1 and 0.9 <= sleep.delays[0] <= 2.2


def test_429_after_all_attempts_is_server_busy_with_retry_after(proxy, sleep):
    with _client(proxy, sleep, max_attempts=3) as client:
        uid = _user(client)
        proxy.inject("429", 3, retry_after="0")
        with pytest.raises(ServerBusy) as info:
            client.get("User", uid)
    err = info.value
    assert isinstance(err, RetriableError) and err.status == 429 and err.retry_after == 0
    assert len(_hits(proxy, uid)) == 3 and "429" in str(err) and uid in str(err)


def test_a_long_retry_after_is_not_waited_for_in_process(proxy, sleep):
    with _client(proxy, sleep, max_retry_after=60) as client:
        uid = _user(client)
        proxy.inject("429", 1, retry_after="3600")
        with pytest.raises(ServerBusy) as info:
            client.get("User", uid)
    assert info.value.retry_after == 3600 and sleep.delays == []


def test_503_backs_off_exponentially_then_succeeds(proxy, sleep):
    with _client(proxy, sleep, backoff_base=0.1) as client:
        uid = _user(client)
        proxy.inject("503", 3)
        assert client.get("User", uid)["userName"] == "faulty"
    d1, d2, d3 = sleep.delays
    assert 0.05 <= d1 <= 0.1 and 0.1 <= d2 <= 0.2 and 0.2 <= d3 <= 0.4


def test_503_after_all_attempts_is_unavailable(proxy, sleep):
    with _client(proxy, sleep, max_attempts=2) as client:
        uid = _user(client)
        proxy.inject("503", 2)
        with pytest.raises(Unavailable) as info:
            client.delete("User", uid)
        assert client.get("User", uid)["id"] == uid  # the delete never reached the server
    assert isinstance(info.value, RetriableError) and "503" in str(info.value)


def test_stalled_answer_times_out_and_is_retried(proxy, sleep):
    with _client(proxy, sleep, response_timeout=0.5) as client:
        uid = _user(client)
        proxy.inject("stall", 1, stall=3)
        started = time.monotonic()
        assert client.get("User", uid)["id"] == uid
        assert time.monotonic() - started < 2.5  # did not wait for the stall to end
    assert len(sleep.delays) == 1 and [s.fault for s in _hits(proxy, uid)] == ["stall", None]


def test_timeout_on_create_is_not_blindly_resent(proxy, sleep):
    with _client(proxy, sleep, response_timeout=0.5) as client:
        client.discover()
        proxy.inject("stall", 1, stall=3)
        with pytest.raises(TransportError) as info:
            client.create("User", {"userName": "maybe"})
    err = info.value
    assert isinstance(err, RetriableError) and "ReadTimeout" in str(err) and "POST" in str(err)
    assert err.request.method == "POST" and err.response is None
    assert len(_hits(proxy, "/Users")) == 1 and sleep.delays == []


def test_connection_reset_is_retried(proxy, sleep):
    with _client(proxy, sleep) as client:
        uid = _user(client)
        proxy.inject("reset", 2)
        client.patch("User", uid, [{"op": "replace", "path": "title", "value": "after reset"}])
        proxy.inject("close", 1)
        assert client.get("User", uid)["title"] == "after reset"
    assert [s.fault for s in _hits(proxy, uid)] == ["reset", "reset", None, "close", None]


def test_resets_on_every_attempt_end_in_transport_error(proxy, sleep):
    with _client(proxy, sleep, max_attempts=2) as client:
        uid = _user(client)
        proxy.inject("reset", 2)
        with pytest.raises(TransportError) as info:
            client.get("User", uid)
    assert "after 2 attempts" in str(info.value) and uid in str(info.value)


def test_refused_connections_are_retried_then_transport_error(sleep):
    proxy = FaultProxy("127.0.0.1", 9).start()
    url = proxy.url()
    proxy.stop()  # nothing listens on that port any more
    endpoint = ScimEndpoint(url, max_attempts=3, backoff_base=0.01)
    with ScimClient(endpoint, sleep=sleep) as client:
        with pytest.raises(TransportError) as info:
            client.create("User", {"userName": "x"})  # connect errors retry even for POST
        assert client.requests_sent == 3
    assert "ConnectError" in str(info.value) and len(sleep.delays) == 2


def test_keep_alive_reuses_one_connection_and_if_match_is_sent(proxy, sleep):
    with _client(proxy, sleep) as client:
        uid = _user(client)
        for _ in range(20):
            client.get("User", uid)
        etag = client.etag("User", uid)
        client.patch("User", uid, [{"op": "replace", "path": "title", "value": "x"}])
    assert proxy.connections == 1
    assert proxy.seen[-1].method == "PATCH" and proxy.seen[-1].headers["if-match"] == etag


def _rate(client: ScimClient, uid: str, requests: int) -> float:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: client.get("User", uid), range(requests)))
    return requests / (time.monotonic() - started)


def test_rate_limiter_caps_throughput_across_threads(scim_server):
    limit = 25.0
    with ScimClient(ScimEndpoint(scim_server.url)) as free:
        uid = _user(free, "rated")
        unlimited = _rate(free, uid, 60)
    with ScimClient(ScimEndpoint(scim_server.url, max_rate_per_second=limit)) as limited:
        limited.discover()
        limited.get("User", uid)
        achieved = _rate(limited, uid, 40)
    assert unlimited / limit > 2  # the server could go much faster: the limiter is binding
    assert 0.5 <= achieved / limit <= 1.1


class GitHubLikeClient(ScimClient):
    """A target that throttles with 403 and a rate-limit message instead of 429: one hook."""

    def should_retry(self, call, attempt, response, exc):
        if (
            response is not None
            and response.status_code == 403
            and b"rate limit exceeded" in response.content
            and attempt < self.endpoint.max_attempts
        ):
            return True
        return super().should_retry(call, attempt, response, exc)


def test_retry_hook_can_be_overridden_for_a_quirky_target(proxy, sleep):
    throttled = b'{"status":"403","detail":"API rate limit exceeded"}'
    endpoint = ScimEndpoint(proxy.url(), backoff_base=0.05)
    with GitHubLikeClient(endpoint, sleep=sleep) as client:
        uid = _user(client)
        proxy.inject("403", 2, body=throttled)
        assert client.get("User", uid)["id"] == uid
    with _client(proxy, sleep) as plain:
        plain.discover()
        proxy.inject("403", 1, body=throttled)
        with pytest.raises(AuthenticationError) as info:
            plain.get("User", uid)
    assert isinstance(info.value, FatalError) and "rate limit exceeded" in str(info.value)
    assert [s.fault for s in _hits(proxy, uid)] == ["403", "403", None, "403"]


# --- 5xx: retried like 503, with the same backoff (4xx are not) ---------------------------


@pytest.mark.parametrize("status", ["500", "502", "504"])
def test_5xx_backs_off_exponentially_then_succeeds(proxy, sleep, status):
    with _client(proxy, sleep, backoff_base=0.1) as client:
        uid = _user(client)
        proxy.inject(status, 2)
        client.patch("User", uid, [{"op": "replace", "path": "title", "value": status}])
        assert client.get("User", uid)["title"] == status
    d1, d2 = sleep.delays
    assert 0.05 <= d1 <= 0.1 and 0.1 <= d2 <= 0.2
    assert [s.fault for s in _hits(proxy, uid)] == [status, status, None, None]


def test_500_after_all_attempts_is_a_retriable_server_error(proxy, sleep):
    with _client(proxy, sleep, max_attempts=3) as client:
        uid = _user(client)
        proxy.inject("500", 3)
        with pytest.raises(ServerError) as info:
            client.get("User", uid)
    err = info.value
    assert isinstance(err, RetriableError) and err.status == 500 and uid in str(err)
    assert len(_hits(proxy, uid)) == 3 and len(sleep.delays) == 2


@pytest.mark.parametrize(("status", "error"), [("400", InvalidValue), ("404", NotFound)])
def test_4xx_is_not_retried(proxy, sleep, status, error):
    with _client(proxy, sleep) as client:
        uid = _user(client)
        proxy.inject(status, 1)
        with pytest.raises(error) as info:
            client.get("User", uid)
    assert isinstance(info.value, SkippableError) and info.value.status == int(status)
    assert len(_hits(proxy, uid)) == 1 and sleep.delays == []


def test_a_post_the_server_applied_before_its_500_is_retried_into_a_409(proxy, sleep):
    """The retry of a create that did happen meets its own resource: Conflict, which the
    sync engine's adopt path turns into a link (tests/test_scim_retry_adopt.py)."""
    with _client(proxy, sleep) as client:
        client.discover()
        proxy.inject("500", 1, forward=True, when=lambda seen: seen.method == "POST")
        with pytest.raises(Conflict) as info:
            client.create("User", {"userName": "created.once"})
        found = client.find("User", 'userName eq "created.once"')
    assert info.value.status == 409 and len(found) == 1
    posts = [s.fault for s in proxy.seen if s.method == "POST"]
    assert posts == ["500", None] and len(sleep.delays) == 1
