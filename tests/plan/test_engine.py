"""build() over data in memory: the shortcut for resources already as mapped, and references.

Pure logic (no server): the integration tests in tests/sync/test_batch_*.py and tests/sync/test_apply_*.py run the
same engine against the real slapd and scim2-server.
"""

from __future__ import annotations

import copy

import pytest

from tests.support.classes import sync_class
from toolkit.mapping import DictResolver, load_mapping
from toolkit.plan.engine import ClassRead, PlanInputs, build
from toolkit.plan.model import Link, pending_ref
from toolkit.plan.plan import Plan

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PEOPLE = "ou=people,dc=example,dc=com"


def _user(uid: str, uuid: str, title: str, manager: str | None = None) -> dict:
    entry = {
        "dn": f"uid={uid},{PEOPLE}",
        "entryuuid": [uuid],
        "objectclass": ["inetOrgPerson"],
        "uid": [uid],
        "cn": [uid.title()],
        "sn": [uid.title()],
        "title": [title],
        "mail": [f"{uid}@example.com"],
    }
    if manager:
        entry["manager"] = [f"uid={manager},{PEOPLE}"]
    return entry


@pytest.fixture(scope="module")
def mappings():
    return load_mapping()


def _plan(mappings, result) -> Plan:
    return Plan("p", result.rows, views={m.name: m.mapped_view for m in mappings})


def _inputs(mappings, entries, targets, links, groups=()):
    classes = [ClassRead(sync_class("users", 100), mappings["User"], entries)]
    if groups:
        classes.append(ClassRead(sync_class("groups", 200), mappings["Group"], list(groups)))
    return PlanInputs(
        pipe="p",
        classes=classes,
        targets={"User": targets, "Group": []},
        links={lk.entry_uuid: lk for lk in links},
        endpoints={"User": "/Users", "Group": "/Groups"},
    )


def _stored(mappings, entry, scim_id, ids):
    """The resource as a server stores what resync sent: to_scim output, with id and meta."""
    resource = mappings["User"].to_scim(entry, DictResolver(ids))
    return {**resource, "id": scim_id, "meta": {"version": f'W/"{scim_id}"'}}


def _group(*members: str) -> dict:
    return {
        "dn": "cn=eng,ou=groups,dc=example,dc=com",
        "entryuuid": ["g-1"],
        "objectclass": ["groupOfNames"],
        "cn": ["eng"],
        "member": list(members),
    }


def _link(entry, scim_id):
    return Link(entry["entryuuid"][0], entry["dn"], "users", "User", scim_id)


def test_resources_as_mapped_are_unchanged_and_other_spellings_too(mappings):
    boss = _user("boss", "u-1", "CEO")
    ann = _user("ann", "u-2", "Engineer", manager="boss")
    ids = {boss["dn"]: ("User", "s-1")}
    stored = [_stored(mappings, boss, "s-1", ids), _stored(mappings, ann, "s-2", ids)]
    respelled = copy.deepcopy(stored[1])
    respelled["USERNAME"] = respelled.pop("userName")  # a server's own spelling: same form
    for targets in (stored, [stored[0], respelled]):
        plan = build(
            _inputs(mappings, [boss, ann], targets, [_link(boss, "s-1"), _link(ann, "s-2")])
        )
        assert [(r.dn, r.situation, r.requests) for r in plan.rows] == [
            (boss["dn"], "unchanged", []),
            (ann["dn"], "unchanged", []),
        ]
        desired = _plan(mappings, plan).desired(plan.rows[1])
        assert desired[ENTERPRISE]["manager"] == {"value": "s-1"}


def test_a_changed_value_and_a_changed_manager_are_patched(mappings):
    boss, other = _user("boss", "u-1", "CEO"), _user("other", "u-3", "CFO")
    ann = _user("ann", "u-2", "Engineer", manager="boss")
    ids = {boss["dn"]: ("User", "s-1"), other["dn"]: ("User", "s-3")}
    targets = [
        _stored(mappings, e, s, ids) for e, s in ((boss, "s-1"), (ann, "s-2"), (other, "s-3"))
    ]
    links = [_link(boss, "s-1"), _link(ann, "s-2"), _link(other, "s-3")]
    ann2 = _user("ann", "u-2", "Architect", manager="other")
    plan = build(_inputs(mappings, [boss, ann2, other], targets, links))
    row = next(r for r in plan.rows if r.dn == ann["dn"])
    assert row.situation == "modify"
    assert row.requests[0].method == "PATCH" and row.requests[0].path == "/Users/s-2"
    ops = {op["path"]: op.get("value") for op in row.requests[0].body["Operations"]}
    assert ops == {"title": "Architect", f"{ENTERPRISE}:manager": {"value": "s-3"}}
    assert row.content_hash() and row.form  # rows with requests carry their comparable form


