"""Realtime ends where resync would, against the real slapd (access log) and scim2-server.

A seeded, deterministic storm of LDAP writes that the referencing entries feel: managers
and group members deleted, renamed and moved out of scope (and back), users added naming
managers, name swaps by three modrdns, besides plain modifies and group joins and leaves.
After `realtime-sync start --until-idle`, a dry run plans nothing: every row unchanged.
Behind a fault proxy (503s on writes, DELETEs that are applied but answered 500), the
run exits 1 with failures; once the faults stop, realtime alone converges (background
retries), and `status` lists no failure.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import ldap3
import pytest

from tests.support.realtime_env import ENTERPRISE, OUT, PEOPLE, SUFFIX, Rt, make_rt
from tests.sync.test_realtime_retry import WriteFaultProxy
from toolkit.plan.model import UNCHANGED
from toolkit.sync import synclog
from toolkit.sync.batch import RunOptions, dry_run

FORMER = f"ou=former,{SUFFIX}"  # outside every synchronizing class


@dataclass
class Storm:
    """LDAP writes chosen by a seeded generator from a model of the directory it keeps.

    Unlike tests.support.realtime_env.Burst it aims at references: the users it deletes,
    renames, swaps and moves out are managers and group members, whose DNs then dangle in
    the entries naming them (slapd runs without the refint overlay), or name another user.
    """

    rt: Rt
    seed: int
    users: list[str] = field(default_factory=list)  # DNs of the users in ou=people
    groups: dict[str, set[str]] = field(default_factory=dict)  # group DN -> member DNs
    out: set[str] = field(default_factory=set)  # users carrying the OUT description
    written: dict[str, int] = field(default_factory=dict)  # kind -> count

    def __post_init__(self) -> None:
        self.rnd = random.Random(self.seed)
        self.users = [p["dn"][0] for p in self.rt.people()]
        self.groups = {g["dn"][0]: set(g["member"]) for g in self.rt.sample_groups()}
        self.n = 0
        ok = self.rt.ldap.add(FORMER, "organizationalUnit", {"ou": "former"})
        assert ok, self.rt.ldap.result

    def referenced(self) -> list[str]:
        """Users some entry names (as manager or member) now."""
        named = {m.lower() for members in self.groups.values() for m in members}
        conn = self.rt.ldap
        conn.search(PEOPLE, "(manager=*)", attributes=["manager"])
        named |= {str(e.manager.value).lower() for e in conn.entries}
        return [dn for dn in self.users if dn.lower() in named]

    def write(self, count: int) -> None:
        conn = self.rt.server.connect()
        try:
            for _ in range(count):
                self.n += 1
                kind = self._one(conn)
                self.written[kind] = self.written.get(kind, 0) + 1
        finally:
            conn.unbind()

    def _ok(self, conn: ldap3.Connection, done: bool) -> None:
        assert done, conn.result

    def _pick_referenced(self) -> str:
        referenced = self.referenced()
        return self.rnd.choice(referenced or self.users)

    def _one(self, conn: ldap3.Connection) -> str:
        rnd, roll = self.rnd, self.rnd.random()
        if roll < 0.15:
            dn = rnd.choice(self.users)
            self._ok(conn, conn.modify(dn, {"title": [(ldap3.MODIFY_REPLACE, [f"t{self.n}"])]}))
            return "modify"
        if roll < 0.25:
            dn, manager = rnd.sample(self.users, 2)
            self._ok(conn, conn.modify(dn, {"manager": [(ldap3.MODIFY_REPLACE, [manager])]}))
            return "manager"
        if roll < 0.35:
            group = rnd.choice(sorted(self.groups))
            members = self.groups[group]
            outside = [u for u in self.users if u not in members]
            if outside and (len(members) < 3 or rnd.random() < 0.6):
                joiner = rnd.choice(outside)
                self._ok(conn, conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [joiner])]}))
                members.add(joiner)
            else:
                leaver = rnd.choice(sorted(members))
                self._ok(conn, conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [leaver])]}))
                members.discard(leaver)
            return "member"
        if roll < 0.48:
            uid = f"storm{self.seed}-{self.n}"
            dn = f"uid={uid},{PEOPLE}"
            attrs = {"uid": uid, "cn": f"Storm {self.n}", "sn": "Storm"}
            if rnd.random() < 0.7:
                attrs["manager"] = rnd.choice(self.users)
            self._ok(conn, conn.add(dn, ["inetOrgPerson"], attrs))
            self.users.append(dn)
            if rnd.random() < 0.4:
                group = rnd.choice(sorted(self.groups))
                self._ok(conn, conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]}))
                self.groups[group].add(dn)
            return "add"
        if roll < 0.58 and len(self.users) > 8:
            dn = self._pick_referenced()
            self._ok(conn, conn.delete(dn))
            self.users.remove(dn)
            self.out.discard(dn)
            return "delete referenced"
        if roll < 0.68:
            dn = self._pick_referenced()
            rdn = dn.split(",", 1)[0]
            new_rdn = f"{rdn}-r{self.n}"
            self._ok(conn, conn.modify_dn(dn, new_rdn))
            self._moved(dn, f"{new_rdn},{PEOPLE}")
            return "rename referenced"
        if roll < 0.76:
            inside = [u for u in self.users if u not in self.out]
            dn = rnd.choice([u for u in self.referenced() if u not in self.out] or inside)
            self._ok(conn, conn.modify(dn, {"description": [(ldap3.MODIFY_REPLACE, [OUT])]}))
            self.out.add(dn)
            return "out of scope (filter)"
        if roll < 0.80 and self.out:
            dn = rnd.choice(sorted(self.out))
            self._ok(conn, conn.modify(dn, {"description": [(ldap3.MODIFY_DELETE, [])]}))
            self.out.discard(dn)
            return "back in scope"
        if roll < 0.86 and len(self.users) > 8:
            dn = self._pick_referenced()
            rdn = dn.split(",", 1)[0]
            self._ok(conn, conn.modify_dn(dn, rdn, new_superior=FORMER))
            self.users.remove(dn)
            self.out.discard(dn)
            return "moved out of the base"
        a, b = rnd.sample(self.users, 2)
        self._swap(conn, a, b)
        return "name swap"

    def _swap(self, conn: ldap3.Connection, a: str, b: str) -> None:
        """Users a and b swap uids (so userNames and DNs) by three modrdns."""
        rdn_a, rdn_b = a.split(",", 1)[0], b.split(",", 1)[0]
        parking = f"uid=swap{self.seed}-{self.n}"
        self._ok(conn, conn.modify_dn(a, parking))
        self._ok(conn, conn.modify_dn(b, rdn_a))
        self._ok(conn, conn.modify_dn(f"{parking},{PEOPLE}", rdn_b))
        # the DNs stay; the entries behind them change places (the model keeps DNs only)
        ia, ib = self.users.index(a), self.users.index(b)
        self.users[ia], self.users[ib] = b, a
        if (a in self.out) != (b in self.out):
            self.out ^= {a, b}

    def _moved(self, old: str, new: str) -> None:
        self.users[self.users.index(old)] = new
        if old in self.out:
            self.out.discard(old)
            self.out.add(new)


def assert_resync_plans_nothing(rt: Rt) -> None:
    """A dry run over the whole directory finds every object unchanged."""
    plan = dry_run(rt.config(), RunOptions())
    pending = [(r.situation, r.dn, r.changes) for r in plan.rows if r.situation != UNCHANGED]
    assert not pending, f"{len(pending)} objects a resync would still change: {pending[:5]}"


@pytest.fixture
def storm_rt(slapd, scim_server, tmp_path):
    # a storm deletes far more than max-deletes' default lets realtime apply in an hour: the
    # delete guard is tested in tests/sync/test_realtime_delete_guard.py
    rt = make_rt(
        "slapd", slapd, scim_server, tmp_path / "pipe", users=30, groups=4, max_deletes="100%"
    )
    yield rt
    rt.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_realtime_after_a_storm_of_reference_changes_is_what_resync_writes(storm_rt, seed):
    rt = storm_rt
    storm = Storm(rt, seed)
    referencing = 0  # entries reconciled because an entry they name changed
    for _ in range(3):  # one large batch per round; each round starts from the last's state
        storm.write(40)
        run = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
        status = rt.cli_json("status")
        assert run.code == 0, (run.out, status["failures"])
        referencing += sum(status["referencing"].values())
    assert referencing > 0
    assert {"delete referenced", "rename referenced", "name swap"} <= storm.written.keys()
    assert_resync_plans_nothing(rt)
    assert rt.cli_json("status")["failures"] == []


@pytest.fixture
def failing_storm(slapd, scim_server, tmp_path):
    proxy = WriteFaultProxy("127.0.0.1", scim_server.port).start()
    rt = make_rt(
        "slapd",
        slapd,
        scim_server,
        tmp_path / "pipe",
        users=30,
        groups=4,
        scim_url=proxy.url(),
        max_deletes="100%",
        max_operation_attempts=2,
        failed_op_background_retry_delay="1 s",
    )
    yield rt, proxy
    proxy.stop()
    rt.close()


def test_realtime_behind_faults_converges_once_they_stop(failing_storm):
    rt, proxy = failing_storm
    storm = Storm(rt, 7)
    storm.write(60)
    assert storm.written.get("delete referenced"), storm.written
    # a DELETE applied but answered 500: the client's second attempt meets 404 (done); and
    # every other write fails with 503 until the faults stop
    proxy.inject("500", 1, forward=True, when=lambda seen: seen.method == "DELETE")
    proxy.inject("503", 10000, retry_after="0", when=lambda seen: seen.method != "DELETE")
    during = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
    failures = rt.cli_json("status")["failures"]
    assert failures, "the faults made no change fail"
    assert during.code == 1, during.err  # changes failed: as resync says it
    assert f"{len(failures)} entries failed" in during.err
    (faulted,) = [s for s in proxy.seen if s.method == "DELETE" and s.fault == "500"]
    again = [s for s in proxy.seen if s.method == "DELETE" and s.path == faulted.path]
    assert [s.fault for s in again] == ["500", None]  # the second met 404
    gone = [line for line in rt.log() if "already gone (404)" in (line.get("detail") or "")]
    assert gone and {line["type"] for line in gone} == {synclog.CHANGE_APPLIED}
    # the faults stop: the background retries (due 1 s after a failure, then 2 s...) converge
    proxy.clear()
    for _ in range(8):
        time.sleep(1.1)
        after = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
        if not rt.cli_json("status")["failures"]:
            break
    assert rt.cli_json("status")["failures"] == []
    assert after.code == 0, after.err
    assert_resync_plans_nothing(rt)


def test_a_swap_whose_halves_arrive_in_different_runs(storm_rt):
    """The first half of a userName swap meets 409 and fails (the other user holds the name
    still); once the second half arrives, the next run applies both as resync would (the
    holder of the name wanted is read too and the swap goes through a temporary name)."""
    rt = storm_rt
    a, b = rt.loners()[:2]
    staff = f"ou=staff,{PEOPLE}"
    assert rt.ldap.add(staff, "organizationalUnit", {"ou": "staff"})
    # user a takes b's uid (so userName) under another parent: the DNs stay apart
    assert rt.ldap.modify_dn(a["dn"][0], f"uid={b['uid'][0]}", new_superior=staff)
    first = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
    assert first.code == 1, first.out  # 409: b holds the name
    (failure,) = rt.cli_json("status")["failures"]
    assert "409" in failure["error"]
    assert rt.ldap.modify_dn(b["dn"][0], f"uid={a['uid'][0]}")  # the second half
    rt.sync()  # exits 0
    users = rt.users()
    assert users[b["uid"][0]]["name"]["givenName"] == a["givenName"][0]
    assert users[a["uid"][0]]["name"]["givenName"] == b["givenName"][0]
    assert rt.cli_json("status")["failures"] == []
    assert_resync_plans_nothing(rt)


def test_after_the_target_is_wiped_a_changed_user_names_its_manager_recreated(storm_rt):
    """Every resource deleted out of band; then one user changes. Realtime recreates that
    user and, as resync would, the manager it names (whose link still holds the old id):
    the new user names the new manager, not the id that is gone."""
    rt = storm_rt
    user = next(p for p in rt.people() if "manager" in p)
    manager_dn = user["manager"][0]
    rt.scim.reset()
    rt.replace(user["dn"][0], title=["Recreated"])
    rt.sync()
    users = rt.users()
    manager = next(p for p in rt.people() if p["dn"][0].lower() == manager_dn.lower())
    recreated = users[user["uid"][0]]
    assert recreated["title"] == "Recreated"
    named = recreated[ENTERPRISE]["manager"]["value"]
    assert named == users[manager["uid"][0]]["id"]
    assert rt.cli_json("status")["failures"] == []
