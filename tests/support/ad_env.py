"""Shared helpers for the Active Directory tests (no tests of its own).

`AdRt` is `Rt` (tests/support/realtime_env.py) on the `samba` fixture: a pipe from a real Samba
AD DC, read with DirSync, to the real scim2-server, with the built-in AD mapping and classes
(as create-sync-pipe-config --source-type active-directory writes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3

from tests.support.realtime_env import PIPE, Rt
from toolkit.config.pipeconfig import _classes
from toolkit.lab.samba import ENABLED, ad_sample, load_sample
from toolkit.lab.syncyaml import write_pipe_config
from toolkit.mapping import default_mapping_text

BASE = "DC=example,DC=test"
PEOPLE = f"OU=People,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
ELSEWHERE = f"OU=Elsewhere,{BASE}"  # out of every class's base DNs


def ad_classes() -> dict[str, dict[str, Any]]:
    """The classes create-sync-pipe-config writes for Active Directory."""
    return {k: dict(v) for k, v in _classes(BASE, active_directory=True).items()}


@dataclass
class AdRt(Rt):
    """One pipe from the `samba` fixture (DirSync, or `change_detector`) to the
    `scim_server` fixture."""

    change_detector: str | None = None  # None: auto (dirsync on an AD DC)

    @property
    def detector(self) -> str:
        return self.change_detector or "dirsync"

    def write_config(
        self, classes: dict[str, dict[str, Any]] | None = None, **pipe_props: Any
    ) -> Path:
        self.classes = classes or ad_classes()
        props = {"change-detection-polling-interval": "100 ms"}
        props.update({k.replace("_", "-"): v for k, v in pipe_props.items()})
        self.folder.mkdir(parents=True, exist_ok=True)
        mapping = self.folder / "scim-resources.xml"
        mapping.write_text(default_mapping_text(BASE, "active-directory"))
        write_pipe_config(
            self.config_path,
            self.server,
            self.scim_url or self.scim.url,
            prefix="ad",
            ldap_type="active-directory",
            pipe=PIPE,
            change_detector=self.change_detector,
            destination_props={"resource-mapping-file": str(mapping)},
            pipe_props=props,
            classes=self.classes,
        )
        return self.config_path

    def load(self, users: int, groups: int) -> None:
        self.entries = [
            {"dn": [dn], "objectClass": classes, **attrs}
            for dn, classes, attrs in ad_sample(users, groups)
        ]
        load_sample(self.ldap, users, groups)
        self.ldap.add(ELSEWHERE, ["top", "organizationalUnit"])

    def add_user(self, name: str, parent: str = PEOPLE, **attrs: Any) -> str:
        dn = f"CN={name},{parent}"
        self.ldap.add(
            dn,
            ["top", "person", "organizationalPerson", "user"],
            {
                "sAMAccountName": name,
                "givenName": name.title(),
                "sn": "Test",
                "userAccountControl": ENABLED,
                **attrs,
            },
        )
        return dn

    def guid(self, dn: str) -> str:
        found = self.server_source_entry(dn)
        return found["objectguid"][0]

    def server_source_entry(self, dn: str) -> dict[str, Any]:
        from toolkit.ldap.search import entry_from_raw

        self.ldap.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*", "objectGUID"])
        item = self.ldap.response[0]
        return entry_from_raw(item["dn"], item["raw_attributes"])

    def user_names(self) -> set[str]:
        return set(self.users())

    def members_of(self, group: str) -> set[str]:
        """userNames of the SCIM group `group`'s members."""
        names = {u["id"]: u["userName"] for u in self.all("/Users")}
        found = self.groups()[group]
        return {names.get(m["value"], "dangling:" + m["value"]) for m in found.get("members", [])}


def make_ad_rt(
    server: Any,
    scim: Any,
    folder: Path,
    users: int = 20,
    groups: int = 3,
    resync: bool = True,
    change_detector: str | None = None,
) -> AdRt:
    """Sample data loaded, the config written, the start point at the end, a resync."""
    rt = AdRt(server, scim, folder, "samba", change_detector=change_detector)
    rt.write_config()
    rt.load(users, groups)
    rt.set_startpoint("--end-of-changelog")
    if resync:
        rt.resync()
    return rt
