"""The request-body validator against the real scim2-server's schemas, and against the server.

Unit tests use a Discovery read once from a real scim2-server (so they check the server's
schema, not a copy of it) plus hand-built AttributeInfo cases for types scim2-server's
default schema lacks. The integration tests send the same bodies to scim2-server: what the
validator accepts, the server accepts; what it rejects, the server rejects with 400, except
for the rules scim2-server does not enforce (listed in LENIENT_SERVER, checked offline only).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import pytest

from toolkit.lab.sampledata import generate
from toolkit.mapping import DictResolver, load_mapping
from toolkit.scim import ScimClient, ScimEndpoint, member_patches
from toolkit.scim.discovery import AttributeInfo, Discovery, ResourceTypeInfo
from toolkit.scim.patch import PATCH_OP_SCHEMA as PATCH_OP
from toolkit.scim.validate import Validator, request_problems

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(scope="module")
def discovery(scim_server_process) -> Discovery:
    """The real scim2-server's /ServiceProviderConfig, /ResourceTypes and /Schemas."""
    with ScimClient(ScimEndpoint(scim_server_process.url)) as client:
        return client.discovery


@pytest.fixture(scope="module")
def validator(discovery) -> Validator:
    return Validator(discovery)


def _user(user_name: str = "bjensen", **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, **extra}


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def _sample(users: int = 120, groups: int = 6) -> tuple[list[dict], list[dict]]:
    """Default-mapping bodies for sample entries, references resolved as a run would."""
    entries = list(generate(users=users, groups=groups, seed=3))
    table = {
        e["dn"][0]: ("Group" if "groupOfNames" in e.get("objectClass", []) else "User", f"id-{i}")
        for i, e in enumerate(entries)
    }
    mapping, resolver = load_mapping(None), DictResolver(table)
    people = [mapping["User"].to_scim(e, resolver) for e in entries[:users]]
    teams = [mapping["Group"].to_scim(e, resolver) for e in entries[users:]]
    return people, teams


# --- the real server's schema ----------------------------------------------------------------


def test_default_mapping_bodies_have_no_problems(validator):
    people, teams = _sample()
    assert any(ENT in p and "manager" in p[ENT] for p in people)  # references are exercised
    assert any(t.get("members") for t in teams)
    for body in people:
        assert validator.problems("User", "POST", body) == [], body["userName"]
        assert validator.problems("User", "PUT", {**body, "id": "x"}) == [], body["userName"]
    for body in teams:
        assert validator.problems("Group", "POST", body) == [], body["displayName"]


def test_patches_our_engine_builds_have_no_problems(validator):
    from toolkit.plan.engine import PlanInputs, _changes, _update_requests

    people, _ = _sample(users=40, groups=0)
    user = load_mapping(None)["User"]
    inputs = PlanInputs(pipe="p", classes=[], targets={}, links={}, endpoints={})
    for before, after in zip(people, people[1:], strict=False):
        changes = _changes(user.normalize(before), user.normalize(after))
        assert changes, "sample users differ"
        for request in _update_requests("/Users", "u1", before, after, changes, inputs):
            assert request.method == "PATCH"
            assert validator.problems("User", "PATCH", request.body) == [], request.body
    for chunk in member_patches(["u1", "u2", "u3"], ["u4", 'we"ird]id'], chunk=2):
        assert validator.problems("Group", "PATCH", _patch(*chunk)) == [], chunk
    deactivate = _patch({"op": "replace", "path": "active", "value": False})
    assert validator.problems("Users", "PATCH", deactivate) == []


def test_post_problems_name_the_attribute(validator):
    body = {
        "schemas": [USER],
        "displayName": 5,
        "groups": [{"value": "g1"}],
        "emails": [{"value": 42, "type": "work"}, "plain@example.com"],
        "name": "Barbara",
        "foo": "bar",
        "id": "chosen",
        ENT: {"costCentre": "CC1", "manager": {"value": "m1", "displayName": "Boss"}},
        "urn:example:unknown:2.0:User": {"a": 1},
        "x509Certificates": [{"value": "not base64!"}],
    }
    assert sorted(request_problems(validator.discovery, "User", "POST", body)) == sorted(
        [
            f"userName: required by {USER} but missing",
            "displayName: expected string, got 5",
            "groups: readOnly, a client cannot write it",
            "emails[0].value: expected string, got 42",
            "emails[1]: expected object, got 'plain@example.com'",
            "name: expected object, got 'Barbara'",
            f"foo: not in the server's schema ({USER})",
            "id: readOnly, a client cannot write it",
            f"{ENT}:costCentre: not in the server's schema ({ENT})",
            f"{ENT}:manager.displayName: readOnly, a client cannot write it",
            f"schemas: does not list {ENT}, which the body uses",
            "urn:example:unknown:2.0:User: not an extension of User on this server",
            "x509Certificates[0].value: expected base64 string, got 'not base64!'",
        ]
    )


