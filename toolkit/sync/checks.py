"""Connection checks for a pipe: can we bind to its LDAP servers and talk to its SCIM server?

create-sync-pipe-config (command and widget) runs them before writing a config.
"""

from __future__ import annotations

from dataclasses import replace

from toolkit.config.model import Config, LdapServer, Scim2Server
from toolkit.errors import ScimsyncError


def check_connections(config: Config) -> list[str]:
    """Bind to each LDAP server of the pipe's source; list one page of Users on its SCIM server."""
    from toolkit.ldap.connection import close, connect
    from toolkit.ldap.fromconfig import server_spec
    from toolkit.scim.client import ScimClient
    from toolkit.scim.fromconfig import endpoint_of

    pipe = config.pipe()
    failures: list[str] = []
    for server in config.servers_of(config.source_of(pipe)):
        if isinstance(server, LdapServer):
            try:
                close(connect(server_spec(server)))
            except ScimsyncError as exc:
                failures.append(f"LDAP server {server.name}: {exc}")
    for server in config.servers_of(config.destination_of(pipe)):
        if isinstance(server, Scim2Server):
            try:  # one attempt: a wizard reports, it does not wait out retries
                with ScimClient(replace(endpoint_of(server), max_attempts=1)) as client:
                    client.search("User", count=0)
            except ScimsyncError as exc:
                failures.append(f"SCIM server {server.name}: {exc}")
    return failures
