"""Shared helpers for the realtime-sync tests (no tests of its own).

`Rt` is one pipe from a real directory (the `slapd` fixture with its access log, or the
`dirsrv` fixture with its retro changelog) to the real `scim_server` fixture: sample data
loaded, a sync.yaml in a private folder (the LDAP password as a `${file:...}` secret), the
CLI run in-process or as a subprocess, the sync log read back, and the target state
normalized so that two ways of reaching it can be compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ldap3

from tests.support.plan_env import Result, run_cli, scim_list
from toolkit.config import load_config
from toolkit.config.dn import normalize_dn
from toolkit.lab import sampledata
from toolkit.lab.syncyaml import default_classes as lab_classes
from toolkit.lab.syncyaml import write_pipe_config
from toolkit.sync import synclog
from toolkit.sync.state import StateStore

PIPE = "ldap-to-scim"
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OUT = "out-of-scope"  # a description value that takes a user out of the users class
USER_FILTER = f"(&(objectClass=inetOrgPerson)(!(description={OUT})))"
ROOT = Path(__file__).resolve().parents[2]


def default_classes() -> dict[str, dict[str, Any]]:
    """Ping's three classes; users that carry the OUT description are out of scope."""
    classes = lab_classes(SUFFIX)
    classes["users"]["include-filter"] = [USER_FILTER]
    return classes


