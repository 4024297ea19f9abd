"""Creates sent together in /Bulk requests where the server offers Bulk, each answer recorded
as a single create's would be: on the real scim2-server run in-process, with faults it does
not produce on demand (an operation refused, /Bulk failing as a whole) bent in by a
transport wrapper."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.classes import sync_class
from tests.support.faults import RewritingTransport
from tests.support.scim_app import scim_app
from toolkit.mapping import load_mapping
from toolkit.plan.engine import ClassRead, PlanInputs, build
from toolkit.plan.plan import Plan
from toolkit.scim import ScimClient, ScimEndpoint
from toolkit.sync.apply import Applier
from toolkit.sync.state import StateStore

PIPE = "p"
PEOPLE = "ou=people,dc=example,dc=com"
USERS = sync_class()


def _entries(n: int = 5) -> list[dict]:
    return [
        {
            "dn": f"uid=user{i},{PEOPLE}",
            "entryuuid": [f"u-{i}"],
            "objectclass": ["inetOrgPerson"],
            "uid": [f"user{i}"],
            "cn": [f"User {i}"],
            "sn": ["User"],
        }
        for i in range(n)
    ]


class _World:
    def __init__(self, tmp_path, rewrite_request=None, bulk_status: int | None = None):
        inner = httpx.WSGITransport(app=scim_app())
        self.transport = _BulkStatus(inner, bulk_status, rewrite_request)
        self.client = ScimClient(ScimEndpoint("http://scim.test/v2"), transport=self.transport)
        self.store = StateStore(tmp_path / "state.db")

    def plan(self, entries: list[dict]) -> Plan:
        mappings = load_mapping()
        result = build(
            PlanInputs(
                pipe=PIPE,
                classes=[ClassRead(USERS, mappings["User"], entries)],
                targets={"User": list(self.client.iter_resources("User"))},
                links=self.store.links(PIPE),
                endpoints={"User": "/Users", "Group": "/Groups"},
            )
        )
        return Plan(pipe=PIPE, rows=result.rows)

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path.split("/v2", 1)[1]) for r in self.transport.requests]

    def users(self) -> dict[str, dict]:
        return {u["userName"]: u for u in self.client.iter_resources("User")}

    def close(self) -> None:
        self.client.close()
        self.store.close()


class _BulkStatus(RewritingTransport):
    """/Bulk answered with `status` (and no body) when given: a server that advertises Bulk
    but fails it."""

    def __init__(self, inner, status, rewrite_request):
        super().__init__(inner, rewrite_request=rewrite_request)
        self.status = status

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.status is not None and request.url.path.endswith("/Bulk"):
            self.requests.append(request)
            return httpx.Response(self.status, json={"detail": "bulk is broken here"})
        return super().handle_request(request)


@pytest.fixture
def world(tmp_path):
    made: list[_World] = []

    def make(**options) -> _World:
        made.append(_World(tmp_path / str(len(made)), **options))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_creates_ready_together_go_in_one_bulk_request_and_are_linked(world):
    w = world()
    result = Applier(w.plan(_entries()), w.client, w.store, workers=1).run()
    assert (result.applied, result.failures) == (5, [])
    assert w.sent().count(("POST", "/Bulk")) == 1
    assert ("POST", "/Users") not in w.sent()
    users = w.users()
    links = w.store.links(PIPE)
    assert sorted(links) == [f"u-{i}" for i in range(5)]
    for key, link in links.items():
        assert link.created and link.etag  # as a single create records it
        assert users[f"user{key[2:]}"]["id"] == link.scim_id
    assert all(r.situation == "unchanged" for r in w.plan(_entries()).rows)


def test_a_create_refused_with_409_in_bulk_is_adopted_on_its_own(world):
    w = world()
    plan = w.plan(_entries())
    # made by someone else after the plan was made: the bulk operation meets 409
    theirs = w.client.create("User", {"userName": "user3", "title": "theirs"})["id"]
    result = Applier(plan, w.client, w.store, workers=1).run()
    assert (result.applied, result.failures) == (5, [])
    link = w.store.links(PIPE)["u-3"]
    assert (link.scim_id, link.created, link.form) == (theirs, False, None)
    assert len(w.users()) == 5
    # the adopt set what the entry maps; what it does not (their title) the next plan
    # removes, and the link claimed no applied form meanwhile (realtime reads it first)
    again = {r.entry_uuid: r for r in w.plan(_entries()).rows}
    assert again["u-3"].situation == "modify"
    assert again["u-3"].changes == [{"attribute": "title", "old": "theirs", "new": None}]


def test_an_operation_refused_in_bulk_fails_its_row_only(world):
    def drop_second_user_name(request: httpx.Request) -> httpx.Request:
        if not request.url.path.endswith("/Bulk"):
            return request
        body = json.loads(request.content)
        del body["Operations"][1]["data"]["userName"]  # the server requires it: 400
        return httpx.Request(
            request.method, request.url, headers=request.headers, content=json.dumps(body)
        )

    w = world(rewrite_request=drop_second_user_name)
    result = Applier(w.plan(_entries()), w.client, w.store, workers=1).run()
    assert result.applied == 4
    assert [f.row.entry_uuid for f in result.failures] == ["u-1"]
    assert [f.key for f in w.store.failures(PIPE)] == ["u-1"]
    assert sorted(w.users()) == ["user0", "user2", "user3", "user4"]


def test_a_failing_bulk_endpoint_sends_each_create_on_its_own(world):
    w = world(bulk_status=500)
    result = Applier(w.plan(_entries()), w.client, w.store, workers=1).run()
    assert (result.applied, result.failures) == (5, [])
    assert w.sent().count(("POST", "/Users")) == 5
    assert len(w.users()) == 5
