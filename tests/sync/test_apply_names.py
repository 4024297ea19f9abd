"""Unique names that entries of one run take from each other: swaps, rotations, a new user
taking the name a renamed one gives up. Each is applied in one run (no 409 left), and a name
held outside the run still fails with 409, leaving no temporary name behind.
"""

from __future__ import annotations

from dataclasses import replace

import ldap3
import pytest

from tests.support.faults import FaultProxy, Seen
from tests.support.plan_env import PEOPLE, make_env, recording, totals, uid_of
from toolkit.plan.model import CREATE, MODIFY, Row
from toolkit.plan.names import TEMPORARY_PREFIX, name_order, note_name_takers
from toolkit.plan.plan import Plan
from toolkit.scim import ScimClient
from toolkit.sync.apply import Applier
from toolkit.sync.batch import RunOptions, make_plan, open_session


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    yield env
    env.close()


def _rename(env, old_uid: str, new_uid: str) -> None:
    assert env.ldap.modify_dn(f"uid={old_uid},{PEOPLE}", f"uid={new_uid}"), env.ldap.result


def _rotate(env, uids: list[str]) -> None:
    """Each entry takes the uid of the one before it (the first takes the last's): LDAP
    needs a free name for one step, SCIM gets the whole rotation in one run."""
    _rename(env, uids[0], "rotating")
    for i in range(1, len(uids)):
        _rename(env, uids[i], uids[i - 1])
    _rename(env, "rotating", uids[-1])


def _no_temporary_names(env) -> None:
    assert not [n for n in env.scim_users() if n.startswith(TEMPORARY_PREFIX)]


@pytest.mark.parametrize(("size", "update_method"), [(2, "patch"), (3, "patch"), (2, "put")])
def test_entries_rotating_usernames_are_applied_in_one_run(env, monkeypatch, size, update_method):
    if update_method == "put":
        text = env.config_path.read_text().replace(
            "    server: [test-scim]\n", "    server: [test-scim]\n    update-method: put\n"
        )
        env.config_path.write_text(text)
    assert env.cli_json("resync")["failed"] == 0
    uids = [uid_of(p) for p in env.people()[1 : 1 + size]]
    ids = {uid: user["id"] for uid, user in env.scim_users().items()}
    _rotate(env, uids)

    plan_file = env.folder / "plan.json"
    env.cli("dry-run", "--output", str(plan_file))
    reasons = {r.dn: r.reason for r in Plan.load(plan_file).rows}
    for i, uid in enumerate(uids):  # the dry run says what applying does about the 409s
        giver = f"uid={uids[i - 1]},{PEOPLE}"  # the entry that held it, renamed itself
        assert (
            f"takes userName {uid!r} from {giver}, renamed in this run"
            in reasons[f"uid={uid},{PEOPLE}"]
        )
        assert (
            "one resource of it holds scimsync-swap.<name> first" in reasons[f"uid={uid},{PEOPLE}"]
        )

    with recording(monkeypatch) as rec:
        result = env.cli_json("resync")
    moves = [m for m, _, body in rec.writes() if TEMPORARY_PREFIX in str(body)]
    assert moves == [update_method.upper()]  # one resource of the cycle moved aside, once
    assert result["totals"]["modify"] >= size  # groups follow their members' new DNs
    assert (result["applied"], result["failed"]) == (result["totals"]["modify"], 0)
    users = env.scim_users()
    assert len(users) == env.users
    for i in range(size):  # each resource kept its id and took the next one's name
        assert users[uids[i - 1]]["id"] == ids[uids[i]]
    _no_temporary_names(env)
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


