"""Auth against a bearer-protected real scim2-server, with a small loopback OAuth2 token
endpoint (client credentials): token caching, expiry, one refresh on 401, and secrets that
never leak into errors, reprs or logs."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from tests.support.faults import FaultProxy
from toolkit.errors import FatalError
from toolkit.lab.scimserver import ScimServer
from toolkit.scim import (
    AuthenticationError,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
    ScimClient,
    ScimEndpoint,
)

TOKEN = "valid-token-0f9e8d"
CLIENT_ID = "scimsync"
CLIENT_SECRET = "client-secret-7a6b5c"


class TokenEndpoint:
    """OAuth2 token endpoint (client credentials) on loopback; issues tokens from a queue."""

    def __init__(self) -> None:
        self.issue: deque[str] = deque()
        self.default = TOKEN
        self.expires_in: int | None = 3600
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = endpoint.answer(form, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/oauth2/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        with self._lock:
            self.requests.append(
                {"form": form, "basic": bool(authorization), "client_id": client_id}
            )
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "bad client credentials",
                }
            token = self.issue.popleft() if self.issue else self.default
        body = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return 200, body

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def protected_server(tmp_path_factory):
    server = ScimServer(tmp_path_factory.mktemp("scim-bearer"), bearer_token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def protected(protected_server):
    protected_server.reset()
    return protected_server


@pytest.fixture
def token_endpoint():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.stop()


def _oauth(
    token_endpoint: TokenEndpoint, secret: str = CLIENT_SECRET, **kw
) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(token_endpoint.url, CLIENT_ID, secret, scope="scim", **kw)


def _assert_no_secret(err: Exception, *secrets: str) -> None:
    texts = [
        str(err),
        repr(err),
        repr(getattr(err, "request", None)),
        repr(getattr(err, "response", None)),
    ]
    for secret in secrets:
        assert all(secret not in text for text in texts), f"secret leaked into {type(err).__name__}"


def test_bearer_token_accepted_and_wrong_one_is_fatal(protected):
    with ScimClient(ScimEndpoint(protected.url, auth=BearerAuth(TOKEN))) as client:
        uid = client.create("User", {"userName": "bearer"})["id"]
        assert client.get("User", uid)["userName"] == "bearer"
    with ScimClient(ScimEndpoint(protected.url, auth=BearerAuth("wrong-token-123"))) as client:
        with pytest.raises(AuthenticationError) as info:
            client.get("User", uid)
        assert "wrong-token-123" not in repr(client)
    err = info.value
    assert isinstance(err, FatalError) and err.status == 401
    assert err.request.headers["authorization"] == "[redacted]"
    assert "401" in str(err) and protected.url in str(err)  # discovery is the first call
    _assert_no_secret(err, "wrong-token-123")


def test_basic_auth_header_is_sent_and_redacted(protected):
    proxy = FaultProxy("127.0.0.1", protected.port).start()
    try:
        auth = BasicAuth("sync-user", "basic-pass-42")
        with ScimClient(ScimEndpoint(proxy.url(), auth=auth)) as client:
            with pytest.raises(AuthenticationError) as info:  # this server wants bearer tokens
                client.discover()
    finally:
        proxy.stop()
    sent = [s.headers.get("authorization", "") for s in proxy.seen]
    expected = "Basic " + base64.b64encode(b"sync-user:basic-pass-42").decode()
    assert sent and all(h == expected for h in sent)
    _assert_no_secret(info.value, "basic-pass-42", expected)


@pytest.mark.parametrize("client_auth", ["basic", "post"])
def test_oauth2_token_is_fetched_once_and_cached(protected, token_endpoint, client_auth):
    endpoint = ScimEndpoint(protected.url, auth=_oauth(token_endpoint, client_auth=client_auth))
    with ScimClient(endpoint) as client:
        uid = client.create("User", {"userName": "oauth"})["id"]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda _: client.get("User", uid), range(30)))
    assert len(token_endpoint.requests) == 1
    request = token_endpoint.requests[0]
    assert request["basic"] == (client_auth == "basic") and request["client_id"] == CLIENT_ID
    assert (
        request["form"]["scope"] == "scim" and request["form"]["grant_type"] == "client_credentials"
    )


def test_oauth2_refreshes_once_on_401(protected, token_endpoint):
    token_endpoint.issue.append("revoked-token")
    with ScimClient(ScimEndpoint(protected.url, auth=_oauth(token_endpoint))) as client:
        assert client.create("User", {"userName": "refreshed"})["userName"] == "refreshed"
        assert len(token_endpoint.requests) == 2
        client.search("User")
    assert len(token_endpoint.requests) == 2


def test_oauth2_a_token_that_keeps_failing_is_fatal_after_one_refresh(protected, token_endpoint):
    token_endpoint.default = "never-valid"
    with ScimClient(ScimEndpoint(protected.url, auth=_oauth(token_endpoint))) as client:
        with pytest.raises(AuthenticationError) as info:
            client.search("User")
    assert len(token_endpoint.requests) == 2 and info.value.status == 401
    _assert_no_secret(info.value, "never-valid", CLIENT_SECRET)


def test_oauth2_token_renewed_when_it_expires(protected, token_endpoint):
    token_endpoint.expires_in = 1
    with ScimClient(ScimEndpoint(protected.url, auth=_oauth(token_endpoint))) as client:
        client.search("User")
        client.search("User")
        assert len(token_endpoint.requests) == 1
        time.sleep(1.0)
        client.search("User")
    assert len(token_endpoint.requests) == 2


@pytest.mark.parametrize("client_auth", ["basic", "post"])
def test_oauth2_wrong_client_secret_is_fatal_and_not_leaked(
    protected, token_endpoint, client_auth, caplog
):
    caplog.set_level(logging.DEBUG)
    auth = _oauth(token_endpoint, secret="wrong-secret-999", client_auth=client_auth)
    with ScimClient(ScimEndpoint(protected.url, auth=auth)) as client:
        with pytest.raises(AuthenticationError) as info:
            client.search("User")
        assert "wrong-secret-999" not in repr(client)
    err = info.value
    assert isinstance(err, FatalError) and "bad client credentials" in str(err)
    assert token_endpoint.url in str(err)
    _assert_no_secret(err, "wrong-secret-999")
    assert "wrong-secret-999" not in caplog.text


def test_no_secret_in_debug_logs(protected, token_endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    with ScimClient(ScimEndpoint(protected.url, auth=_oauth(token_endpoint))) as client:
        client.create("User", {"userName": "logged", "password": "user-pass-1"})
    assert "toolkit.scim" in {r.name for r in caplog.records}
    for secret in (TOKEN, CLIENT_SECRET, "user-pass-1"):
        assert secret not in caplog.text


def test_a_header_that_cannot_be_sent_is_fatal_at_once(protected):
    """A credential ending in a space (an API caller's; the config refuses an empty one and
    a bearer token with a space): httpx will not send the header. That is a configuration error on the first
    attempt, never retried, and its message does not quote the header."""
    from toolkit.scim import ConfigurationError

    token = "token-secret-42 "
    with ScimClient(ScimEndpoint(protected.url, auth=BearerAuth(token))) as client:
        with pytest.raises(ConfigurationError) as info:
            client.get("User", "x")
        assert client.requests_sent == 1
    _assert_no_secret(info.value, "token-secret-42")
    assert "cannot be sent" in str(info.value)
