"""The SCIM client's errors: one tree, each error in one of the three kinds of toolkit.errors.

Every error carries the request that failed (`.request`, secrets redacted) and, when the
server answered, its response (`.response`), after scim2-client's errors. The kind decides
what the sync engine does: a fatal error stops the run, a retriable one is tried again
later, a skippable one fails one object only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import FatalError, RetriableError, ScimsyncError, SkippableError

REDACTED = "[redacted]"
# Headers whose values are credentials; never carried, logged or printed.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# Body keys whose values are credentials (SCIM `password`, OAuth2 `client_secret`...).
SECRET_KEYS = frozenset(
    {"password", "client_secret", "access_token", "refresh_token", "token", "secret"}
)
_BODY_TEXT_LIMIT = 2000


def redact_headers(headers: Any) -> dict[str, str]:
    """A plain dict of headers with every credential replaced by [redacted]."""
    items = headers.items() if hasattr(headers, "items") else headers
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in items}


def redact_body(body: Any) -> Any:
    """A copy of a JSON body with the values of secret keys replaced by [redacted]."""
    if isinstance(body, dict):
        return {
            k: (REDACTED if k.lower() in SECRET_KEYS else redact_body(v)) for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    return body


@dataclass(frozen=True)
class RequestInfo:
    """What was sent: method, URL, headers (credentials redacted) and body (secrets redacted)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class ResponseInfo:
    """What came back: status, headers, body (JSON or text) and the SCIM error fields."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    scim_type: str | None = None
    detail: str | None = None


class ScimError(ScimsyncError):
    """Base of the SCIM client's errors; concrete errors also derive from one kind."""

    kind = "scim"

    def __init__(
        self,
        message: str,
        request: RequestInfo | None = None,
        response: ResponseInfo | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response
        self.retry_after = retry_after

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def scim_type(self) -> str | None:
        return self.response.scim_type if self.response else None

    @property
    def detail(self) -> str | None:
        return self.response.detail if self.response else None


# --- fatal: the run cannot go on ----------------------------------------------------------


class AuthenticationError(ScimError, FatalError):
    """401 or 403 (after one token refresh), or the OAuth2 token endpoint refused us."""

    kind = "fatal"


class ConfigurationError(ScimError, FatalError):
    """The endpoint is unusable as configured: wrong base URL, TLS failure, unsupported feature."""

    kind = "fatal"


class Unsupported(ConfigurationError):
    """The server does not implement what we asked (501, 405), e.g. PATCH or Bulk."""


# --- retriable: may succeed later ---------------------------------------------------------


class TransportError(ScimError, RetriableError):
    """No usable answer: connect error, timeout, connection reset (after the retries)."""

    kind = "retriable"


class ResponseTimeout(TransportError):
    """No answer within response-timeout (an httpx read timeout), still after the retries."""


class ServerBusy(ScimError, RetriableError):
    """429 Too Many Requests, still after the retries; `.retry_after` says when to come back."""

    kind = "retriable"


class Unavailable(ScimError, RetriableError):
    """503 (or 502/504), still after the retries."""

    kind = "retriable"


class ServerError(ScimError, RetriableError):
    """Another 5xx (500 among them): a server fault that may pass, still after the retries."""

    kind = "retriable"


# --- skippable: fails one object only -----------------------------------------------------


class NotFound(ScimError, SkippableError):
    """404 on one resource: it does not exist (any more)."""

    kind = "skippable"


class Conflict(ScimError, SkippableError):
    """409: usually scimType uniqueness, the resource already exists (look it up and adopt it)."""

    kind = "skippable"


class PreconditionFailed(ScimError, SkippableError):
    """412: the If-Match ETag is stale; someone else changed the resource since we read it."""

    kind = "skippable"


class InvalidValue(ScimError, SkippableError):
    """400 (and other 4xx refusals of one request): the server rejects this object's data."""

    kind = "skippable"


class InvalidFilter(InvalidValue):
    """400 scimType invalidFilter or tooMany: the server refuses the search filter."""


class InvalidResponse(ScimError, SkippableError):
    """The server answered something that is not the SCIM JSON we expected."""

    kind = "skippable"
