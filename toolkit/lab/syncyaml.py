"""The sync.yaml of one LDAP-to-SCIM pipe on the lab's servers (lab, tests and benches).

`PipeYaml(...).render()` writes the text: one LDAP external server, one scim2 server, a
source, a destination and a pipe with Ping's three classes (or the ones given). The LDAP
password is always a secret reference (`${file:...}`), never the password.
`write_pipe_config(path, server, scim_url, ...)` writes both files for a lab server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from toolkit.config.document import dump_document, flow_list, new_document
from toolkit.config.private import open_private, private_dir

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


def _section(props: Props) -> CommentedMap:
    """Properties as the config writes them: lists inline (`base-dn: [dc=example,dc=com]`)."""
    out = CommentedMap()
    for key, value in props.items():
        out[key] = flow_list(list(value)) if isinstance(value, list | tuple) else value
    return out


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
        """The config's text, written through toolkit.config's document (as dsconfig and
        create-sync-pipe-config write theirs)."""
        ldap, scim, source = f"{self.prefix}-ldap", f"{self.prefix}-scim", f"{self.prefix}-source"
        detector = {"change-detector": self.change_detector} if self.change_detector else {}
        classes = self.classes if self.classes is not None else default_classes(self.suffix)
        doc = new_document()
        if self.header:
            doc.yaml_set_start_comment(self.header)
        doc["external-servers"][ldap] = _section(
            {
                "type": self.ldap_type,
                "server-host-name": self.host,
                "server-port": self.port,
                "connection-security": "none",
                "bind-dn": self.admin_dn,
                "password": self.password_ref,
            }
        )
        doc["external-servers"][scim] = _section(
            {"type": "scim2", "scim-service-url": self.scim_url, **self.scim_props}
        )
        doc["sync-sources"][source] = _section(
            {"type": "ldap", "base-dn": [self.suffix], "server": [ldap], **detector}
        )
        doc["sync-destinations"][scim] = _section(
            {"type": "scim2", "server": [scim], **self.destination_props}
        )
        pipe = _section({"sync-source": source, "sync-destination": scim, **self.pipe_props})
        pipe["sync-classes"] = CommentedMap(
            (name, _section(props)) for name, props in classes.items()
        )
        doc["sync-pipes"][self.pipe] = pipe
        return dump_document(doc)


def write_secret(path: Path, value: str) -> None:
    """A secret file only its owner can read (its folder too, when created here)."""
    private_dir(path.parent, tighten_existing=False)
    with open_private(path) as file:
        file.write(value)


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
