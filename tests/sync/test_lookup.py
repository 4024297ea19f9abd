"""Correlation through the server (realtime's lookup) decides as correlation over every
resource read (resync's index): the same rows, on the real scim2-server run in-process."""

from __future__ import annotations

import httpx
import pytest

from tests.support.classes import sync_class
from tests.support.scim_app import scim_app
from toolkit.mapping import load_mapping
from toolkit.plan.engine import ClassRead, PlanInputs, build
from toolkit.plan.model import Link
from toolkit.scim import ScimClient, ScimEndpoint
from toolkit.sync.lookup import ServerLookup
from toolkit.sync.state import StateStore

PEOPLE = "ou=people,dc=example,dc=com"
USERS = sync_class(correlation=(("userName",), ("displayName",)))


def _user(uid: str, uuid: str, display: str) -> dict:
    return {
        "dn": f"uid={uid},{PEOPLE}",
        "entryuuid": [uuid],
        "objectclass": ["inetOrgPerson"],
        "uid": [uid],
        "cn": [display],
        "sn": ["Lee"],
        "displayname": [display],
    }


@pytest.fixture
def world(tmp_path):
    client = ScimClient(
        ScimEndpoint("http://scim.test/v2"), transport=httpx.WSGITransport(app=scim_app())
    )
    store = StateStore(tmp_path / "state.db")
    yield client, store
    client.close()
    store.close()


def _plan(entries, links, targets=None, lookup=None):
    mappings = load_mapping()
    inputs = PlanInputs(
        pipe="p",
        classes=[ClassRead(USERS, mappings["User"], entries)],
        targets=targets or {},
        links={lk.entry_uuid: lk for lk in links},
        endpoints={"User": "/Users", "Group": "/Groups"},
        partial=True,
        lookup=lookup,
    )
    return [(r.entry_uuid, r.situation, r.scim_id, r.requests) for r in build(inputs).rows]


def test_a_name_given_up_sends_correlation_to_the_next_list_on_the_server_too(world):
    """Ann, linked, is renamed away from `ann`; a newcomer maps to `ann` and to the display
    name of an unlinked resource: both ways adopt that resource (the old realtime, which
    fetched only the first list's matches, created a second one)."""
    client, store = world
    ann_id = client.create("User", {"userName": "ann", "displayName": "Ann Lee"})["id"]
    theirs = client.create("User", {"userName": "a.new", "displayName": "Ann New"})["id"]
    ann = _user("ann.lee", "u-2", "Ann Lee")
    newcomer = _user("ann", "u-9", "Ann New")
    link = Link("u-2", ann["dn"], "users", "User", ann_id)
    store.save_links("p", [link])
    every = {"User": list(client.iter_resources("User"))}
    resync = _plan([newcomer, ann], [link], targets=every)
    lookup = ServerLookup(client, store, "p")
    realtime = _plan([newcomer, ann], [link], lookup=lookup)
    assert realtime == resync
    assert [row[:3] for row in realtime] == [
        ("u-9", "adopt", theirs),
        ("u-2", "modify", ann_id),
    ]
    assert lookup.owners == {"u-2": link}  # the owner of the first list's match, asked once


def test_matches_are_compared_as_the_index_compares_them(world):
    """The server's answers go through the index's comparison (case-insensitive, whole
    values): a looser server match is not a match."""
    client, store = world
    found = client.create("User", {"userName": "Bob", "displayName": "Bob"})["id"]
    client.create("User", {"userName": "bobby", "displayName": "Bobby"})
    lookup = ServerLookup(client, store, "p")
    assert lookup.matches("User", ("userName",), ("bob",)) == [found]
    assert lookup.get("User", found)["userName"] == "Bob"  # remembered, not asked again
    assert lookup.get("User", "no-such-id") is None
    assert lookup.owner("User", found) is None
    store.save_links("p", [Link("u-1", "uid=bob", "users", "User", found)])
    assert lookup.owner("User", found) is None  # asked once per plan: the plan's view
    assert ServerLookup(client, store, "p").owner("User", found) == "u-1"


def test_which_ids_the_server_has_is_asked_in_chunks(world, monkeypatch):
    client, store = world
    ids = [client.create("User", {"userName": f"u{i}"})["id"] for i in range(3)]
    monkeypatch.setattr("toolkit.sync.lookup.PRESENT_CHUNK", 2)
    lookup = ServerLookup(client, store, "p")
    asked = []
    find = client.find
    monkeypatch.setattr(client, "find", lambda *a, **k: asked.append(a) or find(*a, **k))
    assert lookup.present("User", [*ids, "gone-1", "gone-2"]) == set(ids)
    assert len(asked) == 3  # five ids, two a query
    assert lookup.get("User", "gone-1") is None and len(asked) == 3  # remembered absent
