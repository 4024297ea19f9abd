"""The sync.yaml of one LDAP-to-SCIM pipe on the lab's servers (lab, tests and benches).

`PipeYaml(...).render()` writes the text: one LDAP external server, one scim2 server, a
source, a destination and a pipe with Ping's three classes (or the ones given). The LDAP
password is always a secret reference (`${file:...}`), never the password.
`write_pipe_config(path, server, scim_url, ...)` writes both files for a lab server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Props = dict[str, Any]


def default_classes(suffix: str) -> dict[str, Props]:
    """Ping's example: users, groups, and a DEFAULT class that drops everything else."""
    return {
        "users": {
            "evaluation-order-index": 100,
            "include-base-dn": [f"ou=people,{suffix}"],
            "include-filter": ["(objectClass=inetOrgPerson)"],
            "destination-correlation-attributes": ["externalId", "userName"],
        },
        "groups": {
            "evaluation-order-index": 200,
            "include-base-dn": [f"ou=groups,{suffix}"],
            "include-filter": ["(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"],
            "destination-correlation-attributes": ["externalId", "displayName"],
        },
        "DEFAULT": {
            "evaluation-order-index": 99999,
            "synchronize-creates": False,
            "synchronize-modifies": False,
            "synchronize-deletes": False,
        },
    }


_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")


def yaml_value(value: Any) -> str:
    """A value as YAML: names plain, lists as flow lists, DNs and filters quoted (a DN in an
    unquoted flow list would be split at its commas)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(v if _PLAIN.fullmatch(v) else json.dumps(v) for v in value) + "]"
    if isinstance(value, str) and ("," in value or value[:1] in "[]{}&*!|>'\"%@`#"):
        return json.dumps(value)
    return str(value)


def _props(props: Props, indent: int) -> str:
    return "".join(f"{' ' * indent}{k}: {yaml_value(v)}\n" for k, v in props.items())


@dataclass
class PipeYaml:
    """Servers named `{prefix}-ldap` and `{prefix}-scim`, the source `{prefix}-source`."""

    prefix: str
    ldap_type: str  # openldap, 389-ds, ...
    host: str
    port: int
    admin_dn: str
    password_ref: str  # ${file:...} or ${env:...}
    scim_url: str
    suffix: str
    pipe: str = "ldap-to-scim"
    change_detector: str | None = "accesslog"
    scim_props: Props = field(default_factory=lambda: {"http-authorization-method": "none"})
    destination_props: Props = field(default_factory=dict)
    pipe_props: Props = field(default_factory=dict)
    classes: dict[str, Props] | None = None  # None: default_classes(suffix)
    header: str = ""  # comment lines at the top

    def render(self) -> str:
        ldap, scim, source = f"{self.prefix}-ldap", f"{self.prefix}-scim", f"{self.prefix}-source"
        detector = {"change-detector": self.change_detector} if self.change_detector else {}
        classes = self.classes if self.classes is not None else default_classes(self.suffix)
        header = "".join(f"# {line}\n" for line in self.header.splitlines())
        return (
            f"{header}external-servers:\n"
            f"  {ldap}:\n"
            + _props(
                {
                    "type": self.ldap_type,
                    "server-host-name": self.host,
                    "server-port": self.port,
                    "connection-security": "none",
                    "bind-dn": self.admin_dn,
                    "password": self.password_ref,
                },
                4,
            )
            + f"  {scim}:\n"
            + _props({"type": "scim2", "scim-service-url": self.scim_url, **self.scim_props}, 4)
            + f"sync-sources:\n  {source}:\n"
            + _props({"type": "ldap", "base-dn": [self.suffix], "server": [ldap]}, 4)
            + _props(detector, 4)
            + f"sync-destinations:\n  {scim}:\n"
            + _props({"type": "scim2", "server": [scim], **self.destination_props}, 4)
            + f"sync-pipes:\n  {self.pipe}:\n"
            + _props({"sync-source": source, "sync-destination": scim, **self.pipe_props}, 4)
            + "    sync-classes:\n"
            + "".join(f"      {name}:\n" + _props(props, 8) for name, props in classes.items())
        )


def write_secret(path: Path, value: str) -> None:
    """A secret file only its owner can read (its folder too, when created here)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value)


def write_pipe_config(
    path: Path,
    server: Any,
    scim_url: str,
    *,
    prefix: str,
    ldap_type: str = "openldap",
    secret: str = "ldap-password",
    **options: Any,
) -> Path:
    """The pipe config at `path` for a lab LDAP server (Slapd or DirSrv: host, port,
    admin_dn, admin_password, suffix), its password in `secret` beside it, referenced.
    `options` are further PipeYaml fields."""
    write_secret(path.parent / secret, server.admin_password)
    path.write_text(
        PipeYaml(
            prefix=prefix,
            ldap_type=ldap_type,
            host=server.host,
            port=server.port,
            admin_dn=server.admin_dn,
            password_ref=f"${{file:{secret}}}",
            scim_url=scim_url,
            suffix=server.suffix,
            **options,
        ).render()
    )
    return path
