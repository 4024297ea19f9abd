"""Authorization headers for each auth setting, and the OAuth2 client-credentials token cache.

An authenticator hands out the Authorization header value and, after a 401, says whether
a fresh credential may help (only OAuth2 can get one). The header value is a secret:
it is never logged, and errors carry requests with it redacted.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from toolkit.scim.endpoint import (
    Auth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from toolkit.scim.errors import (
    AuthenticationError,
    ConfigurationError,
    RequestInfo,
    TransportError,
)
from toolkit.scim.protocol import ApiCall, classify, error_message, response_body, response_info

# Refresh a token this long before it expires (capped at 10% of its lifetime), so a
# request never leaves with a token that dies in flight.
EXPIRY_MARGIN = 30.0


class Authenticator:
    """No credentials."""

    def header(self) -> str | None:
        return None

    def refresh(self, used: str | None) -> bool:
        """After a 401 with `used`: True if a retry with a new credential is worth it."""
        return False


class StaticAuthenticator(Authenticator):
    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "StaticAuthenticator([redacted])"


class OAuth2Authenticator(Authenticator):
    """Client-credentials token, fetched on first use, cached until shortly before expiry.

    Thread-safe: one fetch at a time; after a 401 only the first thread that saw the stale
    token fetches a new one, the others pick it up.
    """

    def __init__(
        self,
        settings: OAuth2ClientCredentials,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._renew_at: float | None = None
        self.fetches = 0  # how many tokens were fetched (for tests and status)

    def __repr__(self) -> str:
        return f"OAuth2Authenticator(token_url={self._settings.token_url!r}, token=[redacted])"

    def header(self) -> str | None:
        with self._lock:
            if self._value is None or (
                self._renew_at is not None and self._clock() >= self._renew_at
            ):
                self._fetch()
            return self._value

    def refresh(self, used: str | None) -> bool:
        with self._lock:
            if self._value == used:  # nobody refreshed since our request left
                self._value = None
                self._fetch()
            return True

    def _fetch(self) -> None:
        s = self._settings
        form = {"grant_type": "client_credentials"}
        if s.scope:
            form["scope"] = s.scope
        headers = {"Accept": "application/json"}
        if s.client_auth == "post":
            form |= {"client_id": s.client_id, "client_secret": s.client_secret}
        else:
            headers["Authorization"] = _basic(s.client_id, s.client_secret)
        request = self._http.build_request("POST", s.token_url, data=form, headers=headers)
        req = RequestInfo("POST", s.token_url, {"Authorization": "[redacted]"}, None)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise TransportError(
                error_message(req, None, f"token request failed: {type(exc).__name__}: {exc}"),
                req,
            ) from exc
        body = response_body(response)
        if response.status_code != 200:
            resp = response_info(response, body)
            err = classify(ApiCall("POST", s.token_url), req, resp)
            if response.status_code in (400, 401, 403):
                raise AuthenticationError(
                    error_message(req, resp, "the token endpoint refused the client credentials"),
                    req,
                    resp,
                )
            raise err
        self._store(body, req, response)

    def _store(self, body: Any, req: RequestInfo, response: httpx.Response) -> None:
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError(
                error_message(req, None, "token response has no access_token"),
                req,
                response_info(response, body),
            )
        kind = str(body.get("token_type") or "Bearer")
        self._value = f"{'Bearer' if kind.lower() == 'bearer' else kind} {token}"
        self.fetches += 1
        lifetime = body.get("expires_in")
        try:
            life = float(lifetime) if lifetime is not None else None
        except (TypeError, ValueError):
            life = None
        self._renew_at = (
            None if life is None else self._clock() + life - min(EXPIRY_MARGIN, life * 0.1)
        )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def authenticator_for(auth: Auth, http: httpx.Client) -> Authenticator:
    if isinstance(auth, NoAuth):
        return Authenticator()
    if isinstance(auth, BasicAuth):
        return StaticAuthenticator(_basic(auth.user, auth.password))
    if isinstance(auth, BearerAuth):
        return StaticAuthenticator(f"Bearer {auth.token}")
    if isinstance(auth, OAuth2ClientCredentials):
        if auth.client_auth not in ("basic", "post"):
            raise ConfigurationError(
                f"OAuth2 client_auth must be 'basic' or 'post', not {auth.client_auth!r}"
            )
        return OAuth2Authenticator(auth, http)
    raise ConfigurationError(f"unknown SCIM auth setting: {type(auth).__name__}")
