"""The quick check: an object found unchanged is not mapped again while its inputs are equal.

Pure engine tests first (what changes a key, and that a plan with keys equals one without),
then the dry run against the real slapd and scim2-server: edits on either side, and a
reference that changes, are all found although the other objects are skipped.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import ldap3
import pandas as pd
import pytest

from tests.plan.test_engine import _group, _inputs, _link, _stored, _user
from tests.support.plan_env import ENTERPRISE, PEOPLE, dn_of, make_env, totals, uid_of
from toolkit.config.dn import normalize_dn
from toolkit.ldap.search import ReadEntry, paged_search
from toolkit.mapping import DictResolver, ResourceMapping, load_mapping
from toolkit.plan.engine import build
from toolkit.plan.model import Link
from toolkit.plan.plan import Plan
from toolkit.plan.quickcheck import QuickCheck
from toolkit.sync.batch import RunOptions, dry_run
from toolkit.sync.state import StateStore
from toolkit.widgets.plan_explorer import records_frame


@pytest.fixture(scope="module")
def mappings():
    return load_mapping()


def _rows(result):
    return [
        (r.dn, r.situation, r.scim_id, r.reason, [q.as_dict() for q in r.requests], r.changes)
        for r in result.rows
    ]


@pytest.fixture
def mapped(monkeypatch):
    """The DNs `to_scim` maps, in order."""
    seen: list[str] = []
    real = ResourceMapping.to_scim

    def to_scim(self, entry, *args, **kwargs):
        seen.append(normalize_dn(entry["dn"]))
        return real(self, entry, *args, **kwargs)

    monkeypatch.setattr(ResourceMapping, "to_scim", to_scim)
    return seen


def _world(mappings):
    """Three linked users (ann reports to boss), a linked group, all as the server holds them."""
    boss, ann, cat = (
        _user("boss", "u-1", "CEO"),
        _user("ann", "u-2", "Engineer", manager="boss"),
        _user("cat", "u-3", "CFO"),
    )
    ids = {boss["dn"]: ("User", "s-1"), ann["dn"]: ("User", "s-2"), cat["dn"]: ("User", "s-3")}
    targets = [_stored(mappings, e, s, ids) for e, s in ((boss, "s-1"), (ann, "s-2"), (cat, "s-3"))]
    group = _group(boss["dn"], ann["dn"])
    stored_group = {
        **mappings["Group"].to_scim(group, DictResolver(ids)),
        "id": "g-s",
        "meta": {"version": 'W/"g1"'},
    }
    links = [_link(boss, "s-1"), _link(ann, "s-2"), _link(cat, "s-3")]
    links.append(Link("g-1", group["dn"], "groups", "Group", "g-s"))
    inputs = _inputs(mappings, [boss, ann, cat], targets, links, [group])
    inputs.targets["Group"] = [stored_group]
    return inputs


def _keys(inputs):
    """The keys a first plan (comparing every object) finds."""
    first = build(replace(inputs, quick_check_keys={}))
    assert {r.situation for r in first.rows} == {"unchanged"}
    assert set(first.quick_check_keys) == {"u-1", "u-2", "u-3", "g-1"}
    return first.quick_check_keys


def test_a_plan_with_keys_maps_nothing_unchanged_and_equals_one_without(mappings, mapped):
    inputs = _world(mappings)
    keys = _keys(inputs)
    mapped.clear()
    quick = build(replace(inputs, quick_check_keys=keys))
    assert mapped == [] and quick.quick_check_keys == {}  # nothing mapped, nothing new to remember
    full = build(inputs)
    assert _rows(quick) == _rows(full)
    views = {read.mapping.name: read.mapping.mapped_view for read in inputs.classes}
    fast_plan, slow_plan = Plan("p", quick.rows, views=views), Plan("p", full.rows, views=views)
    ids = DictResolver({lk.dn: (lk.resource_type, lk.scim_id) for lk in inputs.links.values()})
    for fast, slow in zip(quick.rows, full.rows, strict=True):
        assert fast.desired is slow.desired is None  # unchanged rows keep no mapped copy
        assert fast.target is slow.target and fast.etag == slow.etag
        mapped_now = mappings[fast.resource_type].to_scim(fast.source, ids)
        assert fast_plan.desired(fast) == slow_plan.desired(slow) == mapped_now


def _edit_entry(inputs):
    inputs.classes[0].entries[2]["title"] = ["COO"]  # cat
    return "u-3", "modify"


def _edit_target(inputs):
    # another SCIM client renamed cat: the server's version changes with it
    cat = inputs.targets["User"][2]
    cat["title"], cat["meta"] = "Chief", {"version": 'W/"s-3b"'}
    return "u-3", "modify"


def _relink_manager(inputs):
    # boss's resource was replaced (a new id): ann's manager and the group's member change
    boss = inputs.targets["User"][0]
    inputs.targets["User"][0] = {**boss, "id": "s-9", "meta": {"version": 'W/"s-9"'}}
    inputs.links["u-1"] = replace(inputs.links["u-1"], scim_id="s-9")
    return "u-2", "modify"


def _change_class(inputs):
    # the class's definition is part of every key of its objects
    read = inputs.classes[0]
    inputs.classes[0] = replace(read, sync_class=replace(read.sync_class, resource="User"))
    return "u-3", "unchanged"


def _drop_version(inputs):
    inputs.targets["User"][2]["meta"] = {}  # a server without versions: always compared
    return "u-3", "unchanged"


@pytest.mark.parametrize(
    "edit", [_edit_entry, _edit_target, _relink_manager, _change_class, _drop_version]
)
def test_any_changed_input_is_compared_again(mappings, mapped, edit):
    inputs = _world(mappings)
    keys = _keys(inputs)
    inputs = copy.deepcopy(inputs)
    entry_key, situation = edit(inputs)
    mapped.clear()
    quick = build(replace(inputs, quick_check_keys=keys))
    rows = {r.entry_uuid: r for r in quick.rows}
    assert rows[entry_key].situation == situation
    assert normalize_dn(rows[entry_key].dn) in mapped
    assert _rows(quick) == _rows(build(inputs))  # the same plan as comparing everything


def test_a_relinked_manager_is_found_through_the_references(mappings, mapped):
    inputs = _world(mappings)
    keys = _keys(inputs)
    _relink_manager(inputs)
    mapped.clear()
    rows = {r.entry_uuid: r for r in build(replace(inputs, quick_check_keys=keys)).rows}
    ops = rows["u-2"].requests[0].body["Operations"]
    assert ops == [{"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "s-9"}}]
    assert rows["g-1"].situation == "modify"  # boss's membership moves to the new id
    assert rows["u-3"].situation == "unchanged"
    assert normalize_dn(_user("cat", "u-3", "CFO")["dn"]) not in mapped


def _verdict_key(mappings, entry) -> bytes:
    read = _world(mappings).classes[0]
    target = {"id": "s-1", "meta": {"version": 'W/"1"'}}
    context = QuickCheck.context(read.sync_class, mappings["User"])
    key = QuickCheck.key(context, entry, target, '["User", "s-0"]')
    assert key is not None
    return key


def test_keys_are_the_same_in_another_process(mappings):
    """No identity, hash seed or address goes into a key: the next run computes the same."""
    entry = _user("ann", "u-2", "Engineer", manager="boss")
    read = ReadEntry(entry)
    read.digest = b"d" * 16
    here = [_verdict_key(mappings, entry).hex(), _verdict_key(mappings, read).hex()]
    assert here[0] != here[1]
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        "from tests.plan.test_quickcheck import _verdict_key, _user, ReadEntry, load_mapping\n"
        "m = load_mapping(); e = _user('ann', 'u-2', 'Engineer', manager='boss')\n"
        "r = ReadEntry(e); r.digest = b'd' * 16\n"
        "print(_verdict_key(m, e).hex(), _verdict_key(m, r).hex())"
    )
    root = str(Path(__file__).parents[2])
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code, root], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == here


# --- against the real servers ----------------------------------------------------------------


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=30, groups=3)
    assert env.cli_json("resync")["failed"] == 0
    yield env
    env.close()


def test_the_reader_digests_each_entry_as_sent(env):
    def read() -> dict[str, ReadEntry]:
        conn = env.slapd.connect()
        try:
            return {e["dn"]: e for e in paged_search(conn, PEOPLE, "(uid=*)", ["uid", "title"])}
        finally:
            conn.unbind()

    first, again = read(), read()
    assert {dn: e.digest for dn, e in first.items()} == {dn: e.digest for dn, e in again.items()}
    assert len({e.digest for e in first.values()}) == len(first)
    someone = dn_of(env.people()[0])
    env.ldap.modify(someone, {"title": [(ldap3.MODIFY_REPLACE, ["Changed"])]})
    after = read()
    changed = {dn for dn, e in after.items() if e.digest != first[dn].digest}
    assert changed == {someone}


def test_dry_runs_skip_what_was_found_unchanged_and_find_every_edit(env, mapped):
    store = StateStore(env.config().state_dir / "state.db")
    everything = totals(unchanged=33)
    assert env.cli_json("dry-run")["totals"] == everything  # compares all, remembers all
    assert len(store.quick_check_keys("ldap-to-scim")) == 33
    mapped.clear()
    assert env.cli_json("dry-run")["totals"] == everything
    assert mapped == []
    said = env.cli("dry-run").out
    assert "33 unchanged objects were not compared again" in said and "--full-compare" in said

    people = env.people()
    edited, renamed, managed = people[3], people[4], people[5]
    env.ldap.modify(dn_of(edited), {"title": [(ldap3.MODIFY_REPLACE, ["Night Owl"])]})
    users = env.scim_users()
    with httpx.Client(base_url=env.scim.url, timeout=30) as client:  # another SCIM client
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Someone Else"}],
        }
        response = client.patch(f"/Users/{users[uid_of(renamed)]['id']}", json=patch)
        assert response.status_code in (200, 204), response.text
    current = set(managed.get("manager", []))
    new_manager = next(dn_of(p) for p in people[:3] if dn_of(p) not in current)
    env.ldap.modify(dn_of(managed), {"manager": [(ldap3.MODIFY_REPLACE, [new_manager])]})

    mapped.clear()
    plan = env.cli_json("dry-run")
    assert plan["totals"] == totals(modify=3, unchanged=30)
    assert sorted(mapped) == sorted(normalize_dn(dn_of(p)) for p in (edited, renamed, managed))
    full = env.cli_json("dry-run", "--full-compare")
    full.pop("reads"), plan.pop("reads")  # what each read since the run before differs
    assert full == plan and len(mapped) == 3 + 33  # --full-compare maps every object
    store.close()

    # the exploring frames show the same records either way
    config = env.config()
    quick_plan = dry_run(config, RunOptions())
    full_plan = dry_run(config, RunOptions(full_compare=True))
    assert quick_plan.quick_checked == 30 and full_plan.quick_checked == 0
    pd.testing.assert_frame_equal(quick_plan.side_by_side(), full_plan.side_by_side())
    fast = next(r for r in quick_plan.rows if r.situation == "unchanged")
    slow = next(r for r in full_plan.rows if r.dn == fast.dn)
    pd.testing.assert_frame_equal(  # the plan explorer's records of one object
        records_frame(fast, quick_plan.desired(fast)), records_frame(slow, full_plan.desired(slow))
    )


def test_the_state_store_keeps_keys_per_pipe_and_drops_them_with_the_link(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.save_quick_check_keys("a", {"u-1": b"1" * 16, "u-2": b"2" * 16})
    store.save_quick_check_keys("b", {"u-1": b"3" * 16})
    store.save_quick_check_keys("a", {"u-2": b"4" * 16})  # found unchanged again, on new inputs
    assert store.quick_check_keys("a") == {"u-1": b"1" * 16, "u-2": b"4" * 16}
    store.delete_links("a", ["U-1"])
    assert store.quick_check_keys("a") == {"u-2": b"4" * 16}
    assert store.quick_check_keys("b") == {"u-1": b"3" * 16}
    store.close()


def test_a_target_spelling_its_references_in_another_key_order_is_still_skipped(mappings, mapped):
    inputs = _world(mappings)
    group = inputs.targets["Group"][0]
    group["members"] = [{"type": m["type"], "value": m["value"]} for m in group["members"]]
    keys = _keys(inputs)
    mapped.clear()
    quick = build(replace(inputs, quick_check_keys=keys))
    assert quick.quick_checked == 4 and mapped == []
    assert _rows(quick) == _rows(build(inputs))


def test_the_resolvers_outcome_tells_every_answer_apart():
    from toolkit.plan.engine import _Dns, _Resolver

    dns = _Dns()
    for dn, kind in (("uid=a,o=x", "User"), ("uid=b,o=x", "User"), ("cn=g,o=x", "Group")):
        dns.add(dn, kind)
    resolver = _Resolver(dns)
    resolver.ids = {"uid=a,o=x": "1", "uid=b,o=x": "2", "cn=g,o=x": "1"}
    outcome = resolver.outcome
    assert outcome(["UID=A, O=X"]) == outcome(["uid=a,o=x"])  # another spelling, one DN
    assert outcome(["uid=zz,o=x"]) is None  # unknown: the mapping reports it
    texts = [
        outcome([]),
        outcome(["uid=a,o=x"]),
        outcome(["uid=b,o=x"]),
        outcome(["cn=g,o=x"]),  # the same id, another resource type
        outcome(["uid=a,o=x", "uid=b,o=x"]),
        outcome(["uid=b,o=x", "uid=a,o=x"]),
    ]
    resolver.ids = {"uid=a,o=x": "1,2", "cn=g,o=x": "1"}  # an id with a separator in it
    texts += [outcome(["uid=a,o=x"]), outcome(["uid=b,o=x"])]  # b known, but without an id
    assert len(set(texts)) == len(texts)
