"""Applying through the loopback fault proxy in front of scim2-server.

A create the server applied but answered with a 5xx: the client retries the POST (5xx are
retriable), the retry meets the resource with 409, and the Applier's adopt path links it:
one resource, linked, no failure. A fatal error in the middle (a 401 on one create): the
Applier sends no new row, lets the rows in flight finish and records them, and raises the
error; every resource the server created is linked. Each both ways: creates sent one by one,
and together in /Bulk (where a retried /Bulk meets 409 on each of its creates, each then
sent alone and adopted).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.support.faults import FaultProxy, Seen
from tests.support.plan_env import make_env, totals, uid_of
from toolkit.errors import FatalError
from toolkit.scim import ScimClient
from toolkit.sync.apply import Applier
from toolkit.sync.batch import RunOptions, make_plan, open_session


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    yield env
    env.close()


@pytest.fixture
def proxy(scim_server):
    p = FaultProxy("127.0.0.1", scim_server.port).start()
    yield p
    p.stop()


def _creates(user_name: str):
    """Matches a POST creating this user, alone or among the operations of a /Bulk."""

    def accepts(seen: Seen) -> bool:
        if seen.method != "POST" or not seen.body:
            return False
        body = json.loads(seen.body)
        bodies = [op.get("data") or {} for op in body.get("Operations", [])] or [body]
        return any(b.get("userName") == user_name for b in bodies)

    return accepts


@pytest.mark.parametrize("bulk", [False, True], ids=["alone", "bulk"])
@pytest.mark.parametrize("status", ["500", "502", "504"])
def test_a_create_applied_then_answered_5xx_is_retried_and_adopted(env, proxy, status, bulk):
    person = env.people()[3]
    name = uid_of(person)
    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        row = next(r for r in plan.rows if r.dn == person["dn"][0])
        assert row.situation == "create"
        endpoint = replace(session.client.endpoint, url=proxy.url(), backoff_base=0.01)
        with ScimClient(endpoint) as client:
            proxy.inject(status, 1, forward=True, when=_creates(name))
            result = Applier(plan, client, session.store, workers=2, bulk=bulk).run()
        link = session.store.link(plan.pipe, row.entry_uuid)

    assert (result.applied, result.failed) == (env.users + env.groups, 0)
    posts = [(s.path.rsplit("/", 1)[-1], s.fault) for s in proxy.seen if _creates(name)(s)]
    if bulk:  # the retried /Bulk answered 409 for it: then sent alone, 409 again, adopted
        assert posts == [("Bulk", status), ("Bulk", None), ("Users", None)]
    else:  # the retry: answered 409 by the server
        assert posts == [("Users", status), ("Users", None)]
    users = env.scim_users()
    assert len(users) == env.users  # created once, not twice
    assert link is not None and link.scim_id == users[name]["id"]
    assert link.created is False  # linked by the adopt path (the client cannot tell it created)
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


@pytest.mark.parametrize("bulk", [False, True], ids=["alone", "bulk"])
def test_a_fatal_error_stops_sending_and_keeps_what_was_done(env, proxy, bulk):
    name = uid_of(env.people()[3])
    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        assert plan.totals()["create"] == env.users + env.groups
        endpoint = replace(session.client.endpoint, url=proxy.url())
        with ScimClient(endpoint) as client:
            proxy.inject("401", 1, when=_creates(name))
            with pytest.raises(FatalError, match="401"):
                Applier(plan, client, session.store, workers=2, bulk=bulk).run()
        links = session.store.links(plan.pipe)

    posts = [s for s in proxy.seen if s.method == "POST"]
    assert [s.fault for s in posts if _creates(name)(s)] == ["401"]
    users = env.scim_users()
    assert name not in users
    if bulk:  # no new request after the fatal one: at most the other worker's in flight
        (refused,) = [i for i, p in enumerate(posts) if p.fault == "401"]
        assert len(posts) - refused - 1 <= 1
    else:
        assert len(posts) < env.users + env.groups  # stopped: no new row after the fatal one
        assert len(users) == len(posts) - 1  # all but the refused one were created...
    linked = {lk.scim_id for lk in links.values()}
    assert {u["id"] for u in users.values()} <= linked  # ...and each is linked
