"""Checks of a pipe's servers: the connection test of create-sync-pipe-config (command and
widget), and prepare-endpoint-server for LDAP sources and SCIM targets alike.
"""

from __future__ import annotations

from dataclasses import replace

from toolkit.checks import CheckResult
from toolkit.config.model import Config, LdapServer, Scim2Server
from toolkit.errors import ScimsyncError


def check_connections(config: Config) -> list[str]:
    """Bind to each LDAP server of the pipe's source; list one page of Users on its SCIM server."""
    return check_ldap_connections(config) + check_scim_connections(config)


def check_ldap_connections(config: Config) -> list[str]:
    """Bind to each LDAP server of the pipe's source; what failed, one line per server."""
    from toolkit.ldap.connection import close, connect
    from toolkit.ldap.fromconfig import server_spec

    failures: list[str] = []
    for server in config.servers_of(config.source_of(config.pipe())):
        if isinstance(server, LdapServer):
            try:
                close(connect(server_spec(server)))
            except ScimsyncError as exc:
                failures.append(f"LDAP server {server.name}: {exc}")
    return failures


def check_scim_connections(config: Config) -> list[str]:
    """Ask each SCIM server of the pipe's destination for Users (count 0), once, no retries."""
    from toolkit.scim.client import ScimClient
    from toolkit.scim.fromconfig import endpoint_of

    failures: list[str] = []
    for server in config.servers_of(config.destination_of(config.pipe())):
        if isinstance(server, Scim2Server):
            try:  # one attempt: a wizard reports, it does not wait out retries
                with ScimClient(replace(endpoint_of(server), max_attempts=1)) as client:
                    client.search("User", count=0)
            except ScimsyncError as exc:
                failures.append(f"SCIM server {server.name}: {exc}")
    return failures


def prepare_endpoint(
    config: Config,
    server_name: str,
    *,
    admin_dn: str | None = None,
    admin_password: str | None = None,
    create_sync_user: bool = False,
) -> list[CheckResult]:
    """prepare-endpoint-server: the LDAP checks (and sync user), or the SCIM target's checks.

    For an LDAP server, also: its schema defines every LDAP attribute the mappings of the
    pipes reading from it name. For a SCIM server: its discovery endpoints answer, and every
    attribute the mappings of the destinations using it write exists and is writable.
    """
    from toolkit.ldap.fromconfig import prepare_server

    server = config.external_servers.get(server_name)
    if not isinstance(server, Scim2Server):
        results = prepare_server(
            config,
            server_name,
            admin_dn=admin_dn,
            admin_password=admin_password,
            create_sync_user=create_sync_user,
        )
        if any(r.name == "sync user binds" and r.ok for r in results):
            from toolkit.sync.mappingcheck import schema_check

            mapped = schema_check(config, server_name)
            if mapped is not None:
                results.append(mapped)
        return results
    from toolkit.mapping import load_mapping
    from toolkit.scim.checks import check_scim_server
    from toolkit.scim.client import ScimClient
    from toolkit.scim.fromconfig import endpoint_of

    written: dict[str, list[str]] = {}
    update_method = None
    for destination in config.sync_destinations.values():
        if server_name not in destination.server:
            continue
        update_method = destination.update_method
        for resource in load_mapping(config.mapping_file_of(destination)):
            paths = written.setdefault(resource.name, [])
            paths += [p for p in resource.written_attributes() if p not in paths]
    with ScimClient(replace(endpoint_of(server), max_attempts=1)) as client:
        return check_scim_server(client, written, update_method=update_method)
