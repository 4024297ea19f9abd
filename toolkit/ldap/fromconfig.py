"""Build the LDAP layer's settings and sources from a loaded configuration (toolkit.config)."""

from __future__ import annotations

from toolkit.config import Config, ConfigError, LdapServer, SyncSource
from toolkit.ldap.ldifsource import LdifSource
from toolkit.ldap.prepare import CheckResult, prepare_ldap_server
from toolkit.ldap.source import LdapSource
from toolkit.ldap.spec import LdapServerSpec, SourceSpec


def server_spec(server: LdapServer) -> LdapServerSpec:
    """An LdapServerSpec for a configured LDAP external server (its password resolved now)."""
    anonymous = server.authentication_method == "none" or not server.bind_dn
    return LdapServerSpec(
        host=server.server_host_name,
        port=server.server_port,
        connection_security=server.connection_security,
        bind_dn=None if anonymous else server.bind_dn,
        password=None if anonymous or server.password is None else server.password.resolve(),
        trust_ca_file=server.trust_ca_file,
        hostname_verification=server.hostname_verification_method,
        connect_timeout=server.connect_timeout,
        response_timeout=server.response_timeout,
        name=server.name,
    )


def _source(config: Config, source: SyncSource | str | None) -> SyncSource:
    if source is None:
        return config.source_of()
    if isinstance(source, SyncSource):
        return source
    try:
        return config.sync_sources[source]
    except KeyError:
        known = ", ".join(config.sync_sources) or "none"
        raise ConfigError(
            f"{config.path}: no sync source named {source!r} (configured: {known})"
        ) from None


def source_spec(config: Config, source: SyncSource | str | None = None) -> SourceSpec:
    """The SourceSpec of an `ldap` sync source (default: the source of the only pipe)."""
    src = _source(config, source)
    if src.type != "ldap":
        raise ConfigError(f"sync-sources.{src.name}: type {src.type} has no LDAP servers")
    servers = []
    for server in config.servers_of(src):
        if not isinstance(server, LdapServer):
            raise ConfigError(
                f"sync-sources.{src.name}.server: {server.name} is not an LDAP server"
            )
        servers.append(server_spec(server))
    return SourceSpec(
        base_dns=tuple(src.base_dn),
        servers=tuple(servers),
        page_size=src.page_size,
        read_connections=src.read_connections,
        change_detector=src.change_detector,
        ignore_changes_by_dn=tuple(src.ignore_changes_by_dn),
        unique_id_attribute=unique_id_attribute(config, src),
        name=src.name,
    )


def unique_id_attribute(config: Config, src: SyncSource) -> str:
    """The source's unique-id attribute: as configured, but objectGUID on Active Directory
    when left at the default entryUUID (which AD does not have)."""
    kinds = {s.type for s in config.servers_of(src) if isinstance(s, LdapServer)}
    if src.unique_id_attribute == "entryUUID" and kinds == {"active-directory"}:
        return "objectGUID"
    return src.unique_id_attribute


def open_source(config: Config, source: SyncSource | str | None = None) -> LdapSource | LdifSource:
    """The sync source to read from: an LdapSource, or an LdifSource for `type: ldif`."""
    src = _source(config, source)
    if src.type == "ldif":
        if src.ldif_file is None:
            raise ConfigError(f"sync-sources.{src.name}.ldif-file: required for type ldif")
        return LdifSource(src.ldif_file, src.base_dn)
    return LdapSource(source_spec(config, src))


def base_dns_of_server(config: Config, server_name: str) -> list[str]:
    """The base DNs of every LDAP sync source that reads from `server_name`, in config order."""
    found: list[str] = []
    for src in config.sync_sources.values():
        if src.type == "ldap" and server_name in src.server:
            found.extend(dn for dn in src.base_dn if dn not in found)
    return found


def change_detector_of_server(config: Config, server_name: str) -> str:
    """The change detector configured for the sources of `server_name` (auto if they differ)."""
    kinds = {
        s.change_detector
        for s in config.sync_sources.values()
        if s.type == "ldap" and server_name in s.server
    }
    return kinds.pop() if len(kinds) == 1 else "auto"


def prepare_server(
    config: Config,
    server_name: str,
    *,
    admin_dn: str | None = None,
    admin_password: str | None = None,
    create_sync_user: bool = False,
) -> list[CheckResult]:
    """prepare-endpoint-server checks for the configured LDAP server `server_name`, against the
    base DNs and change detector of the sync sources that use it."""
    server = config.external_servers.get(server_name)
    if server is None:
        known = ", ".join(config.external_servers) or "none"
        raise ConfigError(
            f"{config.path}: no external server named {server_name!r} (configured: {known})"
        )
    if not isinstance(server, LdapServer):
        raise ConfigError(f"external-servers.{server_name}: not an LDAP server")
    base_dns = base_dns_of_server(config, server_name)
    sources = [
        s for s in config.sync_sources.values() if s.type == "ldap" and server_name in s.server
    ]
    unique_id = unique_id_attribute(config, sources[0]) if sources else "entryUUID"
    results = prepare_ldap_server(
        server_spec(server),
        base_dns,
        change_detector=change_detector_of_server(config, server_name),
        admin_dn=admin_dn,
        admin_password=admin_password,
        create_sync_user=create_sync_user,
        unique_id_attribute=unique_id,
    )
    if not base_dns:
        results.append(
            CheckResult(
                "base DNs",
                False,
                f"no ldap sync source reads from {server_name}, so no base DN was checked",
                f"list {server_name} in a sync source's server property",
            )
        )
    return results
