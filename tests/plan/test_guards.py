"""The guards' verdicts, as pure logic (the servers' side is in tests/sync/test_batch_guards.py)."""

from __future__ import annotations

import pytest

from toolkit.config.properties import DeleteLimit
from toolkit.plan.guards import (
    ALLOW_DELETES,
    ALLOW_RECREATE,
    DeleteBudget,
    GuardInputs,
    check,
)
from toolkit.plan.model import DELETE, MODIFY, UNCHANGED, Link, Row

TEN_PERCENT = DeleteLimit(10, percent=True)
ALL = DeleteLimit(100, percent=True)


def _links(**per_class: int) -> dict[str, Link]:
    """`users=90, groups=10`: links of those classes (groups are Group resources)."""
    links = {}
    for name, count in per_class.items():
        kind = "Group" if name.startswith("group") else "User"
        for i in range(count):
            links[f"{name}-{i}"] = Link(f"{name}-{i}", f"cn={name}{i}", name, kind, f"{name}-id{i}")
    return links


def _rows(links: dict[str, Link], deleted: set[str], removed: dict[str, int] | None = None):
    """A row per link: a delete for the keys in `deleted`, else unchanged (or a modify
    removing an attribute: `removed` maps attribute -> how many rows lose it)."""
    removed = dict(removed or {})
    rows = []
    for key, link in links.items():
        base = {
            "class_name": link.class_name,
            "dn": link.dn,
            "entry_uuid": key,
            "resource_type": link.resource_type,
            "scim_id": link.scim_id,
        }
        if key in deleted:
            rows.append(Row(situation=DELETE, **base))
            continue
        changes = []
        for attribute, left in removed.items():
            if left and link.class_name == "users":
                changes.append({"attribute": attribute, "old": "x", "new": None})
                removed[attribute] = left - 1
        situation = MODIFY if changes else UNCHANGED
        rows.append(Row(situation=situation, changes=changes, source={"dn": link.dn}, **base))
    return rows


def _judge(links, rows, limit=TEN_PERCENT, previous=None, partial=False, present=None):
    reads: dict[str, int] = {name: 0 for name in {lk.class_name for lk in links.values()}}
    for row in rows:
        if row.source is not None:
            reads[row.class_name] += 1
    if present is None:
        present = {}
        for link in links.values():
            present.setdefault(link.resource_type, set()).add(link.scim_id)
    return check(
        GuardInputs(
            rows=rows,
            links=links,
            present=present,
            class_reads=reads,
            filters={name: f"(scope of {name})" for name in reads},
            source_count=sum(reads.values()),
            previous_source_count=previous,
            limit=limit,
            partial=partial,
        )
    )


def test_within_the_threshold_is_fine():
    links = _links(users=90, groups=10)
    verdict = _judge(links, _rows(links, {f"users-{i}" for i in range(9)}), previous=100)
    assert verdict.ok and verdict.problems == () and verdict.warnings == ()
    assert verdict.refusal() is None


def test_past_a_percent_or_a_count_is_refused_but_overridable():
    links = _links(users=100)
    rows = _rows(links, {f"users-{i}" for i in range(11)})
    verdict = _judge(links, rows)
    assert verdict.problems == (
        "11 deletes exceed max-deletes 10% (allows 10 of 100 managed resources)",
        "class users: 11 deletes exceed max-deletes 10% (allows 10 of 100 managed resources)",
    )
    assert verdict.overridable and not verdict.ok
    assert verdict.refusal(allow_deletes=True) is None
    assert "pass --allow-deletes to apply anyway" in verdict.refusal()
    counted = _judge(links, _rows(links, {"users-1", "users-2", "users-3"}), DeleteLimit(2, False))
    assert counted.problems == (
        "3 deletes exceed max-deletes 2 (allows 2 of 100 managed resources)",
    )


def test_a_class_emptied_by_its_filter_is_refused_though_the_total_is_within_limits():
    """The groups typo: 50 of 552 managed resources is within 10% in total."""
    links = _links(users=502, groups=50)
    rows = _rows(links, {f"groups-{i}" for i in range(50)})
    verdict = _judge(links, rows)
    assert len([r for r in rows if r.situation == DELETE]) <= TEN_PERCENT.allowed(552)
    assert verdict.problems == (
        "class groups read no entries while this pipe manages 50 of its resources: does its "
        "scope match nothing ((scope of groups))? Applying would delete them all",
    )
    assert verdict.findings[0].override == ALLOW_DELETES


