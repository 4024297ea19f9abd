"""The requests: what a dry run shows is what resync sends, and members go in PATCH chunks.

A recording transport sits in front of the real scim2-server and keeps every request the
sync code sends; the plan's `requests` are compared with it.
"""

from __future__ import annotations

import ldap3
import pytest

from tests.support.plan_env import dn_of, make_env, recording, totals, uid_of
from toolkit.config.dn import normalize_dn
from toolkit.plan.model import PENDING
from toolkit.plan.plan import Plan

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _resolved(value, ids):
    """A plan body with its pending references replaced by the ids the creates returned."""
    if isinstance(value, str) and PENDING in value:  # a body value, or a path /Groups/<pending>
        prefix, _, dn = value.partition(PENDING)
        return prefix + ids[normalize_dn(dn)]
    if isinstance(value, list):
        return [_resolved(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolved(v, ids) for k, v in value.items()}
    return value


def _ids_after(env):
    users, groups = env.scim_users(), env.scim_groups()
    ids = {
        normalize_dn(dn_of(p)): users[uid_of(p)]["id"] for p in env.people() if uid_of(p) in users
    }
    ids.update({normalize_dn(dn_of(g)): groups[g["cn"][0]]["id"] for g in env.sample_groups()})
    return ids


def _canonical(requests):
    import json

    return sorted(json.dumps(r, sort_keys=True) for r in requests)


def _plan_requests(plan, ids):
    return [
        (r.method, _resolved(r.path, ids), _resolved(r.body, ids))
        for row in plan.rows
        for r in row.requests
    ]


@pytest.mark.parametrize("update_method", ["patch", "put"])
def test_resync_sends_exactly_the_requests_the_dry_run_shows(
    slapd, scim_server, tmp_path, monkeypatch, update_method
):
    # small member chunks: groups are created by a POST and PATCHes to the pending id
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=40, groups=4, member_chunk_size=5)
    if update_method == "put":
        text = env.config_path.read_text().replace(
            "    server: [test-scim]\n", "    server: [test-scim]\n    update-method: put\n"
        )
        env.config_path.write_text(text)

    # the first run: creates, with pending references to users created in the same run
    first_plan = env.folder / "first.json"
    with recording(monkeypatch) as dry_rec:
        assert env.cli("dry-run", "--output", str(first_plan)).code == 0
    assert {m for m, _, _ in dry_rec.requests} == {"GET"}  # a dry run only reads
    plan = Plan.load(first_plan)
    assert any(PENDING in str(r.requests[0].body) for r in plan.rows)  # a manager, a member
    assert any(PENDING in r.path for row in plan.rows for r in row.requests[1:])
    with recording(monkeypatch) as rec:
        assert env.cli_json("resync")["failed"] == 0
    sent = rec.writes()
    assert _canonical(sent) == _canonical(_plan_requests(plan, _ids_after(env)))
    # the server offers Bulk: creates ready at once went together (one waiting for its
    # manager's id goes when that is known, alone if no other create is ready then)
    alone = sum(1 for m, p, _ in rec.requests if (m, p) == ("POST", "/Users"))
    assert rec.bulk_requests() > 0
    assert sum(1 for m, p, _ in sent if (m, p) == ("POST", "/Users")) > 2 * alone

    # a second run with modifies, a delete and member changes
    people = env.people()
    env.ldap.modify(dn_of(people[3]), {"title": [(ldap3.MODIFY_REPLACE, ["Changed"])]})
    env.ldap.modify(
        dn_of(people[4]),
        {"mobile": [(ldap3.MODIFY_REPLACE, ["+1 555 0100"])], "l": [(ldap3.MODIFY_DELETE, [])]},
    )
    env.ldap.delete(dn_of(env.loner()))
    group = env.sample_groups()[0]
    outsiders = [dn_of(p) for p in people if dn_of(p) not in group["member"]][:3]
    env.ldap.modify(
        dn_of(group),
        {
            "member": [
                (ldap3.MODIFY_ADD, outsiders),
                (ldap3.MODIFY_DELETE, group["member"][:2]),
            ]
        },
    )
    ids = _ids_after(env)
    second_plan = env.folder / "second.json"
    assert env.cli("dry-run", "--output", str(second_plan)).code == 0
    plan = Plan.load(second_plan)
    assert plan.totals()["modify"] == 3 and plan.totals()["delete"] == 1
    with recording(monkeypatch) as rec:
        result = env.cli_json("resync")
    assert (result["applied"], result["failed"]) == (4, 0)
    assert _canonical(rec.writes()) == _canonical(_plan_requests(plan, ids))
    methods = sorted(m for m, _, _ in rec.writes())
    if update_method == "put":  # users are replaced; group members still go as PATCH
        assert methods == ["DELETE", "PATCH", "PUT", "PUT"]
    else:
        assert methods == ["DELETE", "PATCH", "PATCH", "PATCH"]
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups - 1)
    env.close()


def _member_ops(body):
    ops = body["Operations"]
    removes = [op for op in ops if op["op"] == "remove"]
    adds = [v for op in ops if op["op"] == "add" for v in op["value"]]
    assert all(op["path"] == "members" for op in ops if op["op"] == "add")
    assert all(op["path"].startswith("members[value eq ") for op in removes)
    assert not any(op["op"] == "replace" for op in ops)  # never the whole member list
    return removes, adds


@pytest.mark.parametrize(("chunk", "added", "removed"), [(None, 130, 20), (7, 12, 5)])
def test_member_changes_go_as_patch_chunks(
    slapd, scim_server, tmp_path, monkeypatch, chunk, added, removed
):
    props = {"member_chunk_size": chunk} if chunk else {}
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=300, groups=3, **props)
    size = chunk or 100  # member-chunk-size defaults to 100
    assert env.cli_json("resync")["failed"] == 0
    group = env.sample_groups()[1]
    members = set(group["member"])
    joining = [dn_of(p) for p in env.people() if dn_of(p) not in members][:added]
    leaving = group["member"][:removed]
    env.ldap.modify(
        dn_of(group),
        {"member": [(ldap3.MODIFY_ADD, joining), (ldap3.MODIFY_DELETE, leaving)]},
    )
    ids = _ids_after(env)
    plan_file = env.folder / "plan.json"
    assert env.cli("dry-run", "--output", str(plan_file)).code == 0
    (row,) = [r for r in Plan.load(plan_file).rows if r.situation == "modify"]
    assert row.changes == [
        {
            "attribute": "members",
            "add": sorted(ids[normalize_dn(d)] for d in joining),
            "remove": sorted(ids[normalize_dn(d)] for d in leaving),
        }
    ]
    changes = added + removed
    assert len(row.requests) == -(-changes // size)
    seen_adds, seen_removes = [], []
    for request in row.requests:
        assert request.method == "PATCH" and request.body["schemas"] == [PATCH_OP]
        removes, adds = _member_ops(request.body)
        assert len(removes) + len(adds) <= size
        seen_adds += [a["value"] for a in adds]
        seen_removes += [r["path"].split('"')[1] for r in removes]
    assert sorted(seen_adds) == row.changes[0]["add"]
    assert sorted(seen_removes) == row.changes[0]["remove"]

    with recording(monkeypatch) as rec:
        result = env.cli_json("resync")
    assert (result["applied"], result["failed"]) == (1, 0)
    assert [(m, b) for m, _, b in rec.writes()] == [(r.method, r.body) for r in row.requests]
    now = {m["value"] for m in env.scim_groups()[group["cn"][0]]["members"]}
    assert now == {ids[normalize_dn(d)] for d in (members - set(leaving)) | set(joining)}
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)
    env.close()
