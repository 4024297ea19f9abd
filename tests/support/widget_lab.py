"""A lab's servers reached directly by the widget tests: its LDAP as the admin, its SCIM users."""

from __future__ import annotations

from pathlib import Path

import ldap3

from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.scim.client import ScimClient
from toolkit.scim.filters import eq
from toolkit.scim.fromconfig import destination_endpoint


def ldap_connection(state: lab.LabState) -> ldap3.Connection:
    host, port = state.ldap_url.split("//", 1)[1].rsplit(":", 1)
    password = (Path(state.folder) / "secrets" / "ldap-password").read_text()
    return ldap3.Connection(
        ldap3.Server(host, port=int(port)),
        state.admin_dn,
        password,
        auto_bind=True,
        raise_exceptions=True,
    )


def set_title(state: lab.LabState, uid: str, title: str) -> None:
    conn = ldap_connection(state)
    conn.modify(f"uid={uid},ou=people,{state.suffix}", {"title": [(ldap3.MODIFY_REPLACE, [title])]})
    conn.unbind()


def scim_user(config_path: str, user_name: str) -> dict | None:
    config = load_config(config_path)
    with ScimClient(destination_endpoint(config, config.pipe())) as client:
        found = client.find("User", str(eq("userName", user_name)))
    return found[0] if found else None


def scim_all(config_path: str) -> dict[str, list[dict]]:
    """Every User and Group on the lab's SCIM server, versions included."""
    config = load_config(config_path)
    with ScimClient(destination_endpoint(config, config.pipe())) as client:
        return {kind: list(client.iter_resources(kind)) for kind in ("User", "Group")}