def test_a_class_shrunk_below_half_and_a_class_past_its_percent():
    links = _links(users=100, groups=20)
    shrunk = _judge(links, _rows(links, {f"groups-{i}" for i in range(11)}), limit=ALL)
    assert shrunk.problems == (
        "class groups read 9 entries for the 20 resources this pipe manages for it "
        "(more than 50% fewer; scope (scope of groups))",
    )
    past = _judge(links, _rows(links, {f"groups-{i}" for i in range(3)}))
    assert past.problems == (
        "class groups: 3 deletes exceed max-deletes 10% (allows 2 of 20 managed resources)",
    )


def test_a_percent_per_class_allows_one_delete_at_least():
    links = _links(users=100, groups=3)
    assert _judge(links, _rows(links, {"groups-0"})).ok
    assert not _judge(links, _rows(links, {"groups-0", "groups-1"})).ok


def test_an_empty_read_is_refused_and_not_overridable():
    links = _links(users=40)
    verdict = _judge(links, _rows(links, set(links)), limit=ALL, previous=40)
    assert not verdict.overridable
    assert verdict.problems[0].startswith(
        "the source read returned no entries while this pipe manages 40 resources"
    )
    assert verdict.refusal(allow_deletes=True, allow_recreate=True) is not None


def test_an_empty_read_with_nothing_managed_is_a_first_run():
    assert _judge({}, []).ok


def test_a_shrink_below_half_of_the_last_resync_is_refused():
    links = _links(users=100)
    verdict = _judge(links, _rows(links, set()), limit=ALL, previous=201)
    assert verdict.problems == (
        "the source read returned 100 entries, down from 201 at the last resync (more than 50% fewer)",
    )
    assert _judge(links, _rows(links, set()), limit=ALL, previous=200).ok


def test_a_filtered_read_infers_nothing():
    links = _links(users=100)
    assert _judge(links, _rows(links, set(links)), partial=True).ok


@pytest.mark.parametrize("partial", [False, True])
def test_every_linked_resource_gone_from_the_server_is_refused(partial):
    links = _links(users=30, groups=6)
    present = {"User": {"users-id1"}, "Group": set()}  # the groups' tenant was wiped
    verdict = _judge(links, _rows(links, set()), present=present, partial=partial)
    assert verdict.problems == (
        "none of the 6 Group resources this pipe linked is on the server any more: a server "
        "that was wiped, or a URL pointing at another tenant? Applying would create them all again",
    )
    assert verdict.findings[0].override == ALLOW_RECREATE
    assert verdict.refusal(allow_deletes=True) is not None
    assert verdict.refusal(allow_recreate=True) is None
    few = _links(users=30, groups=4)  # below VANISHED_MIN: recreated as usual
    assert _judge(few, _rows(few, set()), present=present).ok


def test_an_attribute_removed_from_most_of_a_class_warns():
    links = _links(users=20)
    verdict = _judge(links, _rows(links, set(), removed={"title": 11, "mobile": 10}))
    assert verdict.ok  # a warning never blocks
    assert verdict.warnings == (
        "class users: title would be removed from 11 of 20 objects (55%); check the mapping's "
        "source of title",
    )


def test_the_realtime_budget_holds_deletes_past_the_limit_per_class_and_window():
    budget = DeleteBudget(TEN_PERCENT, {"users": 100, "groups": 20}, window=3600)
    assert [budget.take("users", now=1000 + i) for i in range(10)] == [None] * 10
    held = budget.take("users", now=1100)
    assert held.startswith(
        "held back by the delete guard: class users had 10 deletes in the last 1 h, "
        "max-deletes 10% allows 10 of the 100 resources it managed"
    )
    assert budget.take("groups", now=1100) is None  # 2 of 20 allowed
    assert budget.take("groups", now=1101) is None
    assert budget.take("groups", now=1102).startswith("held back by the delete guard: class groups")
    assert budget.take("users", now=1000 + 3601) is None  # the first delete left the window


def test_the_realtime_budget_counts_deletes_before_a_restart():
    # 10 deletes in the window, 90 users managed now: 10% of the 100 the window began with
    recent = [("users", 500.0 + i) for i in range(10)]
    budget = DeleteBudget(TEN_PERCENT, {"users": 90}, window=3600, recent=recent, now=1000)
    assert "10 deletes in the last 1 h" in budget.take("users", now=1000)
    budget.recount({"users": 90}, now=4200)  # the window has moved past them
    assert budget.take("users", now=4200) is None


def test_the_realtime_budget_at_100_percent_never_holds_a_delete():
    budget = DeleteBudget(DeleteLimit(100, percent=True), {"users": 5}, window=3600, now=0)
    for i in range(5):
        assert budget.take("users", now=i) is None
        budget.recount({"users": 4 - i}, now=i)  # each delete leaves one fewer managed
