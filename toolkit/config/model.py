"""The typed configuration: external servers, sync sources, sync destinations, sync pipes and
their sync classes, with PingDataSync's property names (dashes become underscores here).

Instances are built by `toolkit.config.load_config`, which validates everything first, so a
`Config` is always complete and consistent. Paths are absolute; secrets are `SecretRef`s that
are only resolved when a connection needs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from toolkit.config.durations import format_duration
from toolkit.config.private import STATE_DIR_NAME
from toolkit.config.problems import ConfigError
from toolkit.config.properties import DeleteLimit, props_for
from toolkit.config.secrets import SecretRef


@dataclass(frozen=True)
class LdapServer:
    name: str
    type: str
    server_host_name: str
    server_port: int
    connection_security: str  # none | ssl | starttls
    authentication_method: str  # none | simple
    bind_dn: str | None
    password: SecretRef | None
    trust_ca_file: Path | None
    hostname_verification_method: str  # strict | allow-all
    connect_timeout: float  # seconds
    response_timeout: float  # seconds

    @property
    def url(self) -> str:
        scheme = "ldaps" if self.connection_security == "ssl" else "ldap"
        return f"{scheme}://{self.server_host_name}:{self.server_port}"


@dataclass(frozen=True)
class Scim2Server:
    name: str
    type: str
    scim_service_url: str
    http_authorization_method: str  # none | basic | bearer | oauth2
    user_name: str | None
    password: SecretRef | None
    oauth_token: SecretRef | None
    oauth_server_token_endpoint_url: str | None
    oauth_client_id: str | None
    oauth_client_secret: SecretRef | None
    trust_ca_file: Path | None
    hostname_verification_method: str
    connect_timeout: float
    response_timeout: float
    page_size: int | None = None  # SCIM list reads; None: chosen per read by the client


ExternalServer = LdapServer | Scim2Server


@dataclass(frozen=True)
class SyncSource:
    name: str
    type: str  # ldap | ldif
    base_dn: tuple[str, ...]
    server: tuple[str, ...] = ()  # external server names, failover order (ldap)
    change_detector: str = "auto"  # auto | changelog | accesslog (ldap)
    ignore_changes_by_dn: tuple[str, ...] = ()
    page_size: int = 1000
    read_connections: int = 1  # ldap: a full read split across this many connections
    unique_id_attribute: str = "entryUUID"
    ldif_file: Path | None = None  # ldif


@dataclass(frozen=True)
class SyncDestination:
    name: str
    type: str  # scim2
    server: tuple[str, ...]
    resource_mapping_file: Path | None  # None: the built-in default mapping
    update_method: str  # patch | put


@dataclass(frozen=True)
class SyncClass:
    name: str
    evaluation_order_index: int
    include_base_dn: tuple[str, ...]
    include_filter: tuple[str, ...]
    synchronize_creates: bool
    synchronize_modifies: bool
    synchronize_deletes: bool
    # ordered fallback lists: each item is one list of attributes that must all match
    destination_correlation_attributes: tuple[tuple[str, ...], ...]
    resource: str | None

    @property
    def is_exclusion(self) -> bool:
        """A class that synchronizes nothing (like Ping's DEFAULT class at 99999)."""
        return not (
            self.synchronize_creates or self.synchronize_modifies or self.synchronize_deletes
        )


@dataclass(frozen=True, eq=True)
class SyncPipe:
    name: str
    sync_source: str
    sync_destination: str
    started: bool
    change_detection_polling_interval: float
    num_worker_threads: int
    max_rate_per_second: int  # 0 = unlimited
    max_operation_attempts: int
    max_failed_op_background_retries: int
    failed_op_background_retry_delay: float
    max_deletes: DeleteLimit
    delete_guard_window: float  # realtime's max-deletes counts the deletes of this window
    full_read_interval: (
        float  # seconds between full reads of dry-run and resync (toolkit.sync.reads)
    )
    delete_policy: str  # delete | deactivate
    member_chunk_size: int
    sync_classes: dict[str, SyncClass] = field(default_factory=dict, hash=False)

    def classes_in_order(self) -> list[SyncClass]:
        """Sync classes by ascending evaluation-order-index: the first match wins."""
        return sorted(self.sync_classes.values(), key=lambda c: c.evaluation_order_index)


@dataclass
class Config:
    """A loaded, valid configuration and the YAML document it came from."""

    path: Path
    external_servers: dict[str, ExternalServer]
    sync_sources: dict[str, SyncSource]
    sync_destinations: dict[str, SyncDestination]
    sync_pipes: dict[str, SyncPipe]
    document: Any = field(default=None, repr=False, compare=False)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to this folder."""
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        """`.scimsync/` beside the config file: state.db, logs, failed DNs."""
        return self.base_dir / STATE_DIR_NAME

    def pipe(self, name: str | None = None) -> SyncPipe:
        """The named pipe, or the only one when `name` is None."""
        if name is None:
            if len(self.sync_pipes) == 1:
                return next(iter(self.sync_pipes.values()))
            if not self.sync_pipes:
                raise ConfigError(f"{self.path}: no sync pipe is configured")
            names = ", ".join(self.sync_pipes)
            raise ConfigError(
                f"{self.path}: several sync pipes ({names}): choose one with --pipe-name"
            )
        try:
            return self.sync_pipes[name]
        except KeyError:
            known = ", ".join(self.sync_pipes) or "none"
            raise ConfigError(
                f"{self.path}: no sync pipe named {name!r} (configured: {known})"
            ) from None

    def _as_pipe(self, pipe: SyncPipe | str | None) -> SyncPipe:
        return pipe if isinstance(pipe, SyncPipe) else self.pipe(pipe)

    def source_of(self, pipe: SyncPipe | str | None = None) -> SyncSource:
        return self.sync_sources[self._as_pipe(pipe).sync_source]

    def destination_of(self, pipe: SyncPipe | str | None = None) -> SyncDestination:
        return self.sync_destinations[self._as_pipe(pipe).sync_destination]

    def servers_of(self, obj: SyncSource | SyncDestination) -> list[ExternalServer]:
        """The external servers of a source or destination, in priority (failover) order."""
        return [self.external_servers[name] for name in obj.server]

    def mapping_file_of(self, destination: SyncDestination | str) -> Path | None:
        """The destination's scim-resources.xml, or None for the built-in default mapping."""
        if isinstance(destination, str):
            destination = self.sync_destinations[destination]
        return destination.resource_mapping_file

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration (defaults filled in) as plain data with Ping's names.

        Secrets appear as their references, durations as "5 s", paths relative to the config
        folder when they lie inside it. Loading this again gives an equal Config.
        """
        return {
            "external-servers": {n: self._plain(s) for n, s in self.external_servers.items()},
            "sync-sources": {n: self._plain(s) for n, s in self.sync_sources.items()},
            "sync-destinations": {n: self._plain(d) for n, d in self.sync_destinations.items()},
            "sync-pipes": {n: self._plain(p) for n, p in self.sync_pipes.items()},
        }

    def _plain(self, obj: object) -> dict[str, Any]:
        kind = {
            LdapServer: "external-server",
            Scim2Server: "external-server",
            SyncSource: "sync-source",
            SyncDestination: "sync-destination",
            SyncPipe: "sync-pipe",
            SyncClass: "sync-class",
        }[type(obj)]
        props = {p.attr: p for p in props_for(kind, getattr(obj, "type", None))}
        out: dict[str, Any] = {}
        for f in fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if f.name == "name" or (f.name not in props and f.name != "sync_classes"):
                continue
            if f.name == "sync_classes":
                out["sync-classes"] = {n: self._plain(c) for n, c in value.items()}
                continue
            prop = props[f.name]
            if value is None:
                continue
            out[prop.name] = self._plain_value(prop.kind, value)
        return out

    def _plain_value(self, kind: str, value: Any) -> Any:
        if kind == "correlation":
            return [",".join(names) for names in value]
        if isinstance(value, tuple):
            return [self._plain_value(kind, v) for v in value]
        if kind == "duration":
            return format_duration(value)
        if isinstance(value, SecretRef):
            return value.reference
        if isinstance(value, DeleteLimit):
            return str(value) if value.percent else int(value.amount)
        if isinstance(value, Path):
            return self._relative(value)
        return value

    def _relative(self, path: Path) -> str:
        try:
            return (
                os.path.relpath(path, self.base_dir)
                if path.is_relative_to(self.base_dir)
                else str(path)
            )
        except ValueError:
            return str(path)
