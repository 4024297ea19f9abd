"""The delete guards' verdicts, as pure logic (the servers' side is in test_resync_guards)."""

from __future__ import annotations

from toolkit.config.properties import DeleteLimit
from toolkit.plan.guards import check

TEN_PERCENT = DeleteLimit(10, percent=True)


def test_within_the_threshold_is_fine():
    verdict = check(
        10,
        managed=100,
        source_count=95,
        previous_source_count=100,
        limit=TEN_PERCENT,
        partial=False,
    )
    assert verdict.ok and verdict.problems == ()


def test_past_a_percent_or_a_count_is_refused_but_overridable():
    verdict = check(11, 100, 95, 100, TEN_PERCENT, partial=False)
    assert verdict.problems == (
        "11 deletes exceed max-deletes 10% (allows 10 of 100 managed resources)",
    )
    assert verdict.overridable and not verdict.ok
    counted = check(3, 1000, 990, 1000, DeleteLimit(2, percent=False), partial=False)
    assert counted.problems == (
        "3 deletes exceed max-deletes 2 (allows 2 of 1000 managed resources)",
    )


def test_an_empty_read_is_refused_and_not_overridable():
    verdict = check(40, 40, 0, 40, DeleteLimit(100, percent=True), partial=False)
    assert not verdict.overridable
    assert verdict.problems[0].startswith(
        "the source read returned no entries while this pipe manages 40 resources"
    )


def test_an_empty_read_with_nothing_managed_is_a_first_run():
    assert check(0, 0, 0, None, TEN_PERCENT, partial=False).ok


def test_a_shrink_below_half_of_the_last_resync_is_refused():
    verdict = check(0, 100, 49, 100, DeleteLimit(100, percent=True), partial=False)
    assert verdict.problems == (
        "the source read returned 49 entries, down from 100 at the last resync (more than 50% fewer)",
    )
    assert check(0, 100, 50, 100, DeleteLimit(100, percent=True), partial=False).ok


def test_a_filtered_read_infers_nothing():
    assert check(500, 100, 0, 100, TEN_PERCENT, partial=True).ok
