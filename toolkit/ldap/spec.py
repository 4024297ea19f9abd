"""Settings of the LDAP layer: plain dataclasses, independent of the configuration file format.

`toolkit.ldap.fromconfig` builds them from a loaded configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SECURITIES = ("none", "ssl", "starttls")
HOSTNAME_VERIFICATIONS = ("strict", "allow-all")
CHANGE_DETECTORS = ("auto", "changelog", "accesslog", "dirsync", "usnchanged")


@dataclass(frozen=True)
class LdapServerSpec:
    """One LDAP server: where it is, how to secure the connection, and who binds."""

    host: str
    port: int
    connection_security: str = "none"  # none | ssl | starttls
    bind_dn: str | None = None  # None: anonymous
    password: str | None = field(default=None, repr=False)
    trust_ca_file: Path | str | None = None  # None: the system's trusted CAs
    hostname_verification: str = "strict"  # strict | allow-all (the chain is always verified)
    connect_timeout: float = 5.0
    response_timeout: float = 30.0
    name: str | None = None  # the external server's name in the configuration

    def __post_init__(self) -> None:
        if self.connection_security not in SECURITIES:
            raise ValueError(
                f"connection_security must be one of {SECURITIES}, not {self.connection_security!r}"
            )
        if self.hostname_verification not in HOSTNAME_VERIFICATIONS:
            raise ValueError(
                f"hostname_verification must be one of {HOSTNAME_VERIFICATIONS}, not {self.hostname_verification!r}"
            )

    @property
    def url(self) -> str:
        scheme = "ldaps" if self.connection_security == "ssl" else "ldap"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """How messages name this server: `name (url)` or the URL."""
        return f"{self.name} ({self.url})" if self.name else self.url


@dataclass(frozen=True)
class SourceSpec:
    """An LDAP sync source: base DNs and servers in priority (failover) order."""

    base_dns: tuple[str, ...] | list[str]
    servers: tuple[LdapServerSpec, ...] | list[LdapServerSpec]
    page_size: int = 1000
    change_detector: str = "auto"  # auto | changelog | accesslog | dirsync | usnchanged
    ignore_changes_by_dn: tuple[str, ...] | list[str] = ()
    unique_id_attribute: str = "entryUUID"
    name: str | None = None
    read_connections: int = 1  # >1: a full read split into parts read at once (toolkit.ldap.split)

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("a sync source needs at least one server")
        if self.change_detector not in CHANGE_DETECTORS:
            raise ValueError(
                f"change_detector must be one of {CHANGE_DETECTORS}, not {self.change_detector!r}"
            )
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {self.page_size}")
        if self.read_connections < 1:
            raise ValueError(f"read_connections must be at least 1, not {self.read_connections}")
