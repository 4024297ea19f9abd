"""ScimClient against the real scim2-server (uvicorn subprocess, emptied before each test)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from toolkit.errors import FatalError, SkippableError
from toolkit.scim import (
    ConfigurationError,
    Conflict,
    NotFound,
    PreconditionFailed,
    ScimClient,
    ScimEndpoint,
    check_scim_server,
    eq,
    member_patches,
    sw,
)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def client(scim_server):
    with ScimClient(ScimEndpoint(scim_server.url)) as c:
        yield c


def _user(name: str, **extra) -> dict:
    return {"userName": name, **extra}


def _bulk_users(client: ScimClient, count: int, prefix: str = "user") -> list[str]:
    ops = [
        client.bulk_operation("POST", "User", data=_user(f"{prefix}{i:04}"), bulk_id=f"u{i}")
        for i in range(count)
    ]
    results = client.bulk(ops)
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    return [r.id for r in results]


def test_discovery_reads_the_real_server(client):
    d = client.discovery
    assert d.missing == ()
    caps = d.capabilities
    assert caps.patch and caps.bulk and caps.etag and caps.filter and not caps.cursor
    assert d.resource_type("User").endpoint == "/Users"
    assert ENT in d.resource_type("User").extensions
    assert d.is_writable("User", "userName") and not d.is_writable("User", "id")
    assert d.is_writable("User", f"{ENT}:employeeNumber")
    assert client.discovery is d  # cached


def test_every_verb_with_etags(client):
    created = client.create(
        "User", _user("bjensen", displayName="Barbara", **{ENT: {"employeeNumber": "7"}})
    )
    uid = created["id"]
    assert created["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENT]
    v1 = client.etag("User", uid)
    assert v1 == created["meta"]["version"]

    assert client.get("User", uid)["displayName"] == "Barbara"
    only = client.get("User", uid, attributes=["userName"])
    assert only["userName"] == "bjensen" and "displayName" not in only

    replaced = client.replace("User", uid, {"userName": "bjensen", "displayName": "Babs"})
    v2 = client.etag("User", uid)
    assert replaced["displayName"] == "Babs" and v2 != v1

    assert client.patch("User", uid, [{"op": "replace", "path": "title", "value": "CEO"}]) is None
    v3 = client.etag("User", uid)
    assert v3 not in (v1, v2)  # 204 carried the new ETag
    returned = client.patch(
        "User", uid, [{"op": "add", "path": "nickName", "value": "BJ"}], attributes=["nickName"]
    )
    assert returned["nickName"] == "BJ"

    page = client.search("User", eq("userName", "bjensen"))
    assert [r["id"] for r in page.resources] == [uid] and page.total_results == 1

    client.delete("User", uid)
    assert client.etag("User", uid) is None
    with pytest.raises(NotFound) as info:
        client.get("User", uid)
    assert isinstance(info.value, SkippableError) and info.value.status == 404
    with pytest.raises(NotFound):
        client.delete("User", uid)


def test_duplicate_username_is_a_conflict_with_scim_type(client):
    client.create("User", _user("dup@example.com"))
    for name in ("dup@example.com", "DUP@example.com"):
        with pytest.raises(Conflict) as info:
            client.create("User", _user(name))
        err = info.value
        assert isinstance(err, SkippableError)
        assert err.scim_type == "uniqueness" and err.status == 409
        assert err.request.method == "POST" and err.request.body["userName"] == name
        assert "POST" in str(err) and "/Users" in str(err) and "409" in str(err)


def test_stale_if_match_is_precondition_failed_for_patch_put_delete(client):
    uid = client.create("User", _user("etag"))["id"]
    stale = client.etag("User", uid)
    client.patch("User", uid, [{"op": "replace", "path": "title", "value": "A"}])
    for call in (
        lambda: client.patch(
            "User", uid, [{"op": "replace", "path": "title", "value": "B"}], if_match=stale
        ),
        lambda: client.replace("User", uid, _user("etag", title="C"), if_match=stale),
        lambda: client.delete("User", uid, if_match=stale),
    ):
        with pytest.raises(PreconditionFailed) as info:
            call()
        assert info.value.status == 412 and info.value.request.headers["if-match"] == stale
    assert client.get("User", uid)["title"] == "A"  # nothing was applied


def test_remembered_etag_detects_a_concurrent_change(client, scim_server):
    uid = client.create("User", _user("shared"))["id"]
    with ScimClient(ScimEndpoint(scim_server.url)) as other:
        other.patch(
            "User", uid, [{"op": "replace", "path": "title", "value": "theirs"}], if_match=False
        )
    with pytest.raises(PreconditionFailed):
        client.patch("User", uid, [{"op": "replace", "path": "title", "value": "mine"}])
    client.get("User", uid)  # re-read refreshes the ETag
    client.patch("User", uid, [{"op": "replace", "path": "title", "value": "mine"}])
    assert client.get("User", uid)["title"] == "mine"


@pytest.mark.parametrize(
    "name",
    ['a"b\\c', '\\"', 'x") or (userName pr', "back\\\\slash", 'Jürgen "Jü" Ødegård', "tab\there"],
)
def test_filter_values_with_quotes_and_backslashes_round_trip(client, name):
    created = client.create("User", _user(name))
    client.create("User", _user("decoy"))
    found = client.find("User", eq("userName", name))
    assert [r["id"] for r in found] == [created["id"]]
    assert found[0]["userName"] == name


def test_paging_across_many_pages_deduplicates_and_stops(client):
    ids = _bulk_users(client, 57)
    before = client.requests_sent
    seen = list(client.iter_resources("User", page_size=10))
    assert sorted(r["id"] for r in seen) == sorted(ids)
    assert client.requests_sent - before == 6  # 5 full pages and a short one, no extra probe
    thin = list(
        client.iter_resources(
            "User", sw("userName", "user000"), attributes=["userName"], page_size=3
        )
    )
    assert sorted(r["userName"] for r in thin) == [f"user{i:04}" for i in range(10)]
    assert all(set(r) <= {"id", "userName", "schemas", "meta"} for r in thin)
    assert list(client.iter_resources("User", eq("userName", "nobody"))) == []


def test_bulk_with_bulk_id_cross_reference(client):
    ops = [
        client.bulk_operation("POST", "User", data=_user("alice"), bulk_id="alice"),
        client.bulk_operation(
            "POST",
            "Group",
            data={"displayName": "team", "members": [{"value": "bulkId:alice"}]},
            bulk_id="team",
        ),
    ]
    results = client.bulk(ops)
    assert [r.status for r in results] == [201, 201]
    user_id, group_id = results[0].id, results[1].id
    group = client.get("Group", group_id)
    assert [m["value"] for m in group["members"]] == [user_id]
    assert client.etag("Group", group_id) == results[1].version


def test_bulk_split_by_max_operations_resolves_references_across_requests(scim_server):
    endpoint = ScimEndpoint(scim_server.url, overrides={"bulk_max_operations": 2})
    with ScimClient(endpoint) as client:
        ops = [
            client.bulk_operation("POST", "User", data=_user(f"m{i}"), bulk_id=f"m{i}")
            for i in range(3)
        ]
        ops.append(
            client.bulk_operation(
                "POST",
                "Group",
                data={"displayName": "g", "members": [{"value": f"bulkId:m{i}"} for i in range(3)]},
                bulk_id="g",
            )
        )
        ops.append(client.bulk_operation("POST", "User", data=_user("m0"), bulk_id="dup"))
        before = client.requests_sent
        results = client.bulk(ops)
        assert client.requests_sent - before == 3
        assert [r.ok for r in results] == [True, True, True, True, False]
        assert isinstance(results[4].error, Conflict) and results[4].status == 409
        members = {m["value"] for m in client.get("Group", results[3].id)["members"]}
        assert members == {r.id for r in results[:3]}


def test_bulk_falls_back_to_single_requests_without_server_support(scim_server):
    with ScimClient(ScimEndpoint(scim_server.url, overrides={"bulk": False})) as client:
        ops = [
            client.bulk_operation("POST", "User", data=_user("solo"), bulk_id="s"),
            client.bulk_operation(
                "POST", "Group", data={"displayName": "solos", "members": [{"value": "bulkId:s"}]}
            ),
            client.bulk_operation(
                "PATCH", "User", "bulkId:s", [{"op": "add", "path": "title", "value": "T"}]
            ),
            client.bulk_operation("DELETE", "User", "missing"),
        ]
        results = client.bulk(ops)
        assert [r.status for r in results] == [201, 201, 204, 404]
        assert isinstance(results[3].error, NotFound)
        assert client.get("User", results[0].id)["title"] == "T"
        assert client.get("Group", results[1].id)["members"] == [{"value": results[0].id}]


def test_member_patches_change_a_group_in_chunks(client):
    ids = _bulk_users(client, 12, prefix="member")
    group = client.create(
        "Group", {"displayName": "big", "members": [{"value": i} for i in ids[:6]]}
    )
    added, removed = ids[6:], ids[:3]
    requests = member_patches(added, removed, chunk=4)
    assert len(requests) == 3
    for ops in requests:
        client.patch("Group", group["id"], ops)
    members = {m["value"] for m in client.get("Group", group["id"])["members"]}
    assert members == set(ids[3:])


def test_concurrent_workers_share_one_client(client):
    names = [f"worker{i:03}" for i in range(60)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        created = list(pool.map(lambda n: client.create("User", _user(n)), names))
    assert len({u["id"] for u in created}) == 60
    assert all(client.etag("User", u["id"]) for u in created)
    assert sorted(u["userName"] for u in client.iter_resources("User", page_size=25)) == names
    assert threading.active_count() < 50


def test_wrong_base_url_is_a_configuration_error(scim_server):
    url = scim_server.url.replace("/v2", "/nothing/here")
    with ScimClient(ScimEndpoint(url)) as client:
        with pytest.raises(ConfigurationError) as info:
            client.discover()
    assert isinstance(info.value, FatalError) and "404" in str(info.value)


def test_check_scim_server_passes_and_fails_with_fixes(client):
    mapping = {
        "User": [
            "externalId",
            "userName",
            "name.givenName",
            "emails",
            "password",
            f"{ENT}:employeeNumber",
        ],
        "Group": ["displayName", "members", "members.value"],
    }
    results = check_scim_server(client, mapping, update_method="patch")
    failed = [r for r in results if not r.ok]
    assert failed == [], failed
    names = [r.name for r in results]
    assert "/ServiceProviderConfig" in names and "User attribute emails" in names

    bad = check_scim_server(
        client, {"User": ["userName", "id", "favouriteColour"], "Device": ["x"]}
    )
    by_name = {r.name: r for r in bad}
    assert by_name["User attribute userName"].ok
    assert not by_name["User attribute id"].ok and "readOnly" in by_name["User attribute id"].detail
    assert not by_name["User attribute favouriteColour"].ok
    assert "favouriteColour" in by_name["User attribute favouriteColour"].detail
    assert (
        not by_name["resource type Device"].ok and "User" in by_name["resource type Device"].detail
    )
    assert all(r.fix for r in bad if not r.ok)


def test_check_scim_server_reports_an_unreachable_server():
    with ScimClient(
        ScimEndpoint("http://127.0.0.1:9/v2", max_attempts=1, connect_timeout=1)
    ) as client:
        results = check_scim_server(client, {"User": ["userName"]})
    assert len(results) == 1 and not results[0].ok and results[0].fix
