"""Explicit settings of one SCIM endpoint; the config layer builds them (`from_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(frozen=True)
class NoAuth:
    """No Authorization header."""


@dataclass(frozen=True, repr=False)
class BasicAuth:
    """HTTP Basic authentication."""

    user: str
    password: str

    def __repr__(self) -> str:
        return f"BasicAuth(user={self.user!r}, password={_masked(self.password)})"


@dataclass(frozen=True, repr=False)
class BearerAuth:
    """A static OAuth bearer token."""

    token: str

    def __repr__(self) -> str:
        return f"BearerAuth(token={_masked(self.token)})"


@dataclass(frozen=True, repr=False)
class OAuth2ClientCredentials:
    """OAuth2 client-credentials grant (RFC 6749 §4.4); the token is cached until it expires.

    `client_auth` is how the client authenticates to the token endpoint: "basic"
    (client_secret_basic, the RFC's default) or "post" (client_secret_post).
    """

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    client_auth: str = "basic"

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"client_secret={_masked(self.client_secret)}, scope={self.scope!r}, "
            f"client_auth={self.client_auth!r})"
        )


Auth = NoAuth | BasicAuth | BearerAuth | OAuth2ClientCredentials


@dataclass(frozen=True)
class ScimEndpoint:
    """Everything the client needs to talk to one SCIM 2.0 service provider.

    `verify` is True (system trust), False (no verification) or a CA bundle path;
    `check_hostname=False` is hostname-verification-method allow-all. `max_rate_per_second`
    0 means unlimited. `page_size` 0 chooses per read (see `ScimClient.page_size_for`). `overrides` patch the discovered capabilities for servers whose
    discovery is missing or wrong, e.g. {"patch": True, "bulk": False, "etag": True,
    "cursor": False, "resource_types": {"User": "/Users"}, "max_page_size": 100}.
    """

    url: str
    auth: Auth = field(default_factory=NoAuth)
    verify: bool | str = True
    check_hostname: bool = True
    connect_timeout: float = 5.0
    response_timeout: float = 10.0
    max_rate_per_second: float = 0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After longer than this is not waited for in-process: the error carries it.
    max_retry_after: float = 120.0
    http2: bool = True
    max_connections: int = 20
    page_size: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    user_agent: str = "scimsync"

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")
