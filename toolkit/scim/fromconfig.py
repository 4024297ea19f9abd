"""ScimEndpoint from a loaded configuration: the destination's first server, secrets resolved."""

from __future__ import annotations

import re

from toolkit.config.model import Config, Scim2Server, SyncDestination, SyncPipe
from toolkit.errors import FatalError
from toolkit.scim.endpoint import (
    Auth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
    ScimEndpoint,
)

# RFC 6750 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _secret(value, what: str) -> str:
    if value is None:
        raise FatalError(f"{what} is not set")
    return value.resolve() if hasattr(value, "resolve") else str(value)


def auth_of(server: Scim2Server) -> Auth:
    where = f"external-servers.{server.name}"
    method = server.http_authorization_method
    if method == "basic":
        return BasicAuth(server.user_name or "", _secret(server.password, f"{where}.password"))
    if method == "bearer":
        token = _secret(server.oauth_token, f"{where}.oauth-token")
        if not _B64TOKEN.fullmatch(token):  # it could not even be sent in a header
            raise FatalError(
                f"{where}.oauth-token: the token in {server.oauth_token} is not a bearer token "
                "(RFC 6750: ASCII letters, digits and -._~+/ followed by any =)"
            )
        return BearerAuth(token)
    if method == "oauth2":
        return OAuth2ClientCredentials(
            token_url=server.oauth_server_token_endpoint_url or "",
            client_id=server.oauth_client_id or "",
            client_secret=_secret(server.oauth_client_secret, f"{where}.oauth-client-secret"),
        )
    return NoAuth()


def endpoint_of(server: Scim2Server, pipe: SyncPipe | None = None) -> ScimEndpoint:
    verify: bool | str = str(server.trust_ca_file) if server.trust_ca_file else True
    return ScimEndpoint(
        url=server.scim_service_url,
        auth=auth_of(server),
        verify=verify,
        check_hostname=server.hostname_verification_method != "allow-all",
        connect_timeout=server.connect_timeout,
        response_timeout=server.response_timeout,
        max_rate_per_second=pipe.max_rate_per_second if pipe else 0,
        max_attempts=pipe.max_operation_attempts if pipe else 5,
        page_size=server.page_size or 0,
    )


def destination_endpoint(
    config: Config, pipe: SyncPipe, destination: SyncDestination | None = None
) -> ScimEndpoint:
    """The endpoint of the pipe's destination: its first server (SCIM has no failover list yet)."""
    destination = destination or config.destination_of(pipe)
    servers = config.servers_of(destination)
    server = servers[0]
    if not isinstance(server, Scim2Server):
        raise FatalError(
            f"sync-destinations.{destination.name}: server {server.name} is not a scim2 server"
        )
    return endpoint_of(server, pipe)