def test_a_saved_plan_with_a_swap_is_applied_in_one_run(env):
    assert env.cli_json("resync")["failed"] == 0
    a, b = uid_of(env.loner()), uid_of(env.loner(skip=1))
    ids = {uid: user["id"] for uid, user in env.scim_users().items()}
    _rotate(env, [a, b])
    plan_file = env.folder / "swap.json"
    assert env.cli("dry-run", "--output", str(plan_file)).code == 0
    result = env.cli_json("resync", "--plan", str(plan_file))
    assert (result["totals"]["modify"], result["applied"], result["failed"]) == (2, 2, 0)
    users = env.scim_users()
    assert (users[a]["id"], users[b]["id"]) == (ids[b], ids[a])
    _no_temporary_names(env)


def test_a_new_user_takes_the_name_a_renamed_user_gives_up(env):
    assert env.cli_json("resync")["failed"] == 0
    leaver = env.people()[4]
    name = uid_of(leaver)
    leaver_id = env.scim_users()[name]["id"]
    _rename(env, name, f"{name}.old")
    newcomer = f"cn=New Hire,{PEOPLE}"
    env.ldap.add(newcomer, ["inetOrgPerson"], {"cn": "New Hire", "sn": "Hire", "uid": name})
    team = env.sample_groups()[0]
    env.ldap.modify(team["dn"][0], {"member": [(ldap3.MODIFY_ADD, [newcomer])]})

    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        situations = {r.dn: r.situation for r in plan.rows}
        assert situations[newcomer] == CREATE
        assert situations[f"uid={name}.old,{PEOPLE}"] == MODIFY
        # the create first, on one worker: the server still has the name on the leaver; the
        # group that gains the new hire waits for its create, and gets it once it is created
        plan.rows.sort(key=lambda r: r.situation != CREATE)
        result = Applier(plan, session.client, session.store, workers=1).run()
        link = session.store.link(plan.pipe, env.entry_uuid(newcomer))

    assert (result.failed, result.failures) == (0, [])
    users = env.scim_users()
    assert len(users) == env.users + 1
    assert users[f"{name}.old"]["id"] == leaver_id
    assert users[name]["id"] != leaver_id and users[name]["name"]["formatted"] == "New Hire"
    assert link is not None and link.created and link.scim_id == users[name]["id"]
    members = env.scim_groups()[team["cn"][0]]["members"]
    assert users[name]["id"] in {m["value"] for m in members}
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups + 1)


def test_a_name_held_outside_the_run_fails_with_409_and_renames_nothing(env, monkeypatch):
    assert env.cli_json("resync")["failed"] == 0
    outsider = env.post_user({"userName": "held.elsewhere"})
    person = env.loner()
    _rename(env, uid_of(person), "held.elsewhere")

    failed_file = env.folder / "failed.txt"
    with recording(monkeypatch) as rec:
        run = env.cli("resync", "--json", "--failed-dns-file", str(failed_file))
    assert run.code == 1, run.err
    # no row of the run gives that name up: the 409 fails at once, the request is not resent
    assert [m for m, _, body in rec.writes() if "held.elsewhere" in str(body)] == ["PATCH"]
    assert (run.json()["applied"], run.json()["failed"]) == (0, 1)
    assert "409 Conflict" in failed_file.read_text()
    users = env.scim_users()
    assert users["held.elsewhere"]["id"] == outsider["id"]  # the outsider untouched
    assert uid_of(person) in users  # the entry's resource keeps its name
    _no_temporary_names(env)


def _after_the_move(proxy: FaultProxy):
    """A PATCH sent after a swap moved a user aside, other than that move."""

    def accepts(seen: Seen) -> bool:
        moving = TEMPORARY_PREFIX.encode()
        moved = any(moving in s.body for s in proxy.seen if s is not seen)
        return seen.method == "PATCH" and moved and moving not in seen.body

    return accepts


