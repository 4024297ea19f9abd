"""Duplicates on the SCIM side are a plan situation of their own ("duplicate").

Two runs at once once made 40 LDAP groups into 80 SCIM groups, and later dry runs (also
--full-compare) said everything was unchanged. The plan now shows each unlinked copy of a
resource this pipe manages (same externalId, or same correlation values), and sends nothing
for it. Pure build() tests first, then the CLI against slapd and the real scim2-server.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from tests.plan.test_engine import _link, _stored, _user
from tests.support.classes import sync_class
from tests.support.realtime_env import GROUPS, make_rt
from toolkit.mapping import DictResolver, load_mapping
from toolkit.plan.engine import ClassRead, PlanInputs, build
from toolkit.plan.model import Link
from toolkit.plan.plan import Plan


@pytest.fixture(scope="module")
def mappings():
    return load_mapping()


def _group_entry(cn: str, uuid: str) -> dict:
    return {
        "dn": f"cn={cn},ou=groups,dc=example,dc=com",
        "entryuuid": [uuid],
        "objectclass": ["groupOfNames"],
        "cn": [cn],
    }


def _stored_group(mappings, entry: dict, scim_id: str) -> dict:
    resource = mappings["Group"].to_scim(entry, DictResolver({}))
    return {**resource, "id": scim_id, "meta": {"version": f'W/"{scim_id}"'}}


def _groups_inputs(mappings, entries, targets, links, quick_check_keys=None) -> PlanInputs:
    groups = replace(
        sync_class("groups", 200),
        destination_correlation_attributes=(("externalId",), ("displayName",)),
    )
    return PlanInputs(
        pipe="p",
        classes=[ClassRead(groups, mappings["Group"], entries)],
        targets={"Group": targets},
        links={lk.entry_uuid: lk for lk in links},
        endpoints={"Group": "/Groups"},
        quick_check_keys=quick_check_keys,
    )


def _group_link(entry: dict, scim_id: str) -> Link:
    return Link(entry["entryuuid"][0], entry["dn"], "groups", "Group", scim_id)


def _situations(result) -> list[tuple[str, str | None, str]]:
    return [(r.situation, r.scim_id, r.dn) for r in result.rows]


def test_an_unlinked_copy_of_a_linked_group_is_a_duplicate_row_that_sends_nothing(mappings):
    staff, admins = _group_entry("staff", "g-1"), _group_entry("admins", "g-2")
    targets = [
        _stored_group(mappings, staff, "s-1"),
        _stored_group(mappings, admins, "s-2"),
        _stored_group(mappings, staff, "s-3"),  # the copy a second run at once created
    ]
    links = [_group_link(staff, "s-1"), _group_link(admins, "s-2")]
    result = build(_groups_inputs(mappings, [staff, admins], targets, links))
    assert _situations(result) == [
        ("unchanged", "s-1", staff["dn"]),
        ("unchanged", "s-2", admins["dn"]),
        ("duplicate", "s-3", ""),
    ]
    row = result.rows[2]
    assert row.requests == [] and row.class_name == "groups" and row.resource_type == "Group"
    assert row.reason == (
        f"duplicates Group s-1 (linked to {staff['dn']}) on externalId 'g-1'; "
        "a run leaves it: remove or keep it by hand"
    )
    plan = Plan("p", result.rows)
    assert plan.totals()["duplicate"] == 1 and plan.totals()["unchanged"] == 2
    assert plan.as_summary_json()["classes"]["groups"]["duplicate"] == 1
    assert plan.summary().loc["total", "duplicate"] == 1
    assert [r.scim_id for r in plan.duplicates()] == ["s-3"]


def test_the_quick_check_does_not_hide_a_duplicate(mappings):
    staff = _group_entry("staff", "g-1")
    targets = [_stored_group(mappings, staff, "s-1")]
    links = [_group_link(staff, "s-1")]
    first = build(_groups_inputs(mappings, [staff], targets, links, quick_check_keys={}))
    assert first.quick_check_keys  # the linked group is found unchanged: its key is kept
    # then the copy appears; the linked group is skipped by its key, the copy still found
    targets.append(_stored_group(mappings, staff, "s-3"))
    second = build(
        _groups_inputs(mappings, [staff], targets, links, quick_check_keys=first.quick_check_keys)
    )
    assert second.quick_checked == 1
    assert _situations(second) == [("unchanged", "s-1", staff["dn"]), ("duplicate", "s-3", "")]


def test_a_copy_with_another_external_id_is_a_duplicate_by_its_correlation_values(mappings):
    ann = _user("ann", "u-2", "Engineer")
    linked = _stored(mappings, ann, "s-2", {})
    copy = {**linked, "id": "s-9", "externalId": "elsewhere", "meta": {"version": 'W/"9"'}}
    inputs = PlanInputs(
        pipe="p",
        classes=[ClassRead(sync_class("users", 100), mappings["User"], [ann])],
        targets={"User": [linked, copy]},
        links={"u-2": _link(ann, "s-2")},
        endpoints={"User": "/Users"},
    )
    result = build(inputs)
    assert _situations(result) == [("unchanged", "s-2", ann["dn"]), ("duplicate", "s-9", "")]
    assert result.rows[1].reason.startswith(
        f"duplicates User s-2 (linked to {ann['dn']}) on userName 'ann'; "
    )


def test_copies_nobody_links_are_duplicates_by_external_id_only(mappings):
    staff = _group_entry("staff", "g-1")
    one, two = _stored_group(mappings, staff, "s-1"), _stored_group(mappings, staff, "s-2")
    # neither is ours and no entry is read: the same externalId is one object twice
    result = build(_groups_inputs(mappings, [], [one, two], []))
    assert _situations(result) == [("duplicate", "s-2", "")]
    assert "(neither is linked to this pipe) on externalId 'g-1'" in result.rows[0].reason
    # the same name only may be two real objects: not a duplicate
    other = {**two, "externalId": "g-7"}
    assert build(_groups_inputs(mappings, [], [one, other], [])).rows == []


def test_a_match_an_entry_adopts_is_not_a_duplicate_and_two_matches_stay_a_conflict(mappings):
    staff = _group_entry("staff", "g-1")
    one = _stored_group(mappings, staff, "s-1")
    adopted = build(_groups_inputs(mappings, [staff], [one], []))
    assert _situations(adopted) == [("adopt", "s-1", staff["dn"])]
    # two unlinked copies: the entry cannot choose (conflict); the copy is named as well
    two = _stored_group(mappings, staff, "s-2")
    result = build(_groups_inputs(mappings, [staff], [one, two], []))
    assert [r.situation for r in result.rows] == ["conflict", "duplicate"]
    assert result.rows[1].scim_id == "s-2" and result.rows[1].requests == []


def test_the_copy_of_a_resource_being_deleted_is_left_alone(mappings):
    staff = _group_entry("staff", "g-1")
    targets = [_stored_group(mappings, staff, "s-1"), _stored_group(mappings, staff, "s-3")]
    result = build(_groups_inputs(mappings, [], targets, [_group_link(staff, "s-1")]))
    assert [(r.situation, r.scim_id) for r in result.rows] == [
        ("delete", "s-1"),
        ("duplicate", "s-3"),
    ]
    assert result.rows[1].requests == []


# --- against slapd and the real scim2-server ---------------------------------------------------


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=20, groups=4)
    yield rt
    rt.close()


def test_the_dry_run_shows_a_copy_made_beside_a_linked_group(rt):
    first = rt.sample_groups()[0]["dn"][0]
    cn = first.split(",")[0].split("=")[1]
    assert first.lower().endswith(GROUPS)
    original = rt.groups()[cn]
    with httpx.Client(base_url=rt.scim.url, timeout=30) as http:
        body = {k: v for k, v in original.items() if k not in ("id", "meta")}
        made = http.post("/Groups", json=body)
        assert made.status_code == 201, made.text
        copy = made.json()["id"]

    def dry_run(*extra: str) -> dict:
        data = rt.cli_json("dry-run", *extra)
        assert data["totals"]["duplicate"] == 1, data
        assert data["totals"]["unchanged"] == len(rt.entries), data
        return data

    dry_run("--full-compare")
    dry_run()  # records the unchanged keys
    quick = rt.cli_ok("dry-run")  # the quick check: unchanged objects skipped
    assert "were not compared again" in quick.out
    assert "1 SCIM resources duplicate ones this pipe manages" in quick.out
    assert f"Group {copy}: duplicates Group {original['id']} (linked to " in quick.out
    assert f"on externalId '{original['externalId']}'" in quick.out
    rt.cli_ok("dry-run", "--output", str(rt.folder / "plan.html"))
    assert "1 SCIM resources duplicate ones" in (rt.folder / "plan.html").read_text()
    # resync sends nothing for it: both copies stay, the operator decides
    applied = rt.cli_json("resync")
    assert (applied["applied"], applied["failed"], applied["totals"]["duplicate"]) == (0, 0, 1)
    names = [g["id"] for g in rt.all("/Groups") if g["displayName"] == cn]
    assert sorted(names) == sorted([original["id"], copy])
    assert rt.cli_json("dry-run", "--full-compare")["totals"]["duplicate"] == 1