def test_post_checks_types_schemas_and_case(validator):
    assert validator.problems("User", "POST", _user(active="yes")) == [
        "active: expected boolean, got 'yes'"
    ]
    assert validator.problems("User", "POST", _user(emails={"value": "a@b"})) == [
        "emails: expected a list of object, got an object"
    ]
    assert validator.problems("User", "POST", {"schemas": [GROUP], "userName": "x"}) == [
        f"schemas: does not list the core schema {USER}",
        f"schemas: {GROUP} is not a schema of User on this server",
    ]
    assert validator.problems("User", "POST", {"userName": "x"}) == [
        f"schemas: expected a list of schema URNs with {USER}"
    ]
    assert validator.problems("User", "POST", _user(meta={"version": "W/1"})) == [
        "meta: readOnly, a client cannot write it"
    ]
    # names are case-insensitive; null and absent are the same (RFC 7643 §2.5)
    relaxed = {"SCHEMAS": [USER.upper()], "USERNAME": "x", "Name": {"GIVENNAME": "B"}}
    assert validator.problems("User", "POST", {**relaxed, "title": None}) == []
    assert validator.problems("User", "POST", _user(externalId="e-1", password="pw")) == []
    assert validator.problems("Group", "POST", {"schemas": [GROUP]}) == [
        f"displayName: required by {GROUP} but missing"
    ]
    assert validator.problems("User", "POST", _user(userName="")) == [
        f"userName: required by {USER} but missing"
    ]
    assert validator.problems("User", "POST", ["not", "an", "object"]) == [
        "POST body: expected a SCIM resource object, got a list"
    ]


def test_put_ignores_read_only_values_but_checks_the_rest(validator):
    # the engine's PUT body is the server's copy less meta: id and groups stay in it
    current = _user(id="u1", groups=[{"value": "g1", "display": "staff"}], active=True)
    assert validator.problems("User", "PUT", current) == []
    assert validator.problems("User", "PUT", {"schemas": [USER], "id": "u1"}) == [
        f"userName: required by {USER} but missing"
    ]
    assert validator.problems("User", "PUT", _user(active="yes")) == [
        "active: expected boolean, got 'yes'"
    ]