def test_a_swap_that_cannot_finish_gives_the_user_moved_aside_its_name_back(env, scim_server):
    assert env.cli_json("resync")["failed"] == 0
    a, b = uid_of(env.loner()), uid_of(env.loner(skip=1))
    ids = {uid: user["id"] for uid, user in env.scim_users().items()}
    _rotate(env, [a, b])
    proxy = FaultProxy("127.0.0.1", scim_server.port).start()
    try:
        options = RunOptions()
        with open_session(env.config(), options) as session:
            plan = make_plan(session, options)
            endpoint = replace(session.client.endpoint, url=proxy.url())
            # both rows meet 409; one moves aside; the other, which takes its name, then
            # meets a 412 (someone changed it meanwhile); the one moved aside meets 409 again
            with ScimClient(endpoint) as client:
                proxy.inject("412", 1, when=_after_the_move(proxy))
                result = Applier(plan, client, session.store, workers=1).run()
    finally:
        proxy.stop()

    assert result.failed == 2, result.failures
    assert sorted(type(o.exc).__name__ for o in result.failures) == [
        "Conflict",
        "PreconditionFailed",
    ]
    assert TEMPORARY_PREFIX.encode() in b"".join(s.body for s in proxy.seen)  # it did move
    users = env.scim_users()
    assert (users[a]["id"], users[b]["id"]) == (ids[a], ids[b])  # given its name back
    _no_temporary_names(env)
    # the next run finds the swap still to do and does it
    retry = env.cli_json("resync")
    assert retry["failed"] == 0
    users = env.scim_users()
    assert (users[a]["id"], users[b]["id"]) == (ids[b], ids[a])


# --- the order, as pure logic ---------------------------------------------------------------


def _row(name: str, wants: str, holds: str | None) -> Row:
    situation = MODIFY if holds is not None else CREATE
    return Row(
        class_name="users",
        situation=situation,
        dn=f"uid={name}",
        entry_uuid=name,
        resource_type="User",
        scim_id=name if holds is not None else None,
        desired={"userName": wants},
        target={"userName": holds} if holds is not None else None,
    )


def test_name_order_puts_each_holder_before_the_row_that_takes_its_name():
    # c takes b's name, b takes a's, a takes a free one; the new user takes c's
    a, b, c = _row("a", "free", "x"), _row("b", "x", "y"), _row("c", "y", "z")
    new = _row("new", "Z", None)  # userName is not case-exact: "Z" is c's "z"
    order, aside = name_order([new, c, b, a])
    assert aside == []
    position = {row.entry_uuid: i for i, row in enumerate(order)}
    assert position["a"] < position["b"] < position["c"] < position["new"]
    assert sorted(position) == ["a", "b", "c", "new"]


def test_name_order_moves_one_row_of_each_cycle_aside():
    a, b = _row("a", "y", "x"), _row("b", "x", "y")  # a swap
    c, d, e = _row("c", "q", "p"), _row("d", "r", "q"), _row("e", "p", "r")  # a rotation
    order, aside = name_order([a, b, c, d, e])
    assert [r.entry_uuid for r in aside] == ["a", "c"]
    # the row that takes the moved row's name goes first in its cycle, the moved row last
    names = [r.entry_uuid for r in order]
    assert names.index("b") < names.index("a")
    assert names.index("e") < names.index("d") < names.index("c")


def test_the_dry_run_notes_rows_that_take_a_name_from_another():
    a, b = _row("a", "y", "x"), _row("b", "x", "y")  # a swap
    c, d = _row("c", "free", "p"), _row("new", "P", None)  # a new user takes c's old name
    e = _row("e", "e", "e")  # holds and keeps its name: takes nothing
    note_name_takers([a, b, c, d, e])
    assert a.reason == (
        "takes userName 'y' from uid=b, renamed in this run; "
        "a cycle of renames: one resource of it holds scimsync-swap.<name> first"
    )
    assert b.reason.startswith("takes userName 'x' from uid=a, renamed in this run; a cycle")
    assert d.reason == (
        "takes userName 'P' from uid=c, renamed in this run; "
        "sent again after it if the server refuses it first"
    )
    assert c.reason == e.reason == ""