def test_a_match_linked_to_another_entry_is_a_conflict_until_that_entry_lets_it_go(mappings):
    ann = _user("ann", "u-2", "Engineer")
    newcomer = _user("ann", "u-9", "Intern")  # a new entry taking the userName "ann"
    targets = [_stored(mappings, ann, "s-2", {})]
    targets[0]["externalId"] = "elsewhere"  # so that userName decides
    links = [_link(ann, "s-2")]
    plan = build(_inputs(mappings, [newcomer, ann], targets, links))
    rows = {r.entry_uuid: r for r in plan.rows}
    assert rows["u-9"].situation == "conflict"
    assert rows["u-9"].reason == "1 target, linked to another entry, matches on userName: s-2"
    assert "userName" not in {c["attribute"] for c in rows["u-2"].changes}
    # ann renamed: her resource will not match "ann" once applied, so the newcomer is a
    # create (the Applier sends it after ann's rename; tests/sync/test_apply_names.py)
    ann_now = _user("ann.lee", "u-2", "Engineer")
    plan = build(_inputs(mappings, [newcomer, ann_now], targets, links))
    rows = {r.entry_uuid: r for r in plan.rows}
    assert (rows["u-9"].situation, rows["u-9"].scim_id) == ("create", None)
    assert (rows["u-2"].situation, rows["u-2"].scim_id) == ("modify", "s-2")
    assert "userName" in {c["attribute"] for c in rows["u-2"].changes}
    # Once ann's entry is gone from the read, her resource is the newcomer's to adopt, and
    # not also a delete: applying both would delete what the newcomer just took over.
    plan = build(_inputs(mappings, [newcomer], targets, links))
    assert [(r.entry_uuid, r.situation, r.scim_id) for r in plan.rows] == [("u-9", "adopt", "s-2")]
    assert plan.stale_links == links  # dropped when applied; the adopt links s-2 to u-9


def test_a_manager_nobody_can_name_is_left_out(mappings):
    ann = _user("ann", "u-2", "Engineer", manager="gone")
    plan = build(_inputs(mappings, [ann], [], []))
    (row,) = plan.rows
    assert row.situation == "create"
    assert "manager" not in row.requests[0].body.get(ENTERPRISE, {})
    assert "unresolved" in row.reason


def test_members_resolve_to_ids_and_to_pending_creates(mappings):
    boss, ann = _user("boss", "u-1", "CEO"), _user("ann", "u-2", "Engineer")
    # one member spelled as read, one in another spelling of the same DN
    group = _group(boss["dn"], f"UID=Ann, {PEOPLE.upper()}")
    targets = [_stored(mappings, boss, "s-1", {})]
    plan = build(_inputs(mappings, [boss, ann], targets, [_link(boss, "s-1")], [group]))
    row = next(r for r in plan.rows if r.resource_type == "Group")
    members = row.requests[0].body["members"]
    assert members[0] == {"value": "s-1", "type": "User"}
    assert members[1]["value"] == pending_ref(ann["dn"])  # the id ann's create will get


def test_references_to_entries_without_an_id_are_left_out_silently(mappings):
    # A manager whose entry conflicts (two unlinked targets match it) will have no id this
    # run: a linked report (mapped once ids are decided) and an unlinked one (mapped before,
    # with tokens) both leave the manager out without calling it unresolved.
    boss = _user("boss", "u-1", "CEO")
    twins = [
        {"schemas": [], "id": f"t-{n}", "userName": "boss", "meta": {"version": "1"}}
        for n in (1, 2)
    ]
    linked = _user("ann", "u-2", "Engineer", manager="boss")
    unlinked = _user("bob", "u-3", "Engineer", manager="boss")
    targets = [*twins, _stored(mappings, linked, "s-2", {})]
    plan = build(_inputs(mappings, [boss, linked, unlinked], targets, [_link(linked, "s-2")]))
    rows = {r.dn: r for r in plan.rows}
    assert rows[boss["dn"]].situation == "conflict"
    for entry, situation in ((linked, "unchanged"), (unlinked, "create")):
        row = rows[entry["dn"]]
        assert row.situation == situation and "unresolved" not in row.reason
        assert "manager" not in (_plan(mappings, plan).desired(row).get(ENTERPRISE) or {})


def test_a_linked_group_names_new_members_by_their_pending_id(mappings):
    boss, ann = _user("boss", "u-1", "CEO"), _user("ann", "u-2", "Engineer")
    group = _group(boss["dn"])
    stored_group = {
        **mappings["Group"].to_scim(group, DictResolver({boss["dn"]: ("User", "s-1")})),
        "id": "g-s",
        "meta": {"version": "1"},
    }
    group_link = Link("g-1", group["dn"], "groups", "Group", "g-s")
    grown = _group(boss["dn"], ann["dn"])
    inputs = _inputs(
        mappings,
        [boss, ann],
        [_stored(mappings, boss, "s-1", {})],
        [_link(boss, "s-1"), group_link],
        [grown],
    )
    inputs.targets["Group"] = [stored_group]
    row = next(r for r in build(inputs).rows if r.resource_type == "Group")
    assert row.situation == "modify"
    (request,) = row.requests
    assert request.body["Operations"] == [
        {"op": "add", "path": "members", "value": [{"value": pending_ref(ann["dn"])}]}
    ]


