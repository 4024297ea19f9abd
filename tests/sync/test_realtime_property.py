"""Reconciling entries one at a time (realtime's Reconciler) ends where resync ends: a
property over generated directories and SCIM states (hypothesis).

The directory: users naming managers (another user, or a DN no entry has), groups of names
(member) and of unique names (uniqueMember) holding users and dangling DNs. The SCIM side:
each user's resource absent, linked but stale (other title, a manager id from elsewhere),
or present unlinked under its userName (adopted). Both ways start from the same state on
the real scim2-server run in-process (a fresh one per way); the final states, references
written as names, are the same, and a resync plan over the realtime result is all
`unchanged`. Before either runs, each entry's first write as realtime plans it alone is the
write the whole plan makes for it, request for request.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.realtime_env import ENTERPRISE, GROUPS, PEOPLE, SUFFIX, default_classes
from tests.support.scim_app import scim_app
from toolkit.config import load_config
from toolkit.entry import entry_key
from toolkit.lab.syncyaml import write_pipe_config
from toolkit.mapping import load_mapping
from toolkit.plan.engine import ClassRead, PlanInputs, build, has_pending
from toolkit.plan.model import UNCHANGED, Link
from toolkit.plan.plan import Plan
from toolkit.scim import ScimClient, ScimEndpoint
from toolkit.sync.apply import Applier
from toolkit.sync.reconcile import Reconciler
from toolkit.sync.state import StateStore

PIPE = "ldap-to-scim"
GHOST = f"uid=ghost,{PEOPLE}"  # a DN no entry has


def user_dn(i: int) -> str:
    return f"uid=user{i},{PEOPLE}"


@st.composite
def directories(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    managers = [draw(st.sampled_from([None, "ghost", *range(n)])) for _ in range(n)]
    groups = [
        (
            draw(st.sampled_from(["groupOfNames", "groupOfUniqueNames"])),
            draw(st.lists(st.sampled_from(["ghost", *range(n)]), min_size=1, max_size=4)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    states = [draw(st.sampled_from(["absent", "linked-stale", "unlinked"])) for _ in range(n)]
    return {"managers": managers, "groups": groups, "states": states}


def entries(directory: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries as the LDAP reader gives them (lower-case names, lists of text)."""
    out = []
    for i, manager in enumerate(directory["managers"]):
        entry = {
            "dn": user_dn(i),
            "objectclass": ["inetOrgPerson"],
            "uid": [f"user{i}"],
            "cn": [f"User {i}"],
            "sn": ["User"],
            "title": [f"Title {i}"],
            "entryuuid": [f"00000000-0000-0000-0000-{i:012}"],
        }
        if manager is not None:
            entry["manager"] = [GHOST if manager == "ghost" else user_dn(manager)]
        out.append(entry)
    for g, (kind, members) in enumerate(directory["groups"]):
        attribute = "member" if kind == "groupOfNames" else "uniquemember"
        dns = [GHOST if m == "ghost" else user_dn(m) for m in dict.fromkeys(members)]
        out.append(
            {
                "dn": f"cn=group{g},{GROUPS}",
                "objectclass": [kind],
                "cn": [f"group{g}"],
                attribute: dns,
                "entryuuid": [f"00000000-0000-0000-0001-{g:012}"],
            }
        )
    return out