def test_patch_problems_name_the_operation(validator):
    body = _patch(
        {"op": "Replace", "path": "title", "value": "CEO"},
        {"op": "replace", "path": "active", "value": "yes"},
        {"op": "add", "path": "groups", "value": [{"value": "g1"}]},
        {"op": "remove", "path": "userName"},
        {"op": "add", "path": "emails", "value": {"value": 3, "type": "work"}},
        {"op": "replace", "path": f"{ENT}:costCentre", "value": "CC"},
        {"op": "replace", "value": {"active": "no", "title": "CTO"}},
        {"op": "frobnicate", "path": "title", "value": "x"},
        {"op": "remove"},
        {"op": "add", "path": "title"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": 5},
        {"op": "replace", "path": "id", "value": "mine"},
        {"op": "replace", "path": "name.givenName", "value": "Babs"},
    )
    assert validator.problems("User", "PATCH", body) == [
        "PATCH op 2 of 13 replace active: expected boolean, got 'yes'",
        "PATCH op 3 of 13 add groups: readOnly, a client cannot write it",
        f"PATCH op 4 of 13 remove userName: required by {USER}, it cannot be removed",
        "PATCH op 5 of 13 add emails: emails.value: expected string, got 3",
        f"PATCH op 6 of 13 replace {ENT}:costCentre: not in the server's schema ({ENT})",
        "PATCH op 7 of 13 replace: active: expected boolean, got 'no'",
        "PATCH op 8 of 13: op 'frobnicate' is not add, remove or replace",
        "PATCH op 9 of 13 remove: remove needs a path",
        "PATCH op 10 of 13 add title: add needs a value",
        'PATCH op 11 of 13 replace emails[type eq "work"].value: expected string, got 5',
        "PATCH op 12 of 13 replace id: readOnly, a client cannot write it",
    ]


def test_patch_message_and_group_rules(validator):
    assert validator.problems("User", "PATCH", {"Operations": []}) == [
        f"PATCH schemas: expected [{PATCH_OP!r}]",
        "PATCH Operations: expected a non-empty list of operations",
    ]
    immutable = _patch(
        {"op": "replace", "path": "members.value", "value": "u9"},
        {"op": "add", "path": "members", "value": {"value": "u9"}},
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "replace", "path": "members", "value": [{"value": "u2", "display": 7}]},
        {"op": "remove", "path": "displayName"},
    )
    assert validator.problems("Group", "PATCH", immutable) == [
        "PATCH op 1 of 5 replace members.value: immutable, it can only be added, not replaced",
        "PATCH op 4 of 5 replace members: members[0].display: expected string, got 7",
        f"PATCH op 5 of 5 remove displayName: required by {GROUP}, it cannot be removed",
    ]
    whole_extension = _patch({"op": "replace", "path": ENT, "value": {"department": 5}})
    assert validator.problems("User", "PATCH", whole_extension) == [
        f"PATCH op 1 of 1 replace {ENT}: {ENT}:department: expected string, got 5"
    ]
    # member names of the message and of operations are case-insensitive too
    shouty = {"SCHEMAS": [PATCH_OP], "operations": [{"OP": "ADD", "Path": "title", "Value": "x"}]}
    assert validator.problems("User", "PATCH", shouty) == []
    undeclared = _patch({"op": "add", "path": "urn:example:x:2.0:User:a", "value": 1})
    assert validator.problems("User", "PATCH", undeclared) == [
        "PATCH op 1 of 1 add urn:example:x:2.0:User:a: not an extension of User on this server"
    ]


def test_delete_takes_no_body(validator):
    assert validator.problems("User", "DELETE", None) == []
    assert validator.problems("User", "delete", {"userName": "x"}) == ["DELETE takes no body"]
    assert validator.problems("User", "HEAD", None) == [
        "HEAD: not a SCIM method this validator knows"
    ]


# --- servers that describe less --------------------------------------------------------------


def test_nothing_to_validate_against_means_no_problems(discovery):
    bad = {"userName": 5, "whatever": True}
    no_schemas = Discovery.build(discovery.spc, None, None, missing=("/Schemas",))
    assert Validator(no_schemas).problems("User", "POST", bad) == []
    assert Validator(discovery).problems("Printer", "POST", bad) == []
    # an extension the resource type declares but /Schemas does not describe: accepted
    undescribed = Discovery(
        resource_types={"User": ResourceTypeInfo("User", "/Users", USER, ("urn:x:ext",))},
        schemas={USER: discovery.schemas[USER]},
    )
    body = _user(**{"urn:x:ext": {"anything": 1}}, schemas=[USER, "urn:x:ext"])
    assert Validator(undescribed).problems("User", "POST", body) == []
    path = _patch({"op": "replace", "path": "urn:x:ext:anything", "value": [1]})
    assert Validator(undescribed).problems("User", "PATCH", path) == []


def test_without_resource_types_undeclared_extensions_are_not_flagged(discovery):
    # /ResourceTypes missing: RFC defaults (no extensions), yet /Schemas describes ENT
    found = Discovery.build(
        None,
        None,
        [_raw(urn, a) for urn, a in discovery.schemas.items()],
        missing=("/ResourceTypes",),
    )
    v = Validator(found)
    ok = _user(schemas=[USER, ENT], **{ENT: {"department": "R&D"}})
    assert v.problems("User", "POST", ok) == []
    assert v.problems("User", "POST", {**ok, ENT: {"department": 5}}) == [
        f"{ENT}:department: expected string, got 5"
    ]
    assert (
        v.problems("User", "POST", _user(**{"urn:x:y": {"a": 1}}, schemas=[USER, "urn:x:y"])) == []
    )


def _raw(urn: str, attrs: tuple[AttributeInfo, ...]) -> dict[str, Any]:
    """A /Schemas resource from parsed attributes (the round trip the client makes)."""

    def one(a: AttributeInfo) -> dict[str, Any]:
        return {
            "name": a.name,
            "type": a.type,
            "multiValued": a.multi_valued,
            "mutability": a.mutability,
            "required": a.required,
            "subAttributes": [one(s) for s in a.sub_attributes],
        }

    return {"id": urn, "attributes": [one(a) for a in attrs]}