# --- remembered targets: realtime's forms of linked resources -------------------------------


def _sample(users: int = 300, groups: int = 8) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    """The lab's sample entries (non-ASCII names, several mails and phones, addresses,
    managers, groups), and an id for every DN (as a resync would have linked them)."""
    from toolkit.lab import sampledata

    entries = list(sampledata.generate(users, groups, seed=3))
    ids = {}
    for n, entry in enumerate(entries):
        kind = "Group" if "member" in entry else "User"
        ids[entry["dn"][0]] = (kind, f"{kind[0].lower()}-{n}")
    return entries, ids


def test_normalizing_a_form_again_changes_nothing(mappings):
    """What lets realtime diff against a remembered form without normalizing it again."""
    entries, ids = _sample()
    resolver = DictResolver(ids)
    for entry in entries:
        mapping = mappings["Group" if "member" in entry else "User"]
        form = mapping.normalize(mapping.to_scim(entry, resolver))
        assert mapping.normalize(form) == form, entry["dn"][0]
        assert mapping.normalize(form, like=(form, form)) == form, entry["dn"][0]


def _edited(entry: dict, n: int) -> dict:
    """The entry after an LDAP modify: a new title, and every third one a mail less."""
    edited = {**entry, "title": [f"Title {n}"]}
    if n % 3 == 0 and len(entry.get("mail", ())) > 1:
        edited["mail"] = entry["mail"][1:]
    return edited


def _one(mappings, entry, target, link, ids):
    """build() for one entry, as realtime's reconcile calls it."""
    links = {link.entry_uuid: link}
    for dn, (_, scim_id) in ids.items():  # references are named through links
        links.setdefault(dn, Link(dn, dn, "users", "User", scim_id))
    inputs = PlanInputs(
        pipe="p",
        classes=[ClassRead(sync_class("users", 100), mappings["User"], [entry])],
        targets={"User": [target]},
        links=links,
        endpoints={"User": "/Users", "Group": "/Groups"},
        partial=True,
    )
    (row,) = build(inputs).rows
    return row


def test_a_remembered_form_plans_what_the_resource_it_stands_for_plans(mappings):
    entries, ids = _sample(120, 0)
    mapping = mappings["User"]
    for n, entry in enumerate(entries):
        entry = {**entry, "entryuuid": [f"uuid-{n}"]}
        scim_id = ids[entry["dn"][0]][1]
        resource = {
            **mapping.to_scim(entry, DictResolver(ids)),
            "id": scim_id,
            "meta": {"version": f'W/"{n}"'},
        }
        form = mapping.normalize(resource)
        remembered = {**form, "id": scim_id, "meta": {"version": f'W/"{n}"'}}
        link = Link(f"uuid-{n}", entry["dn"][0], "users", "User", scim_id, f'W/"{n}"', form=form)
        for edited in (_edited(entry, n), entry):
            read = _one(mappings, edited, resource, link, ids)
            kept = _one(mappings, edited, remembered, link, ids)
            assert (kept.situation, kept.changes, kept.requests) == (
                read.situation,
                read.changes,
                read.requests,
            ), entry["dn"][0]
            assert kept.etag == read.etag
            if kept.form and read.form:  # (a read resource as mapped takes a shortcut: none)
                assert (kept.form, kept.hash) == (read.form, read.hash)


def test_a_remembered_form_holding_what_is_no_longer_mapped_is_normalized_again(mappings):
    """A form written under an earlier mapping: what the mapping no longer maps (or spells
    otherwise) is never taken for a value to remove."""
    entries, ids = _sample(3, 0)
    entry = {**entries[0], "entryuuid": ["uuid-0"]}
    mapping = mappings["User"]
    scim_id = ids[entry["dn"][0]][1]
    form = mapping.normalize(mapping.to_scim(entry, DictResolver(ids)))
    link = Link("uuid-0", entry["dn"][0], "users", "User", scim_id, 'W/"1"', form=form)
    meta = {"id": scim_id, "meta": {"version": 'W/"1"'}}
    unmapped = {**form, "nickName": "jd", **meta}
    respelled = {**{k: v for k, v in form.items() if k != "userName"}, **meta}
    respelled["USERNAME"] = form["userName"]
    for target in (unmapped, respelled):
        row = _one(mappings, entry, target, link, ids)
        assert (row.situation, row.requests) == ("unchanged", []), target
        row = _one(mappings, _edited(entry, 1), target, link, ids)
        assert [c["attribute"] for c in row.changes] == ["title"]