@dataclass
class Rt:
    """One pipe from a directory fixture (slapd or dirsrv) to the scim_server fixture."""

    server: Any
    scim: Any
    folder: Path
    feed: str  # "slapd" (accesslog) or "dirsrv" (changelog)
    entries: list[dict[str, list[str]]] = field(default_factory=list)
    scim_url: str | None = None  # another URL for the target (a fault proxy in front)
    classes: dict[str, dict[str, Any]] | None = None
    _ldap: ldap3.Connection | None = None

    # --- config and CLI -----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.folder / "sync.yaml"

    @property
    def state_dir(self) -> Path:
        return self.folder / ".scimsync"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"{PIPE}-sync.log"

    @property
    def detector(self) -> str:
        return "accesslog" if self.feed == "slapd" else "changelog"

    def write_config(
        self, classes: dict[str, dict[str, Any]] | None = None, **pipe_props: Any
    ) -> Path:
        self.classes = classes or default_classes()
        props = {"change-detection-polling-interval": "100 ms"}
        props.update({k.replace("_", "-"): v for k, v in pipe_props.items()})
        self.folder.mkdir(parents=True, exist_ok=True)
        write_pipe_config(
            self.config_path,
            self.server,
            self.scim_url or self.scim.url,
            prefix="rt",
            ldap_type="openldap" if self.feed == "slapd" else "389-ds",
            pipe=PIPE,
            change_detector=self.detector,
            pipe_props=props,
            classes=self.classes,
        )
        return self.config_path

    def config(self):
        return load_config(self.config_path)

    def cli(self, *args: str) -> Result:
        return run_cli(self.config_path, *args)

    def cli_ok(self, *args: str) -> Result:
        result = self.cli(*args)
        assert result.code == 0, f"scimsync {' '.join(args)}: {result.code}\n{result.err}"
        return result

    def cli_json(self, *args: str) -> Any:
        return self.cli_ok(*args, "--json").json()

    def spawn(self, *args: str) -> subprocess.Popen:
        """`scimsync --config ... ARGS` in a process of its own (for kill -9 and detaching)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", "--config", str(self.config_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )

    def set_startpoint(self, *how: str) -> Result:
        return self.cli_ok("realtime-sync", "set-startpoint", *how)

    def resync(self) -> dict[str, Any]:
        data = self.cli_json("resync")
        assert data["failed"] == 0, data
        return data

    def dry_run_totals(self) -> dict[str, int]:
        return self.cli_json("dry-run")["totals"]

    def sync(self, *extra: str) -> Result:
        """`realtime-sync start --foreground --until-idle`: must exit 0."""
        return self.cli_ok("realtime-sync", "start", "--foreground", "--until-idle", *extra)

    # --- sample data --------------------------------------------------------------------------

    def load(self, users: int, groups: int) -> None:
        """Sample data into the directory: slapadd for slapd, LDAP adds for 389-DS."""
        self.entries = list(sampledata.generate(users, groups, suffix=SUFFIX))
        if self.feed == "slapd":
            ldif = sampledata.write_ldif(self.folder / "sample.ldif", users, groups, suffix=SUFFIX)
            self.server.load_ldif(ldif)
            self._ldap = None
            return
        for entry in self.entries:
            attrs = {k: v for k, v in entry.items() if k not in ("dn", "objectClass")}
            self.ldap.add(entry["dn"][0], entry["objectClass"], attrs)

    def people(self) -> list[dict[str, list[str]]]:
        return [e for e in self.entries if "inetOrgPerson" in e["objectClass"]]

    def sample_groups(self) -> list[dict[str, list[str]]]:
        return [e for e in self.entries if "groupOfNames" in e["objectClass"]]

    def loners(self) -> list[dict[str, list[str]]]:
        """Users in no group and managing nobody: deleting or renaming one leaves no dangling DN."""
        busy = {normalize_dn(m) for g in self.sample_groups() for m in g["member"]}
        busy |= {normalize_dn(p["manager"][0]) for p in self.people() if "manager" in p}
        return [p for p in self.people() if normalize_dn(p["dn"][0]) not in busy]

    # --- LDAP -----------------------------------------------------------------------------

    @property
    def ldap(self) -> ldap3.Connection:
        if self._ldap is None or self._ldap.closed:
            self._ldap = self.server.connect()
        return self._ldap

    def add_user(self, uid: str, parent: str = PEOPLE, **attrs: Any) -> str:
        dn = f"uid={uid},{parent}"
        self.ldap.add(
            dn, ["inetOrgPerson"], {"uid": uid, "cn": f"{uid} Test", "sn": "Test", **attrs}
        )
        return dn

    def replace(self, dn: str, **attrs: Any) -> None:
        self.ldap.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in attrs.items()})

    def entry_uuid(self, dn: str) -> str:
        self.ldap.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        return str(self.ldap.entries[0].entryUUID.value).lower()

    # --- SCIM -----------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.scim.url, timeout=30)

    def all(self, endpoint: str) -> list[dict[str, Any]]:
        return scim_list(self.scim.url, endpoint)

    def users(self) -> dict[str, dict[str, Any]]:
        """userName -> User."""
        return {u["userName"]: u for u in self.all("/Users")}

    def groups(self) -> dict[str, dict[str, Any]]:
        """displayName -> Group."""
        return {g["displayName"]: g for g in self.all("/Groups")}

    def normalized(self) -> dict[str, Any]:
        """The target without server-made ids and versions: references by userName/displayName."""
        users, groups = self.all("/Users"), self.all("/Groups")
        names = {u["id"]: "user:" + u["userName"] for u in users}
        names.update({g["id"]: "group:" + g["displayName"] for g in groups})

        def clean(resource: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in resource.items() if k not in ("id", "meta")}
            ext = out.get(ENTERPRISE)
            if ext and isinstance(ext.get("manager"), dict):
                manager = ext["manager"]
                out[ENTERPRISE] = {
                    **ext,
                    "manager": names.get(manager.get("value"), "dangling:" + str(manager)),
                }
            if "members" in out:
                out["members"] = sorted(
                    names.get(m.get("value"), "dangling:" + str(m.get("value")))
                    for m in out["members"]
                )
            return _sorted_lists(out)

        return {
            "users": {u["userName"]: clean(u) for u in users},
            "groups": {g["displayName"]: clean(g) for g in groups},
        }

    # --- the sync log -------------------------------------------------------------------------

    def log(self) -> list[dict[str, Any]]:
        return synclog.read_log(self.log_path)

    def outcomes(self) -> dict[Any, list[str]]:
        """Change position (csn or change number) -> the outcome types logged for it."""
        out: dict[Any, list[str]] = {}
        for line in self.log():
            if line["type"] in synclog.OUTCOMES and position(line) is not None:
                out.setdefault(position(line), []).append(line["type"])
        return out

    def feed_changes(self, cursor: str) -> list[Any]:
        """Every change the feed holds after `cursor`, read with a fresh detector."""
        from toolkit.ldap.fromconfig import open_source

        config = self.config()
        source = open_source(config, config.source_of(PIPE))
        detector, _ = source.change_detector()
        changes = []
        try:
            while True:
                batch, after = detector.poll(cursor, 500)
                changes.extend(batch)
                if after == cursor:
                    return changes
                cursor = after
        finally:
            detector.close()
            source.close()

    def cursor(self) -> str | None:
        from toolkit.sync.state import StateStore

        store = StateStore(self.state_dir / "state.db")
        try:
            return store.cursor(PIPE)
        finally:
            store.close()

    def close(self) -> None:
        if self._ldap is not None:
            self._ldap.unbind()


def position(line_or_change: Any) -> Any:
    """Where a log line or a Change sits in the feed: its change number, else its csn."""
    if isinstance(line_or_change, dict):
        return line_or_change.get("change_number") or line_or_change.get("csn")
    return line_or_change.change_number or line_or_change.csn


def _sorted_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_lists(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def make_rt(
    feed: str,
    server: Any,
    scim: Any,
    folder: Path,
    users: int = 30,
    groups: int = 4,
    resync: bool = True,
    classes: dict[str, dict[str, Any]] | None = None,
    scim_url: str | None = None,
    **pipe_props: Any,
) -> Rt:
    """Load sample data, write the config, set the start point at the end, resync."""
    rt = Rt(server, scim, folder, feed, scim_url=scim_url)
    rt.write_config(classes, **pipe_props)
    rt.load(users, groups)
    rt.set_startpoint("--end-of-changelog")
    if resync:
        rt.resync()
    return rt


def read_store(rt: Rt, read: Callable[[StateStore], Any]) -> Any:
    """What `read` finds in the pipe's state store (opened and closed around it)."""
    store = StateStore(rt.state_dir / "state.db")
    try:
        return read(store)
    finally:
        store.close()


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def fresh_resync_state(rt: Rt, folder: Path) -> dict[str, Any]:
    """What a fresh resync (empty target, no state) makes of the directory now, normalized."""
    rt.scim.reset()
    fresh = Rt(rt.server, rt.scim, folder, rt.feed)
    fresh.write_config(rt.classes)
    # references in a cycle among entries created by one run (A manages B, B manages A) are
    # sent by the next run, as the applier says: resync until a dry run finds nothing to do
    for _ in range(3):
        fresh.resync()
        totals = fresh.dry_run_totals()
        if sum(totals.values()) == totals["unchanged"]:
            break
    else:
        raise AssertionError(f"three fresh resyncs did not converge: {totals}")
    return fresh.normalized()


