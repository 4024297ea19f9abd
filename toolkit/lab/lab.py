"""The embedded default: a private slapd (with accesslog) and a SCIM server on loopback.

With `source="ad"`, a private Samba AD DC (read through DirSync) instead of slapd, with the
same sample people and groups as AD user and group objects, and the built-in AD mapping.

`up()` starts both, loads deterministic sample data, and writes a ready-to-use config folder:
sync.yaml (secrets referenced as files, never inline), the secret files (mode 0600) and
lab.json, which records what runs where so that `down()` and `status()` find it again.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from toolkit.errors import FatalError
from toolkit.lab import samba, sampledata
from toolkit.lab.process import pid_alive, port_open, stop_pid
from toolkit.lab.samba import SambaDC
from toolkit.lab.scimserver import ScimServer
from toolkit.lab.slapd import Slapd
from toolkit.lab.syncyaml import write_pipe_config, write_secret

DEFAULT_DIR = Path("scimsync-lab")
STATE_FILE = "lab.json"


class LabError(FatalError):
    """The lab cannot do what was asked (already running, not running, ...)."""


@dataclass
class LabState:
    folder: str
    config: str
    ldap_url: str
    ldap_pid: int
    ldap_workdir: str
    suffix: str
    admin_dn: str
    scim_url: str
    scim_pid: int
    users: int
    groups: int
    seed: int
    source: str = "ldap"  # ldap (slapd) | ad (Samba AD DC)

    def save(self, folder: Path) -> None:
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> LabState:
        path = folder / STATE_FILE
        if not path.exists():
            raise LabError(
                f"no lab in {folder} (no {STATE_FILE}); start one with `scimsync lab up`"
            )
        return cls(**json.loads(path.read_text()))


SOURCES = ("ldap", "ad")


def up(
    folder: Path = DEFAULT_DIR,
    users: int = 2000,
    groups: int = 50,
    seed: int = 0,
    source: str = "ldap",
) -> LabState:
    """Start the lab in `folder` with sample data; refuse if one already runs there.
    `source`: ldap (a private slapd) or ad (a private Samba AD DC)."""
    if source not in SOURCES:
        raise LabError(f"--source {source}: expected one of {', '.join(SOURCES)}")
    folder = Path(folder).resolve()
    if (folder / STATE_FILE).exists():
        state = LabState.load(folder)
        if pid_alive(state.ldap_pid) or pid_alive(state.scim_pid):
            raise LabError(f"a lab already runs in {folder}; `scimsync lab down` first")
    shutil.rmtree(folder / "servers", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    ldap: Slapd | SambaDC
    if source == "ad":
        ldap = SambaDC(folder / "servers" / "samba").create().start()
        try:
            conn = ldap.connect()
            samba.load_sample(conn, users, groups, seed)
            conn.unbind()
        except Exception:
            ldap.stop()
            raise
    else:
        ldap = Slapd(folder / "servers" / "slapd").create()
        ldif = sampledata.write_ldif(
            folder / "servers" / "sample.ldif", users, groups, seed, ldap.suffix
        )
        ldap.load_ldif(ldif)
        ldap.start()
    try:
        scim = ScimServer(folder / "servers" / "scim", bearer_token=token).start()
    except Exception:
        ldap.stop()
        raise
    write_secret(folder / "secrets" / "scim-token", token)
    options = {
        "header": "Written by `scimsync lab up`: the embedded default pipe, LDAP (slapd) to "
        "SCIM 2.0.\nSecrets are files beside this one (mode 0600), referenced, never "
        "written inline."
    }
    if source == "ad":
        options = _ad_options(folder)
    config = write_pipe_config(
        folder / "sync.yaml",
        ldap,
        scim.url,
        prefix="lab",
        secret="secrets/ldap-password",
        scim_props={
            "http-authorization-method": "bearer",
            "oauth-token": "${file:secrets/scim-token}",
        },
        pipe_props={"change-detection-polling-interval": "500 ms"},
        **options,
    )
    state = LabState(
        folder=str(folder),
        config=str(config),
        ldap_url=ldap.url,
        ldap_pid=ldap.pid or 0,
        ldap_workdir=str(ldap.workdir),
        suffix=ldap.suffix,
        admin_dn=ldap.admin_dn,
        scim_url=scim.url,
        scim_pid=scim.pid or 0,
        users=users,
        groups=groups,
        seed=seed,
        source=source,
    )
    state.save(folder)
    return state


def _ad_options(folder: Path) -> dict:
    """The pipe on the AD lab: the built-in AD mapping (a copy beside sync.yaml), AD's classes,
    the server typed active-directory, and auto change detection (DirSync)."""
    from toolkit.config.pipeconfig import _classes
    from toolkit.mapping import default_mapping_text

    mapping = folder / "scim-resources.xml"
    mapping.write_text(default_mapping_text(samba.BASE_DN, "active-directory"), encoding="utf-8")
    return {
        "ldap_type": "active-directory",
        "change_detector": None,
        "destination_props": {"resource-mapping-file": "scim-resources.xml"},
        "classes": {k: dict(v) for k, v in _classes(samba.BASE_DN, active_directory=True).items()},
        "header": "Written by `scimsync lab up --source ad`: the embedded pipe, Active Directory "
        "(a private Samba AD DC, read with DirSync) to SCIM 2.0.\nSecrets are files beside "
        "this one (mode 0600), referenced, never written inline.",
    }


def down(folder: Path = DEFAULT_DIR) -> LabState:
    """Stop both servers by PID. The config folder stays for inspection."""
    folder = Path(folder).resolve()
    state = LabState.load(folder)
    for pid in (state.scim_pid, state.ldap_pid):
        stop_pid(pid)
    (folder / STATE_FILE).unlink()
    return state


@dataclass
class ServiceStatus:
    name: str
    url: str
    pid: int
    running: bool
    answering: bool


def status(folder: Path = DEFAULT_DIR) -> list[ServiceStatus]:
    """What runs where, and whether it answers."""
    state = LabState.load(Path(folder).resolve())
    out = []
    for name, url, pid in (
        ("ldap", state.ldap_url, state.ldap_pid),
        ("scim", state.scim_url, state.scim_pid),
    ):
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        out.append(ServiceStatus(name, url, pid, pid_alive(pid), port_open(host, int(port))))
    return out


def ldap_counts(state: LabState) -> dict[str, int]:
    """Entries per class of the lab's pipe, as the admin sees them."""
    import ldap3

    password = (Path(state.folder) / "secrets" / "ldap-password").read_text()
    host, port = state.ldap_url.split("//", 1)[1].rsplit(":", 1)
    conn = ldap3.Connection(
        ldap3.Server(host, port=int(port), get_info=ldap3.NONE),
        user=state.admin_dn,
        password=password,
        auto_bind=True,
        raise_exceptions=True,
    )
    counts = {}
    ad = state.source == "ad"
    for name, base, flt in (
        (
            "users",
            f"ou=people,{state.suffix}",
            "(&(objectClass=user)(!(objectClass=computer)))"
            if ad
            else "(objectClass=inetOrgPerson)",
        ),
        (
            "groups",
            f"ou=groups,{state.suffix}",
            f"(objectClass={'group' if ad else 'groupOfNames'})",
        ),
    ):
        entries = conn.extend.standard.paged_search(base, flt, attributes=["1.1"], paged_size=1000)
        counts[name] = sum(1 for e in entries if e["type"] == "searchResEntry")
    conn.unbind()
    return counts


def scim_service_provider_config(state: LabState) -> dict:
    token = (Path(state.folder) / "secrets" / "scim-token").read_text()
    response = httpx.get(
        f"{state.scim_url}/ServiceProviderConfig",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()