class World:
    """One way's SCIM server (in-process), state store and reconciler, from the same start."""

    def __init__(self, config: Any, folder: Path, directory: dict[str, Any]):
        self.config, self.pipe = config, config.pipe(PIPE)
        self.mappings = load_mapping(config.mapping_file_of(config.destination_of(self.pipe)))
        self.client = ScimClient(
            ScimEndpoint("http://scim.test/v2"), transport=httpx.WSGITransport(app=scim_app())
        )
        self.store = StateStore(folder / "state.db")
        source = SimpleNamespace(base_dns=[SUFFIX])  # entries are handed over, never read
        self.reconciler = Reconciler(
            config, self.pipe, self.mappings, source, self.client, self.store
        )
        self._seed(directory)

    def _seed(self, directory: dict[str, Any]) -> None:
        ids = {}
        for i, state in enumerate(directory["states"]):
            if state == "absent":
                continue
            body = {"userName": f"user{i}", "title": "stale"}
            ids[i] = self.client.create("User", body)["id"]
        for i, state in enumerate(directory["states"]):
            if state != "linked-stale":
                continue
            other = next((ids[j] for j in ids if j != i), None)
            if other is not None:  # a manager id the entry does not name
                body = {ENTERPRISE: {"manager": {"value": other}}}
                self.client.patch("User", ids[i], [{"op": "add", "value": body}])
            uuid = f"00000000-0000-0000-0000-{i:012}"
            self.store.save_links(
                PIPE, [Link(uuid, user_dn(i), "users", "User", ids[i], created=True)]
            )

    def full_plan(self, read: list[dict[str, Any]]) -> Plan:
        """The plan a resync makes: every entry read, every resource, every link."""
        classes = []
        for sync_class in self.pipe.classes_in_order():
            if sync_class.is_exclusion:
                continue
            resource = self.reconciler.scope.resources[sync_class.name]
            taken = [e for e in read if self.reconciler.scope.class_of(e) is sync_class]
            classes.append(ClassRead(sync_class, resource, taken))
        targets = {m.name: list(self.client.iter_resources(m.name)) for m in self.mappings}
        result = build(
            PlanInputs(
                pipe=PIPE,
                classes=classes,
                targets=targets,
                links=self.store.links(PIPE),
                endpoints={m.name: f"/{m.endpoint.strip('/')}" for m in self.mappings},
                partial=False,
            )
        )
        return Plan(pipe=PIPE, rows=result.rows, stale_links=result.stale_links)

    def first_writes(self, read: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        """Each entry's row as realtime plans it alone (correlated through the server) and
        as the full plan has it, from the same state, where realtime can name what the whole
        plan names: not where a reference waits for an entry this plan creates or adopts."""
        full = {r.entry_uuid: r for r in self.full_plan(read).rows if r.entry_uuid}
        pairs = []
        for entry in read:
            link = self.store.link(PIPE, entry_key(entry))
            row = self.reconciler.plan_entry(entry, link)[1].rows[0]
            expected = full[row.entry_uuid]
            if "unresolved" in (row.reason or "") or any(
                has_pending(q.body) or has_pending(q.path) for q in expected.requests
            ):
                continue
            pairs.append((_written(row), _written(expected)))
        return pairs

    def resync(self, read: list[dict[str, Any]]) -> None:
        for _ in range(3):  # references in a cycle of creates are set by the next run
            plan = self.full_plan(read)
            if all(r.situation == UNCHANGED for r in plan.rows):
                return
            Applier(plan, self.client, self.store).run()
        raise AssertionError("three resyncs did not converge")

    def realtime(self, read: list[dict[str, Any]]) -> None:
        """Each entry on its own, then a second pass for those whose references waited for
        an entry created later (as realtime's batch does)."""
        results = [self.reconciler.reconcile(entry, None) for entry in read]
        for entry, result in zip(read, results, strict=True):
            if result.unresolved:
                self.reconciler.reconcile(entry, None, trust_link=False)

    def normalized(self) -> dict[str, Any]:
        users = list(self.client.iter_resources("User"))
        groups = list(self.client.iter_resources("Group"))
        names = {u["id"]: u["userName"] for u in users}
        names.update({g["id"]: g["displayName"] for g in groups})

        def clean(resource: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in resource.items() if k not in ("id", "meta")}
            manager = (out.get(ENTERPRISE) or {}).get("manager")
            if manager:
                out[ENTERPRISE] = {**out[ENTERPRISE], "manager": names.get(manager["value"])}
            if "members" in out:
                out["members"] = sorted(names.get(m["value"], "?") for m in out["members"])
            return out

        return {names[r["id"]]: clean(r) for r in users + groups}

    def close(self) -> None:
        self.client.close()
        self.store.close()


def _written(row: Any) -> tuple[Any, ...]:
    """What a row would write: its situation, resource and exact requests."""
    return row.situation, row.scim_id, [(q.method, q.path, q.body) for q in row.requests]


def _config(folder: Path) -> Any:
    server = SimpleNamespace(
        host="127.0.0.1", port=1, admin_dn="cn=admin", admin_password="x", suffix=SUFFIX
    )
    write_pipe_config(
        folder / "sync.yaml",
        server,
        "http://scim.test/v2",
        prefix="prop",
        pipe=PIPE,
        change_detector="accesslog",
        classes=default_classes(),
    )
    return load_config(folder / "sync.yaml")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(directories())
def test_reconciling_each_entry_ends_where_resync_ends(directory):
    folder = Path(tempfile.mkdtemp(prefix="scimsync-prop-"))
    try:
        config = _config(folder)
        read = entries(directory)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        resync, realtime = (
            World(config, folder / "a", directory),
            World(config, folder / "b", directory),
        )
        try:
            for alone, whole in realtime.first_writes(read):
                assert alone == whole
            resync.resync(read)
            realtime.realtime(read)
            pending = [
                (r.situation, r.dn, r.changes)
                for r in realtime.full_plan(read).rows
                if r.situation != UNCHANGED
            ]
            assert not pending, pending
            assert realtime.normalized() == resync.normalized()
        finally:
            resync.close()
            realtime.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