@dataclass
class Burst:
    """A deterministic mix of LDAP writes over the sample data, without dangling references.

    Modifies (title, telephoneNumber, manager), group joins and leaves, adds (some joining a
    group), and on users nobody refers to: renames, moves within ou=people, and deletes.
    Entries that are someone's manager or a group's member are never renamed or deleted, and
    a renamed or deleted user is never made a manager or member afterwards.
    """

    rt: Rt
    seed: int = 0
    written: int = 0

    def __post_init__(self) -> None:
        import random

        self.rnd = random.Random(self.seed)
        self.referable = [p["dn"][0] for p in self.rt.people() if p not in self.rt.loners()]
        self.loners = [p["dn"][0] for p in self.rt.loners()]
        self.groups = {g["dn"][0]: set(g["member"]) for g in self.rt.sample_groups()}
        self.staff = f"ou=staff,{PEOPLE}"
        self.rt.ldap.add(self.staff, "organizationalUnit", {"ou": "staff"})
        self.written += 1

    def write(self, n: int, pause: float = 0.0, stop: Any = None) -> int:
        """Make about `n` more LDAP writes (one more when the last add joins a group)."""
        conn = self.rt.server.connect()
        target, i = self.written + n, self.written
        try:
            while self.written < target:
                if stop is not None and stop.is_set():
                    break
                self._one(conn, i)
                self.written += 1
                i += 1
                if pause:
                    time.sleep(pause)
        finally:
            conn.unbind()
        return self.written

    def _one(self, conn: ldap3.Connection, i: int) -> None:
        rnd, roll = self.rnd, self.rnd.random()
        if roll < 0.45:
            dn = rnd.choice(self.referable + self.loners)
            attr = rnd.choice(["title", "telephoneNumber"])
            conn.modify(dn, {attr: [(ldap3.MODIFY_REPLACE, [f"burst {self.seed}-{i}"])]})
        elif roll < 0.55:
            dn = rnd.choice(self.referable)
            manager = rnd.choice([m for m in self.referable if m != dn])
            conn.modify(dn, {"manager": [(ldap3.MODIFY_REPLACE, [manager])]})
        elif roll < 0.70:
            group = rnd.choice(sorted(self.groups))
            members = self.groups[group]
            outside = [d for d in self.referable if d not in members]
            if outside and (len(members) < 3 or rnd.random() < 0.5):
                joiner = rnd.choice(outside)
                conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [joiner])]})
                members.add(joiner)
            else:
                leaver = rnd.choice(sorted(members))
                conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [leaver])]})
                members.discard(leaver)
        elif roll < 0.82:
            uid = f"burst{self.seed}-{i}"
            dn = f"uid={uid},{PEOPLE}"
            attrs = {"uid": uid, "cn": f"Burst {i}", "sn": "Burst", "title": "New"}
            if rnd.random() < 0.5:
                attrs["manager"] = rnd.choice(self.referable)
            conn.add(dn, ["inetOrgPerson"], attrs)
            if rnd.random() < 0.3:  # a group takes the newcomer at once
                group = rnd.choice(sorted(self.groups))
                conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})
                self.groups[group].add(dn)
                self.written += 1
            self.referable.append(dn)
        elif roll < 0.90 and self.loners:
            dn = self.loners.pop(rnd.randrange(len(self.loners)))
            rdn, parent = dn.split(",", 1)
            if rnd.random() < 0.5:  # rename
                new_rdn = f"{rdn}-r{i}"
                conn.modify_dn(dn, new_rdn)
                self.loners.append(f"{new_rdn},{parent}")
            else:  # move within the users class
                superior = self.staff if parent.lower() == PEOPLE.lower() else PEOPLE
                conn.modify_dn(dn, rdn, new_superior=superior)
                self.loners.append(f"{rdn},{superior}")
        elif self.loners:
            dn = self.loners.pop(rnd.randrange(len(self.loners)))
            conn.delete(dn)
        else:
            conn.modify(self.referable[0], {"title": [(ldap3.MODIFY_REPLACE, [f"burst-{i}"])]})


def assert_log_accounts_for(rt: Rt, start: str) -> int:
    """Every change after `start` has at least one outcome in the sync log; returns how many."""
    outcomes = rt.outcomes()
    changes = rt.feed_changes(start)
    missing = [(c.kind, c.dn, position(c)) for c in changes if not outcomes.get(position(c))]
    assert not missing, f"{len(missing)} changes without an outcome, e.g. {missing[:5]}"
    return len(changes)


def assert_target_is_what_a_resync_makes(rt: Rt, folder: Path) -> None:
    """A dry run finds nothing to do, and a fresh resync into an empty target makes the same."""
    totals = rt.dry_run_totals()
    assert sum(totals.values()) == totals["unchanged"], totals
    realtime = rt.normalized()
    fresh = fresh_resync_state(rt, folder)
    assert set(realtime["users"]) == set(fresh["users"])
    diff = [
        name
        for kind in ("users", "groups")
        for name in fresh[kind]
        if realtime[kind].get(name) != fresh[kind][name]
    ]
    if diff:
        a, b = realtime["users"].get(diff[0]), fresh["users"].get(diff[0])
        detail = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        raise AssertionError(f"{len(diff)} differ, e.g. {diff[0]}: {detail}")
    assert realtime == fresh
