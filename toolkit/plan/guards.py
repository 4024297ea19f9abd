"""Guards against mass deletion: a threshold, an empty read, a sharply shrunken read.

Users of other tools lose whole directories to a source read that came back empty or short
(a wrong base, a missing ACL, a replica not yet populated). A plan is refused rather than
taken as "everyone left".
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.config.properties import DeleteLimit
from toolkit.errors import FatalError

#: A read below this share of the last completed resync's source count is refused.
SHRINK_FLOOR = 0.5


class GuardRefused(FatalError):
    """A run the guards refused: a failed check (exit 1), not a usage error (exit 2)."""

    exit_code = 1


@dataclass(frozen=True)
class GuardVerdict:
    problems: tuple[str, ...]  # why the plan must not be applied as it is
    overridable: (
        bool  # --allow-deletes may override (the threshold and a shrink, not an empty read)
    )

    @property
    def ok(self) -> bool:
        return not self.problems


def check(
    deletes: int,
    managed: int,
    source_count: int,
    previous_source_count: int | None,
    limit: DeleteLimit,
    partial: bool,
) -> GuardVerdict:
    """Judge a plan's deletes. `managed`: the resources this pipe links to."""
    if partial:
        return GuardVerdict((), True)  # a filtered read infers no deletes
    if source_count == 0 and managed > 0:
        return GuardVerdict(
            (
                f"the source read returned no entries while this pipe manages {managed} resources: "
                "refusing to treat that as everyone leaving; check base DNs, filters and the bind's rights",
            ),
            False,
        )
    problems = []
    if previous_source_count and source_count < previous_source_count * SHRINK_FLOOR:
        problems.append(
            f"the source read returned {source_count} entries, down from {previous_source_count} "
            f"at the last resync (more than {100 - SHRINK_FLOOR * 100:.0f}% fewer)"
        )
    allowed = limit.allowed(managed)
    if deletes > allowed:
        problems.append(
            f"{deletes} deletes exceed max-deletes {limit} (allows {allowed} of {managed} managed resources)"
        )
    return GuardVerdict(tuple(problems), True)
