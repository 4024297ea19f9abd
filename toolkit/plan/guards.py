"""Guards against writes a resync should not make: mass deletion, a wiped target, a lost attribute.

Users of other tools lose whole directories to a source read that came back empty or short
(a wrong base, a missing ACL, a replica not yet populated, a typo in one class's filter) and
recreate whole tenants when a target was wiped or a URL points at another tenant. A plan is
judged per sync class, not only in total: one small class emptied by a typo is invisible in the
totals of a large pipe. (A resource type fed by several classes needs no delete check of its
own: each class's share of a percentage adds up to no more than the type's.) Whether the
resources a pipe linked are still on the server is judged per resource type. A refused plan says what looks wrong and which
flag overrides it; the empty read of the whole source has no override.

Realtime sync meets deletes one at a time, so its guard (`DeleteBudget`) counts them per class
over a window instead.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from toolkit.config.durations import format_duration
from toolkit.config.properties import DeleteLimit
from toolkit.errors import FatalError
from toolkit.plan.model import ADOPT, DELETE, MODIFY, UNCHANGED, Link, Row

#: A read below this share of the last completed resync's source count (or, for one class,
#: of the resources this pipe manages for it) is refused.
SHRINK_FLOOR = 0.5
#: Every linked resource of a type gone from the server reads as a wiped server or another
#: tenant from this many links on; below it, a resource or two deleted out of band are simply
#: created again.
VANISHED_MIN = 5
#: A plan that removes one attribute from more than this share of a class's objects warns...
REMOVAL_SHARE = 0.5
#: ... when that is at least this many objects (one object losing a value is no pattern).
REMOVAL_MIN = 5

ALLOW_DELETES = "--allow-deletes"
ALLOW_RECREATE = "--allow-recreate"


class GuardRefused(FatalError):
    """A run the guards refused: a failed check (exit 1), not a usage error (exit 2)."""

    exit_code = 1


@dataclass(frozen=True)
class Finding:
    """Why a plan must not be applied as it is, and the flag that lets a run go on anyway
    (None: nothing does)."""

    text: str
    override: str | None = ALLOW_DELETES


@dataclass(frozen=True)
class GuardVerdict:
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()  # shown loudly, never blocking

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.findings)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def overridable(self) -> bool:
        return all(f.override for f in self.findings)

    def blocking(self, allow_deletes: bool = False, allow_recreate: bool = False) -> list[Finding]:
        """The findings that still stand with these overrides: the one verdict on whether a
        plan may be applied (resync, its widget and saved plans all ask here)."""
        given = {ALLOW_DELETES: allow_deletes, ALLOW_RECREATE: allow_recreate}
        return [f for f in self.findings if not given.get(f.override or "", False)]

    def refusal(self, allow_deletes: bool = False, allow_recreate: bool = False) -> str | None:
        """The message refusing the plan with these overrides, or None if it may be applied."""
        standing = self.blocking(allow_deletes, allow_recreate)
        if not standing:
            return None
        flags = sorted({f.override for f in standing if f.override})
        hint = (
            f" (after checking, pass {' and '.join(flags)} to apply anyway)"
            if all(f.override for f in standing)
            else ""
        )
        return "resync refused: " + "; ".join(f.text for f in standing) + hint


@dataclass(frozen=True)
class GuardInputs:
    rows: Sequence[Row]
    links: Mapping[str, Link]  # entry key -> link: what this pipe manages
    present: Mapping[str, set[str]]  # resource type -> the ids on the server
    class_reads: Mapping[str, int]  # each synchronizing class -> entries it took
    filters: Mapping[str, str]  # each class -> its scope as the operator wrote it
    source_count: int
    previous_source_count: int | None
    limit: DeleteLimit
    partial: bool  # a filtered read infers no deletes


def check(inputs: GuardInputs) -> GuardVerdict:
    findings = [*_vanished(inputs)]
    if not inputs.partial:
        findings += _source(inputs)
    return GuardVerdict(tuple(findings), tuple(_removals(inputs.rows)))


def _source(inputs: GuardInputs) -> list[Finding]:
    """The deletes a full read implies, in total and per class."""
    managed = len(inputs.links)
    if inputs.source_count == 0 and managed > 0:
        return [
            Finding(
                f"the source read returned no entries while this pipe manages {managed} "
                "resources: refusing to treat that as everyone leaving; check base DNs, "
                "filters and the bind's rights",
                None,
            )
        ]
    findings = []
    previous, count = inputs.previous_source_count, inputs.source_count
    if previous and count < previous * SHRINK_FLOOR:
        findings.append(
            Finding(
                f"the source read returned {count} entries, down from {previous} at the last "
                f"resync (more than {100 - SHRINK_FLOOR * 100:.0f}% fewer)"
            )
        )
    deletes = [r for r in inputs.rows if r.situation == DELETE]
    if len(deletes) > inputs.limit.allowed(managed):
        findings.append(_over_limit("", len(deletes), managed, inputs.limit))
    by_class = Counter(lk.class_name for lk in inputs.links.values())
    deletes_by_class = Counter(r.class_name for r in deletes)
    for name, read in inputs.class_reads.items():
        findings += _class(name, read, by_class[name], deletes_by_class[name], inputs)
    return findings


def _class(name: str, read: int, managed: int, deletes: int, inputs: GuardInputs) -> list[Finding]:
    if not managed:
        return []
    scope = inputs.filters.get(name, "")
    if read == 0:
        return [
            Finding(
                f"class {name} read no entries while this pipe manages {managed} of its "
                f"resources: does its scope match nothing ({scope})? Applying would delete "
                "them all"
            )
        ]
    if read < managed * SHRINK_FLOOR:
        return [
            Finding(
                f"class {name} read {read} entries for the {managed} resources this pipe "
                f"manages for it (more than {100 - SHRINK_FLOOR * 100:.0f}% fewer; scope {scope})"
            )
        ]
    if inputs.limit.percent and deletes > _allowed(inputs.limit, managed):
        return [_over_limit(f"class {name}: ", deletes, managed, inputs.limit)]
    return []


def _allowed(limit: DeleteLimit, managed: int) -> int:
    """A percentage judged on one class or type allows one delete at least: a class of three
    would otherwise refuse every delete."""
    return max(1, limit.allowed(managed))


def _over_limit(scope: str, deletes: int, managed: int, limit: DeleteLimit) -> Finding:
    allowed = _allowed(limit, managed) if scope and limit.percent else limit.allowed(managed)
    return Finding(
        f"{scope}{deletes} deletes exceed max-deletes {limit} "
        f"(allows {allowed} of {managed} managed resources)"
    )


def _vanished(inputs: GuardInputs) -> list[Finding]:
    """Every resource of a type that this pipe linked is gone from the server."""
    linked: dict[str, set[str]] = {}
    for lk in inputs.links.values():
        linked.setdefault(lk.resource_type, set()).add(lk.scim_id)
    findings = []
    for kind, ids in linked.items():
        if len(ids) >= VANISHED_MIN and ids.isdisjoint(inputs.present.get(kind, ())):
            findings.append(
                Finding(
                    f"none of the {len(ids)} {kind} resources this pipe linked is on the server "
                    "any more: a server that was wiped, or a URL pointing at another tenant? "
                    "Applying would create them all again",
                    ALLOW_RECREATE,
                )
            )
    return findings


def _removals(rows: Iterable[Row]) -> list[str]:
    """An attribute the plan removes from most objects of a class: most often a mapping that
    reads an attribute the entries do not have."""
    compared: Counter[str] = Counter()
    removed: Counter[tuple[str, str]] = Counter()
    for row in rows:
        if row.situation not in (MODIFY, UNCHANGED, ADOPT):
            continue
        compared[row.class_name] += 1
        for change in row.changes:
            if change.get("new") is None and change.get("old") is not None:
                removed[(row.class_name, change["attribute"])] += 1
    warnings = []
    for (name, attribute), count in sorted(removed.items()):
        total = compared[name]
        if count >= REMOVAL_MIN and count > total * REMOVAL_SHARE:
            warnings.append(
                f"class {name}: {attribute} would be removed from {count} of {total} objects "
                f"({count / total:.0%}); check the mapping's source of {attribute}"
            )
    return warnings


class DeleteBudget:
    """Realtime's delete guard: max-deletes per class (and in total) over a sliding window.

    The deletes counted are those applied in the last `window` seconds, kept in the state
    store so that a restart does not reset them. A percentage is of what the pipe managed
    when the window began: the resources managed at the last count plus those the window had
    deleted by then (so that 100% never holds a delete back, however many go). Thread-safe:
    the realtime workers share one.
    """

    def __init__(
        self,
        limit: DeleteLimit,
        managed: Mapping[str, int],  # class -> resources this pipe manages for it now
        window: float,
        recent: Iterable[tuple[str, float]] = (),  # (class, when) of deletes already applied
        now: float | None = None,
    ):
        self.limit, self.window = limit, window
        # oldest first, and their count per class: a take is O(1), also in a mass delete
        self._recent = deque(sorted(recent, key=lambda item: item[1]))
        self._in_class = Counter(c for c, _ in self._recent)
        self._lock = threading.Lock()
        self._base: dict[str, int] = {}
        self.recount(managed, now)

    def recount(self, managed: Mapping[str, int], now: float | None = None) -> None:
        """The resources managed now (the pipe creates and deletes as it runs)."""
        with self._lock:
            self._prune(time.time() if now is None else now)
            deleted = self._in_class
            self._base = {c: managed.get(c, 0) + deleted[c] for c in {*managed, *deleted}}

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][1] <= now - self.window:
            self._in_class[self._recent.popleft()[0]] -= 1

    def take(self, class_name: str, now: float | None = None) -> str | None:
        """Count one delete of this class now; or, past the guard, say why it is held back."""
        now = time.time() if now is None else now
        with self._lock:
            self._prune(now)
            in_class = self._in_class[class_name]
            of_class, of_pipe = self._base.get(class_name, 0), sum(self._base.values())
            allowed_class = _allowed(self.limit, of_class)
            allowed = max(1, self.limit.allowed(of_pipe))
            if in_class >= allowed_class or len(self._recent) >= allowed:
                scope, count, of, cap = (
                    (f"class {class_name}", in_class, of_class, allowed_class)
                    if in_class >= allowed_class
                    else ("the pipe", len(self._recent), of_pipe, allowed)
                )
                return (
                    f"held back by the delete guard: {scope} had {count} deletes in the last "
                    f"{format_duration(self.window)}, max-deletes {self.limit} allows {cap} of "
                    f"the {of} resources it managed; check the directory, then "
                    "`scimsync resync --allow-deletes` or `scimsync realtime-sync start "
                    "--allow-deletes`"
                )
            self._recent.append((class_name, now))
            self._in_class[class_name] += 1
            return None
