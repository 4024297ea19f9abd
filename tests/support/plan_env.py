"""Shared helpers for the plan, dry-run and resync tests (no tests of its own).

`Env` is one pipe from the real slapd fixture to the real scim2-server fixture: sample data
loaded with slapadd, a sync.yaml in a private folder (the LDAP password as a `${file:...}`
secret), the CLI run in-process, and a recording transport that sees every HTTP request the
toolkit sends to the SCIM server.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import ldap3

from toolkit.cli import main
from toolkit.config import load_config
from toolkit.config.dn import normalize_dn
from toolkit.lab import sampledata
from toolkit.lab.syncyaml import write_pipe_config
from toolkit.mapping import default_mapping_text
from toolkit.plan.model import SITUATIONS

PIPE = "ldap-to-scim"
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TOTAL_KEYS = list(SITUATIONS)


class Recorder(httpx.BaseTransport):
    """A transport that forwards to the real server and keeps (method, path, body) of each."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        body = json.loads(content) if content else None
        path = request.url.path.split("/v2", 1)[1]
        with self._lock:
            self.requests.append((request.method, path, body))
        return self._inner.handle_request(request)

    def writes(self) -> list[tuple[str, str, Any]]:
        """Every write sent, the operations of a /Bulk request each as its own."""
        out = []
        for method, path, body in self.requests:
            if method == "POST" and path == "/Bulk":
                out += [(op["method"], op["path"], op.get("data")) for op in body["Operations"]]
            elif method != "GET":
                out.append((method, path, body))
        return out

    def bulk_requests(self) -> int:
        return sum(1 for method, path, _ in self.requests if (method, path) == ("POST", "/Bulk"))

    def close(self) -> None:
        self._inner.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(config_path: Path, *args: str) -> Result:
    """`scimsync --config CONFIG ARGS`, in-process, its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config_path), *args])
    return Result(code, out.getvalue(), err.getvalue())


@dataclass
class Env:
    """One pipe between the slapd and scim_server fixtures, with sample data loaded."""

    slapd: Any
    scim: Any
    folder: Path
    users: int
    groups: int
    entries: list[dict[str, list[str]]] = field(default_factory=list)
    _ldap: ldap3.Connection | None = None
    # the source as the config names it (a subclass for another directory sets its own)
    ldap_type: ClassVar[str] = "openldap"
    change_detector: ClassVar[str] = "accesslog"

    # --- config and CLI -------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.folder / "sync.yaml"

    def write_config(self, scim_props: dict[str, Any] | None = None, **pipe_props: Any) -> Path:
        """The pipe's config; `scim_props` are further properties of the SCIM server."""
        write_pipe_config(
            self.config_path,
            self.slapd,
            self.scim.url,
            prefix="test",
            ldap_type=self.ldap_type,
            pipe=PIPE,
            change_detector=self.change_detector,
            pipe_props={k.replace("_", "-"): v for k, v in pipe_props.items()},
            scim_props={"http-authorization-method": "none", **(scim_props or {})},
        )
        return self.config_path

    def config(self):
        return load_config(self.config_path)

    def cli(self, *args: str) -> Result:
        return run_cli(self.config_path, *args)

    def cli_json(self, *args: str) -> dict[str, Any]:
        result = self.cli(*args, "--json")
        assert result.code == 0, result.err
        return result.json()

    # --- LDAP -----------------------------------------------------------------------------

    @property
    def ldap(self) -> ldap3.Connection:
        if self._ldap is None or self._ldap.closed:
            self._ldap = self.slapd.connect()
        return self._ldap

    def people(self) -> list[dict[str, list[str]]]:
        return [e for e in self.entries if "inetOrgPerson" in e["objectClass"]]

    def sample_groups(self) -> list[dict[str, list[str]]]:
        return [e for e in self.entries if "groupOfNames" in e["objectClass"]]

    def member_dns(self) -> set[str]:
        return {normalize_dn(m) for g in self.sample_groups() for m in g["member"]}

    def manager_dns(self) -> set[str]:
        return {normalize_dn(p["manager"][0]) for p in self.people() if "manager" in p}

    def loner(self, skip: int = 0) -> dict[str, list[str]]:
        """A user that is in no group and manages nobody (deleting it touches nothing else)."""
        busy = self.member_dns() | self.manager_dns()
        free = [p for p in self.people() if normalize_dn(p["dn"][0]) not in busy]
        return free[skip]

    def entry_uuid(self, dn: str) -> str:
        self.ldap.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        return str(self.ldap.entries[0].entryUUID.value).lower()

    def accesslog_count(self) -> int:
        """Writes slapd logged so far (logops writes): a dry run must add none."""
        self.ldap.search("cn=accesslog", "(objectClass=auditWriteObject)", attributes=["1.1"])
        return len(self.ldap.entries)

    # --- SCIM -----------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.scim.url, timeout=30)

    def all(self, endpoint: str) -> list[dict[str, Any]]:
        return scim_list(self.scim.url, endpoint)

    def scim_users(self) -> dict[str, dict[str, Any]]:
        """userName -> User."""
        return {u["userName"]: u for u in self.all("/Users")}

    def scim_groups(self) -> dict[str, dict[str, Any]]:
        """displayName -> Group."""
        return {g["displayName"]: g for g in self.all("/Groups")}

    def post_user(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], **body}
        with self.http() as client:
            response = client.post("/Users", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def snapshot(self) -> dict[str, Any]:
        """Everything on the SCIM server, ids and versions included."""
        return {"users": self.all("/Users"), "groups": self.all("/Groups")}

    def close(self) -> None:
        if self._ldap is not None:
            self._ldap.unbind()


def scim_list(base_url: str, endpoint: str) -> list[dict[str, Any]]:
    """Every resource of an endpoint of the SCIM server, read page by page over plain HTTP."""
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        start = 1
        while True:
            response = client.get(endpoint, params={"startIndex": start, "count": 500})
            response.raise_for_status()
            resources = response.json().get("Resources", [])
            out.extend(resources)
            if len(resources) < 500:
                return out
            start += len(resources)


def uid_of(entry: dict[str, list[str]]) -> str:
    return entry["uid"][0]


def dn_of(entry: dict[str, list[str]]) -> str:
    return entry["dn"][0]


def make_env(
    slapd: Any, scim: Any, folder: Path, users: int = 60, groups: int = 6, **pipe_props: Any
) -> Env:
    """Load sample data into slapd (offline, slapadd), write the pipe's config."""
    folder.mkdir(parents=True, exist_ok=True)
    ldif = sampledata.write_ldif(folder / "sample.ldif", users, groups, suffix=SUFFIX)
    slapd.load_ldif(ldif)
    env = Env(slapd, scim, folder, users, groups)
    env.entries = list(sampledata.generate(users, groups, suffix=SUFFIX))
    env.write_config(**pipe_props)
    return env


@contextlib.contextmanager
def recording(monkeypatch: Any) -> Iterator[Recorder]:
    """Every request the toolkit's sync code sends to SCIM, through a recording transport."""
    import toolkit.sync.runtime as runtime
    from toolkit.scim.client import ScimClient

    recorder = Recorder()

    def client(endpoint: Any) -> ScimClient:
        return ScimClient(endpoint, transport=recorder)

    with monkeypatch.context() as patch:
        patch.setattr(runtime, "ScimClient", client)
        yield recorder
    recorder.close()


def assert_summary_shape(data: dict[str, Any], resync: bool = False) -> None:
    """The exact `--json` shape of dry-run (and resync: plus applied and failed)."""
    expected = {"pipe", "totals", "classes", "refused", "warnings", "reads"}
    expected |= {"applied", "failed"} if resync else set()
    assert set(data) == expected, sorted(data)
    assert data["pipe"] == PIPE
    assert list(data["totals"]) == TOTAL_KEYS
    assert set(data["classes"]) == {"users", "groups"}
    for name, counts in data["classes"].items():
        assert list(counts) == TOTAL_KEYS, name
    for key in TOTAL_KEYS:
        assert data["totals"][key] == sum(c[key] for c in data["classes"].values()), key
    assert isinstance(data["refused"], list) and isinstance(data["warnings"], list)
    assert {(r["side"], r["mode"] in ("full", "incremental")) for r in data["reads"]} == {
        ("ldap", True),
        ("scim", True),
    }
    if resync:
        assert isinstance(data["applied"], int) and isinstance(data["failed"], int)


def totals(**nonzero: int) -> dict[str, int]:
    """A totals dict with every situation, zero unless given (out_of_scope -> out-of-scope)."""
    out = dict.fromkeys(TOTAL_KEYS, 0)
    for key, value in nonzero.items():
        out[key.replace("_", "-")] = value
    return out


#: a core attribute scim2-server's User schema does not have, mapped from uid
BADGE = """
    <attribute name="badgeNumber" schema="urn:ietf:params:scim:schemas:core:2.0:User">
      <description>not in the server's schema</description>
      <simple dataType="string">
        <mapping ldapAttribute="employeeNumber"/>
      </simple>
    </attribute>
"""


def with_badge_mapping(env: Env) -> None:
    """The pipe maps employeeNumber also to badgeNumber, which the server's schema lacks."""
    text = default_mapping_text(SUFFIX)
    anchor = '    <attribute name="employeeNumber"'
    assert anchor in text
    (env.folder / "badge.xml").write_text(text.replace(anchor, BADGE + anchor, 1))
    config = env.config_path.read_text().replace(
        "    server: [test-scim]\n",
        "    server: [test-scim]\n    resource-mapping-file: badge.xml\n",
    )
    env.config_path.write_text(config)