# --- types scim2-server's default schema lacks -----------------------------------------------

DEVICE = "urn:example:schemas:2.0:Device"
DEVICE_EXT = "urn:example:schemas:extension:lease:2.0:Device"


def _device_discovery() -> Discovery:
    def attr(name: str, type_: str = "string", schema: str = DEVICE, **kw: Any) -> AttributeInfo:
        return AttributeInfo(name, schema, type_, **kw)

    slot = (attr("label", required=True), attr("pos", "integer"))
    core = (
        attr("serial", required=True, mutability="immutable"),
        attr("ports", "integer"),
        attr("load", "decimal"),
        attr("seen", "dateTime"),
        attr("firmware", "binary"),
        attr("owner", "reference"),
        attr("tags", multi_valued=True),
        attr("slots", "complex", multi_valued=True, sub_attributes=slot),
        attr("rack", "complex"),  # complex without sub-attributes: any keys
        attr("uuid", required=True, mutability="readOnly"),  # never required of a client
    )
    lease = (attr("until", "dateTime", DEVICE_EXT, required=True),)
    return Discovery(
        resource_types={
            "Device": ResourceTypeInfo("Device", "/Devices", DEVICE, (DEVICE_EXT,), (DEVICE_EXT,))
        },
        schemas={DEVICE: core, DEVICE_EXT: lease},
    )


def _device(**extra: Any) -> dict[str, Any]:
    return {
        "schemas": [DEVICE, DEVICE_EXT],
        "serial": "SN1",
        DEVICE_EXT: {"until": "2030-01-01T00:00:00Z"},
        **extra,
    }


def test_edge_types_accept_what_the_rfc_allows():
    v = Validator(_device_discovery())
    good = _device(
        ports=48,
        load=0.75,
        seen="2024-02-29T23:59:60.123+05:30",
        firmware="aGVsbG8=\n",
        owner="https://example.com/Users/1",
        tags=["a", "b"],
        slots=[{"label": "top", "pos": 1}],
        rack={"row": 3, "anything": ["goes"]},
    )
    assert v.problems("Device", "POST", good) == []
    assert v.problems("Device", "POST", _device(load=2, seen="2024-01-01T10:00:00")) == []
    ops = [
        {"op": "add", "path": "serial", "value": "SN2"},
        {"op": "add", "path": "tags", "value": "c"},
        {"op": "add", "path": "slots", "value": [{"pos": 2}]},
    ]
    assert v.problems("Device", "PATCH", _patch(*ops)) == []


def test_edge_types_reject_what_it_forbids():
    v = Validator(_device_discovery())
    bad = {
        "schemas": [DEVICE],
        "ports": True,
        "load": "0.75",
        "seen": "2024-02-30 10:00",
        "firmware": "@@@",
        "owner": 7,
        "tags": ["a", 1],
        "slots": [{"pos": 1.5}],
        "rack": [],
    }
    assert v.problems("Device", "POST", bad) == [
        "ports: expected integer, got True",
        "load: expected decimal, got '0.75'",
        "seen: expected dateTime (RFC 3339), got '2024-02-30 10:00'",
        "firmware: expected base64 string, got '@@@'",
        "owner: expected reference, got 7",
        "tags[1]: expected string, got 1",
        "slots[0].pos: expected integer, got 1.5",
        f"slots[0].label: required by {DEVICE} but missing",
        "rack: expected object, got a list",
        f"serial: required by {DEVICE} but missing",
        f"{DEVICE_EXT}: extension required by Device but missing",
    ]
    patch = _patch(
        {"op": "replace", "path": "serial", "value": "SN2"},
        {"op": "remove", "path": "serial"},
        {"op": "replace", "path": f"{DEVICE_EXT}:until", "value": "tomorrow"},
    )
    assert v.problems("Device", "PATCH", patch) == [
        "PATCH op 1 of 3 replace serial: immutable, it can only be added, not replaced",
        "PATCH op 2 of 3 remove serial: immutable, it can only be added, not removed",
        f"PATCH op 3 of 3 replace {DEVICE_EXT}:until: expected dateTime (RFC 3339), got 'tomorrow'",
    ]


def test_speed_is_printed_not_asserted(validator):
    people, _ = _sample(users=200, groups=0)
    patch = _patch(
        {"op": "replace", "path": "title", "value": "Engineer"},
        {"op": "replace", "path": "emails", "value": people[0]["emails"]},
        {"op": "replace", "path": f"{ENT}:department", "value": "Sales"},
        {"op": "remove", "path": "phoneNumbers"},
    )
    count = 20_000
    start = time.perf_counter()
    for i in range(count):
        validator.problems("User", "POST", people[i % len(people)])
    posts = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(count):
        validator.problems("User", "PATCH", patch)
    patches = time.perf_counter() - start
    print(
        f"validate: {posts / count * 1e6:.1f} us per POST, {patches / count * 1e6:.1f} us per PATCH"
    )
    assert validator.problems("User", "PATCH", patch) == []


# --- agreement with the real server ----------------------------------------------------------


def _cases(uid: str, gid: str) -> list[tuple[str, str, str, Any]]:
    """(name, method, path, body) that the validator rejects and scim2-server answers 400."""
    users, user, group = "/Users", f"/Users/{uid}", f"/Groups/{gid}"
    return [
        ("missing userName", "POST", users, {"schemas": [USER], "displayName": "x"}),
        ("unknown attribute", "POST", users, _user("c1", foo="bar")),
        ("email value type", "POST", users, _user("c2", emails=[{"value": 42}])),
        ("emails not a list", "POST", users, _user("c3", emails={"value": "a@b"})),
        ("email not an object", "POST", users, _user("c4", emails=["a@b"])),
        ("name not an object", "POST", users, _user("c5", name="x")),
        ("userName type", "POST", users, {"schemas": [USER], "userName": 5}),
        ("core schema missing", "POST", users, {"schemas": [GROUP], "userName": "c6"}),
        ("unknown extension attr", "POST", users, _user("c7", **{ENT: {"costCentre": "1"}})),
        ("extension attr type", "POST", users, _user("c8", **{ENT: {"employeeNumber": 1}})),
        ("unknown extension", "POST", users, _user("c9", **{"urn:x:y": {"a": 1}})),
        ("externalId type", "POST", users, _user("c10", externalId=5)),
        (
            "binary not base64",
            "POST",
            users,
            _user("c11", x509Certificates=[{"value": "not base64!"}]),
        ),
        ("reference type", "POST", users, _user("c12", profileUrl=5)),
        ("unknown sub-attribute", "POST", users, _user("c13", name={"foo": "x"})),
        ("group displayName", "POST", "/Groups", {"schemas": [GROUP]}),
        ("PUT without userName", "PUT", user, {"schemas": [USER], "id": uid}),
        ("readOnly path", "PATCH", user, _patch({"op": "add", "path": "groups", "value": []})),
        ("unknown path", "PATCH", user, _patch({"op": "add", "path": "foo", "value": "x"})),
        ("bad op", "PATCH", user, _patch({"op": "frob", "path": "title", "value": "x"})),
        ("id path", "PATCH", user, _patch({"op": "replace", "path": "id", "value": "x"})),
        ("pathless type", "PATCH", user, _patch({"op": "replace", "value": {"active": "nope"}})),
        ("pathless unknown", "PATCH", user, _patch({"op": "replace", "value": {"bogus": 1}})),
        ("extension path", "PATCH", user, _patch({"op": "add", "path": f"{ENT}:x", "value": 1})),
        (
            "extension value",
            "PATCH",
            user,
            _patch({"op": "add", "path": f"{ENT}:department", "value": 5}),
        ),
        ("remove without path", "PATCH", user, _patch({"op": "remove"})),
        ("add without value", "PATCH", user, _patch({"op": "add", "path": "title"})),
        ("remove required", "PATCH", user, _patch({"op": "remove", "path": "userName"})),
        (
            "sub-attribute type",
            "PATCH",
            user,
            _patch({"op": "add", "path": "name.givenName", "value": 5}),
        ),
        (
            "PatchOp schema",
            "PATCH",
            user,
            {"schemas": [USER], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        ),
        (
            "immutable",
            "PATCH",
            group,
            _patch({"op": "replace", "path": "members.value", "value": "x"}),
        ),
    ]


# Rules the RFC states that scim2-server does not enforce (it answers 2xx): the validator
# still reports them, since other servers do; here they are checked offline only.
LENIENT_SERVER = [
    ("POST", _user("l1", active="yes"), "active: expected boolean, got 'yes'"),
    ("POST", _user("l2", groups=[{"value": "g"}]), "groups: readOnly, a client cannot write it"),
    ("POST", _user("l3", id="mine"), "id: readOnly, a client cannot write it"),
    ("POST", _user("l4", emails=[{"value": "a@b", "primary": "true"}]), "emails[0].primary"),
    ("POST", _user("l5", **{ENT: {"department": "x"}}), f"schemas: does not list {ENT}"),
    ("POST", {"userName": "l6"}, "schemas: expected a list"),
    # its base64 decoder skips what is not base64: "!!" decodes to nothing
    ("POST", _user("l7", x509Certificates=[{"value": "!!"}]), "x509Certificates[0].value"),
    ("PATCH", _patch({"op": "replace", "path": "active", "value": "yes"}), "expected boolean"),
]


def _resource_ids(http: httpx.Client) -> tuple[str, str]:
    uid = http.post("/Users", json=_user("target")).json()["id"]
    group = {"schemas": [GROUP], "displayName": "g", "members": [{"value": uid}]}
    gid = http.post("/Groups", json=group).json()["id"]
    return uid, gid


def _resource_type(path: str) -> str:
    return "Group" if path.startswith("/Groups") else "User"


def test_what_the_validator_rejects_the_server_rejects(scim_server, validator):
    with httpx.Client(base_url=scim_server.url, timeout=10) as http:
        uid, gid = _resource_ids(http)
        for name, method, path, body in _cases(uid, gid):
            problems = validator.problems(_resource_type(path), method, body)
            assert problems, f"{name}: the validator found nothing in {body}"
            status = http.request(method, path, json=body).status_code
            assert status == 400, f"{name}: scim2-server answered {status}; we said {problems}"


def test_rules_scim2_server_does_not_enforce_are_still_reported(validator):
    for method, body, expected in LENIENT_SERVER:
        problems = validator.problems("User", method, body)
        assert any(p.startswith(expected) or expected in p for p in problems), (body, problems)


def test_what_the_validator_accepts_the_server_accepts(scim_server, validator):
    people, teams = _sample(users=30, groups=3)
    with httpx.Client(base_url=scim_server.url, timeout=10) as http:
        ids: dict[str, str] = {}
        for body in people:
            # the sample's reference ids name nobody on this server: send them without
            body = copy.deepcopy(body)
            body.get(ENT, {}).pop("manager", None)
            assert validator.problems("User", "POST", body) == []
            answer = http.post("/Users", json=body)
            assert answer.status_code == 201, (body["userName"], answer.text)
            ids[body["userName"]] = answer.json()["id"]
        members = [{"value": i} for i in list(ids.values())[:5]]
        group = {**teams[0], "members": members}
        assert validator.problems("Group", "POST", group) == []
        answer = http.post("/Groups", json=group)
        assert answer.status_code == 201, answer.text
        gid = answer.json()["id"]
        uid = next(iter(ids.values()))

        # the engine's PUT: the server's copy less meta, with id and (from servers that
        # keep them; scim2-server does not) the read-only groups
        current = http.get(f"/Users/{uid}").json()
        put = {k: v for k, v in current.items() if k != "meta"}
        put["groups"] = [{"value": gid, "display": "staff", "type": "direct"}]
        put["title"] = "Chief"
        assert validator.problems("User", "PUT", put) == []
        assert http.put(f"/Users/{uid}", json=put).status_code == 200

        user_patch = _patch(
            {"op": "Replace", "path": "title", "value": "CEO"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "c@example.com"},
            {"op": "add", "path": "emails", "value": {"value": "d@example.com", "type": "home"}},
            {"op": "replace", "path": f"{ENT}:department", "value": "Sales"},
            {"op": "replace", "value": {"nickName": "Babs", "active": False}},
            {"op": "remove", "path": "phoneNumbers"},
        )
        assert validator.problems("User", "PATCH", user_patch) == []
        assert http.patch(f"/Users/{uid}", json=user_patch).status_code in (200, 204)

        others = list(ids.values())[5:9]
        for chunk in member_patches(others, [members[0]["value"]], chunk=2):
            assert validator.problems("Group", "PATCH", _patch(*chunk)) == []
            answer = http.patch(f"/Groups/{gid}", json=_patch(*chunk))
            assert answer.status_code in (200, 204), answer.text

        assert validator.problems("User", "DELETE", None) == []
        assert http.delete(f"/Users/{uid}").status_code == 204
