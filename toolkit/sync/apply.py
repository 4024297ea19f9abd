"""Applying a plan: the same rows and requests a dry run shows, sent with bounded concurrency.

Rows run in waves: a row whose requests name a resource that this run creates (a manager,
a group member) waits until that create has answered and its id is known. Each outcome is
committed to the state store as it happens (new links, failures); the new ETag and form of
a resource already linked are committed in groups (DEFER_LIMIT rows, and at the end of the
run), so a killed run loses nothing it reported done, at worst a later If-Match answering
412, and the next run reconciles against the target's current state.

A row refused with 409 on a unique name (userName, a group's displayName) that another row
of the run gives up waits until the other rows are applied, then is sent again in name
order: a rename chain or a swap is applied in one run (toolkit.plan.names). A 409 on a name
no row of the run gives up fails at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolkit.config.dn import normalize_dn
from toolkit.config.private import open_private
from toolkit.errors import FatalError, RetriableError, ScimsyncError, SkippableError
from toolkit.plan.engine import has_pending, replace_refs
from toolkit.plan.model import ADOPT, CREATE, DELETE, PENDING, Link, Row
from toolkit.plan.names import (
    current_name,
    name_order,
    name_takers,
    temporary_name,
    unique_attribute,
)
from toolkit.plan.plan import Plan
from toolkit.progress import APPLY, Listener, Phase
from toolkit.scim import requests
from toolkit.scim.bulk import BulkOperation
from toolkit.scim.client import ScimClient
from toolkit.scim.errors import Conflict, NotFound
from toolkit.scim.filters import eq
from toolkit.scim.requests import Request
from toolkit.sync.state import StateStore

#: creates one /Bulk request carries at most (fewer where the server says so): small enough
#: that the workers share a first sync's creates and a failed request costs little
BULK_CREATES = 100

#: An outcome's kind while its row waits to be sent again (a 409 on a name another row of
#: the run may still hold): neither applied nor failed yet.
WAITING = "waiting"


class InvalidRequest(SkippableError):
    """A row whose requests the server's schema refuses (found when the plan was made)."""


@dataclass
class Outcome:
    row: Row
    ok: bool
    error: str = ""
    kind: str = ""  # fatal | retriable | skippable
    scim_id: str | None = None
    exc: BaseException | None = None
    note: str = ""  # what the outcome owes to more than the requests sent
    # what the server answered to each request sent, in order: the resource, or None (a
    # DELETE or a 204); provision on demand shows them
    responses: list[dict[str, Any] | None] = field(default_factory=list)


@dataclass
class ApplyResult:
    applied: int = 0
    failed: int = 0
    failures: list[Outcome] = field(default_factory=list)
    # every row's outcome, kept only when the Applier is asked to (a run of a few DNs)
    outcomes: list[Outcome] = field(default_factory=list)
    # the ids of the resources deleted, per resource type: the next incremental read's
    # snapshot drops them (toolkit.sync.reads.forget)
    deleted: dict[str, set[str]] = field(default_factory=dict)


class Applier:
    """Sends one plan's requests and records every outcome."""

    def __init__(
        self,
        plan: Plan,
        client: ScimClient,
        store: StateStore,
        workers: int = 4,
        failed_dns_file: Path | None = None,
        on_progress: Listener | None = None,
        links: Mapping[str, Link] | None = None,
        bulk: bool = True,
        keep_outcomes: bool = False,
    ):
        self.plan = plan
        self.keep_outcomes = keep_outcomes
        self.client = client
        self.store = store
        # the rows' links as stored, by entry key (lower case): whether a link write may wait
        # for the next flush is decided against them, not by reading each link again. Given
        # by realtime (read with its entries); run() reads them for its rows, in one query
        # per 500. Should another process change one meanwhile, the flush finds it changed
        # and writes the link whole (StateStore.flush).
        self.links = links
        self.workers = max(1, workers)
        # creates go together in /Bulk requests where the server offers Bulk: through a far
        # server's latency a round trip per create is most of their time (BENCHMARKS.md)
        self.bulk = bulk
        self.failed_dns_file = failed_dns_file
        self.on_progress = on_progress
        self._ids: dict[str, str] = {}  # normalized DN -> SCIM id, for pending references
        # the keys with a failure stored (read once by run()): only those need clearing; None
        # (one row applied on its own, as realtime does) clears each applied row's key
        self._failed: set[str] | None = None
        # the rows that may wait after a 409 (run() sets them: those taking a name another
        # row of the run gives up), and those waiting, sent again after the others
        self._may_wait: set[int] = set()
        self._waiting: list[Row] = []
        self._lock = threading.Lock()
        # (resource type, SCIM id) -> entry key: a 409 must not adopt a resource that another
        # entry owns (linked, or created earlier in this run), or two entries share one target
        self._owners: dict[tuple[str, str], str] = {}
        for row in plan.rows:
            if row.scim_id:
                self._ids[normalize_dn(row.dn)] = row.scim_id
                self._owners[(row.resource_type, row.scim_id)] = row.entry_uuid

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        result = ApplyResult()
        self.store.delete_links(self.plan.pipe, [link.entry_uuid for link in self.plan.stale_links])
        self._failed = {failure.key for failure in self.store.failures(self.plan.pipe)}
        todo = [r for r in self.plan.rows if r.requests or r.situation == ADOPT]
        if self.links is None:  # no worker then reads its row's link to save the next one
            self.links = self.store.links_by_keys(self.plan.pipe, (r.entry_uuid for r in todo))
        bar = Phase(self.on_progress, APPLY, "applying", "objects", total=len(todo))
        self._may_wait = {id(row) for row, _ in name_takers(todo)}
        schedule = _Schedule(todo, result, self._count, bar)
        together = BULK_CREATES if self.bulk and self.client.supports_bulk else 1
        threads = [
            threading.Thread(
                target=schedule.work,
                args=(self.apply_row, self.apply_creates, together),
                name=f"scimsync-apply_{i}",
            )
            for i in range(min(self.workers, len(todo)))
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException as exc:  # interrupted: no new row; let those in flight finish
            schedule.stop(exc)
            for thread in threads:
                thread.join()
            raise
        if schedule.error is not None:  # not an error of the tree: a bug, raised as it is
            raise schedule.error
        fatal, cycle = schedule.fatal, schedule.cycle
        bar.close()
        if fatal is None:
            fatal = self._settle_names(result)
        if fatal is None:
            self._complete_references(cycle, result)
        self.store.flush()  # the links deferred by the last rows: the run is done when they are
        self._write_failed_dns(result)
        if fatal is not None:
            raise fatal
        return result

    def _complete_references(self, rows: list[Row], result: ApplyResult) -> None:
        """Rows sent with references still pending (a cycle, e.g. two new users managing each
        other): now that every id is known, set the references they went without."""
        failed = {id(o.row) for o in result.failures}
        for row in rows:
            scim_id = self._ids.get(normalize_dn(row.dn))
            if id(row) in failed or not scim_id or scim_id.startswith(PENDING):
                continue
            operations = []
            for request in row.requests:
                operations += _pending_operations(request, self._resolve)
            if not operations:
                continue
            try:
                self.client.execute(
                    requests.patch(self._path(row, scim_id), operations), if_match=False
                )
            except FatalError:
                raise
            except ScimsyncError as exc:
                result.failures.append(
                    Outcome(row, False, f"setting references: {exc}", "skippable")
                )
                result.failed += 1
                continue
            self._save_link(row, scim_id, created=False)  # the form now holds the references

    def _settle_names(self, result: ApplyResult) -> FatalError | None:
        """Send the rows refused with 409 on a unique name again, one at a time, now that the
        others are applied: each row after the row of this run that held its name, and a
        swap's first row moved aside to a temporary name (toolkit.plan.names). A 409 now is
        a failure: the name was not freed (its holder's update failed, or another took it)."""
        waiting, self._waiting, self._may_wait = self._waiting, [], set()  # no more waits
        order, aside = name_order(waiting)
        moved = set()
        try:
            for row in aside:
                try:
                    self._rename(row, temporary_name(row), if_match=row.etag or None)
                    moved.add(id(row))
                except FatalError:
                    raise
                except ScimsyncError:
                    pass  # not moved: the row that takes its name fails with 409, as it would
            for row in order:
                if id(row) not in moved:
                    self._count(self.apply_row(row), result)
                    continue
                row = replace(row, etag=None)  # its ETag: the one the move aside returned
                outcome = self.apply_row(row)
                self._count(outcome if outcome.ok else self._move_back(row, outcome), result)
        except FatalError as exc:
            return exc
        return None

    def _rename(self, row: Row, name: Any, if_match: str | None) -> None:
        assert row.scim_id, f"{row.dn}: a rename without a SCIM id"
        update = self._resolved(row.requests[0])  # a PUT row moves aside by PUT, as it updates
        attribute = unique_attribute(row.resource_type)
        path = self._path(row, row.scim_id)
        self.client.execute(requests.rename(update, path, attribute, name), if_match=if_match)

    def _move_back(self, row: Row, outcome: Outcome) -> Outcome:
        """A row moved aside whose own update failed: give it its name back if it can."""
        try:
            self._rename(row, current_name(row), if_match=None)
            return outcome
        except FatalError:
            raise
        except ScimsyncError as exc:
            note = f"; left with the temporary name {temporary_name(row)!r}: {exc}"
            return replace(outcome, error=outcome.error + note)

    def _count(self, outcome: Outcome, result: ApplyResult) -> None:
        if outcome.kind != WAITING and self.keep_outcomes:
            result.outcomes.append(outcome)
        if outcome.kind == WAITING:
            self._waiting.append(outcome.row)
        elif outcome.ok:
            result.applied += 1
            if _deletes(outcome.row) and outcome.row.scim_id:
                result.deleted.setdefault(outcome.row.resource_type, set()).add(outcome.row.scim_id)
        else:
            result.failed += 1
            result.failures.append(outcome)

    def _resolve(self, value: Any) -> Any:
        # look each reference up under the lock; copying the whole map per request made
        # applying quadratic (1.5 ms per copy at 100,000 objects, once per request)
        def lookup(dn: str) -> str | None:
            key = normalize_dn(dn)
            with self._lock:
                return self._ids.get(key)

        # most bodies and forms name nothing pending: then replace_refs would only copy them
        return value if _settled(value) else replace_refs(value, PENDING, lookup)

    # --- one row -------------------------------------------------------------------------------

    def apply_row(self, row: Row) -> Outcome:
        """Send one row's requests and record the outcome (links or a failure)."""
        note = ""
        answers: list[dict[str, Any] | None] = []
        try:
            if row.problems:  # the server's schema refuses them: a failure, never sent
                raise InvalidRequest(f"{row.dn}: " + "; ".join(row.problems))
            scim_id = self._send(row, answers)
        except FatalError:
            raise
        except ScimsyncError as exc:  # retriable ones have had their retries in the client
            if not (isinstance(exc, NotFound) and _deletes(row)):
                return replace(self._failure(row, exc), responses=answers)
            # gone already: a retried DELETE whose first attempt was applied (its reply lost),
            # or a resource deleted by hand since the plan was made; the delete is done
            self.store.delete_links(self.plan.pipe, [row.entry_uuid])
            scim_id, note = row.scim_id, "the resource was already gone (404)"
        if self._failed is None or row.entry_uuid in self._failed:
            self.store.clear_failure(self.plan.pipe, row.entry_uuid)
        return Outcome(row, True, scim_id=scim_id, note=note, responses=answers)

    def apply_creates(self, rows: list[Row]) -> list[Outcome]:
        """Creates sent together in /Bulk requests (split to the server's limits), each
        result recorded as apply_row records a create's. One the server refused with 409, or
        left unanswered, goes again on its own through apply_row (which adopts on 409)."""
        sent = [self._resolved(row.requests[0]) for row in rows]
        try:
            answers = self.client.bulk([BulkOperation("POST", q.path, q.body) for q in sent])
        except FatalError:
            raise
        except ScimsyncError:  # the /Bulk request itself failed: each create on its own
            return [self.apply_row(row) for row in rows]
        by_index = {answer.index: answer for answer in answers}
        outcomes = []
        for index, row in enumerate(rows):
            answer = by_index.get(index)
            if (
                answer is None
                or isinstance(answer.error, Conflict)
                or not (answer.error or answer.id)
            ):
                outcomes.append(self.apply_row(row))
            elif answer.error is not None:
                outcomes.append(self._failure(row, answer.error))
            else:
                assert answer.id is not None
                self._remember(row, answer.id)
                self._save_link(row, answer.id, created=True)
                if self._failed is None or row.entry_uuid in self._failed:
                    self.store.clear_failure(self.plan.pipe, row.entry_uuid)
                outcome = Outcome(row, True, scim_id=answer.id, responses=[answer.response])
                outcomes.append(outcome)
        return outcomes

    def _failure(self, row: Row, exc: ScimsyncError) -> Outcome:
        """A row that failed: recorded in the failures table (a 409 that may wait, not yet)."""
        if isinstance(exc, Conflict) and id(row) in self._may_wait:
            return Outcome(row, False, str(exc), WAITING, exc=exc)
        kind = "retriable" if isinstance(exc, RetriableError) else "skippable"
        self.store.put_failure(
            self.plan.pipe,
            row.entry_uuid,
            row.dn,
            str(exc),
            kind,
            attempts=1,
            class_name=row.class_name,
            operation=row.situation,
        )
        if self._failed is not None:
            self._failed.add(row.entry_uuid)
        return Outcome(row, False, str(exc), kind, exc=exc)

    def _send(self, row: Row, answers: list[dict[str, Any] | None]) -> str | None:
        """Execute the row's requests as the plan carries them (ids still pending filled in);
        what the server answered goes to `answers`."""
        if row.situation == CREATE:
            first = self._resolved(row.requests[0])
            try:
                created = self.client.execute(first)
                answers.append(created)
                assert created is not None, f"{row.dn}: the create answered no resource"
                scim_id, was_created = created["id"], True
            except Conflict:
                scim_id, was_created = self._adopt_after_conflict(row, first), False
            self._remember(row, scim_id)
            for request in row.requests[1:]:  # the rest of a large group's members
                answers.append(self.client.execute(self._resolved(request), if_match=False))
            # an adopted resource may hold values the mapping would remove (requests.adopt
            # only sets): not remembered as applied, so realtime reads it before its next diff
            kept = row if was_created else replace(row, hash=None, form=None)
            self._save_link(kept, scim_id, created=was_created)
            return scim_id
        scim_id = row.scim_id
        assert scim_id, f"{row.dn}: a {row.situation} without a SCIM id"
        if row.situation == DELETE:
            request = row.requests[0]
            answers.append(self.client.execute(request, if_match=row.etag or None))
            if request.method == "DELETE":
                self.store.delete_links(self.plan.pipe, [row.entry_uuid])
            else:  # deactivated: still managed, but no longer in the form last applied
                self._save_link(replace(row, hash=None, form=None), scim_id, created=False)
            return scim_id
        if_match: str | None | bool = row.etag or None
        for request in row.requests:
            answers.append(self.client.execute(self._resolved(request), if_match=if_match))
            if_match = None  # later chunks: the ETag the server just returned
        self._save_link(row, scim_id, created=False)
        return scim_id

    def _resolved(self, request: Request) -> Request:
        """`request` with the ids of resources this run created in place of pending ones."""
        collection, pending, dn = request.path.partition(PENDING)
        path = request.path
        if pending:
            scim_id = self._resolve(PENDING + dn)
            if not isinstance(scim_id, str):
                raise InvalidRequest(f"{dn}: not created, so {request.method} {path} has no id")
            path = requests.member_path(collection.rstrip("/"), scim_id)
        body = self._resolve(request.body) if request.body is not None else None
        return (
            request
            if path is request.path and body is request.body
            else Request(request.method, path, body)
        )

    def _path(self, row: Row, scim_id: str) -> str:
        return requests.member_path(self.client.endpoint_path(row.resource_type), scim_id)

    def _adopt_after_conflict(self, row: Row, create: Request) -> str:
        """A 409 on create: the resource exists already; find it, make it right, link it."""
        body = create.body or {}
        attr = unique_attribute(row.resource_type)
        value = body.get(attr)
        found = self.client.find(row.resource_type, str(eq(attr, value))) if value else []
        if len(found) != 1:
            raise Conflict(
                f"{row.dn}: create answered 409 and {len(found)} resources have {attr} {value!r}"
            )
        existing = found[0]
        with self._lock:
            owner = self._owners.setdefault((row.resource_type, existing["id"]), row.entry_uuid)
        if owner != row.entry_uuid:
            raise Conflict(
                f"{row.dn}: create answered 409 and the resource with {attr} {value!r} "
                f"({existing['id']}) belongs to another entry of this pipe"
            )
        adopt = requests.adopt(self._path(row, existing["id"]), body, existing)
        if adopt is not None:
            self.client.execute(adopt)
        return existing["id"]

    def _remember(self, row: Row, scim_id: str) -> None:
        with self._lock:
            self._ids[normalize_dn(row.dn)] = scim_id
            self._owners.setdefault((row.resource_type, scim_id), row.entry_uuid)

    def _save_link(self, row: Row, scim_id: str, created: bool) -> None:
        """Record what was applied. A resource already linked the same way only gets a new
        ETag and form: that write may wait for the store's next flush (one transaction for
        many rows; see StateStore.save_links). A new link is committed at once."""
        self.store.save_links(
            self.plan.pipe,
            [
                Link(
                    entry_uuid=row.entry_uuid,
                    dn=row.dn,
                    class_name=row.class_name,
                    resource_type=row.resource_type,
                    scim_id=scim_id,
                    etag=self.client.etag(row.resource_type, scim_id),
                    hash=row.content_hash(),
                    form=self._resolve(row.form) if row.form else None,  # ids, not pending refs
                    created=created,
                )
            ],
            defer=True,
            stored=self.links,
        )

    def _write_failed_dns(self, result: ApplyResult) -> None:
        if self.failed_dns_file is None or not result.failures:
            return
        self.failed_dns_file.parent.mkdir(parents=True, exist_ok=True)
        with open_private(self.failed_dns_file) as out:
            out.write(
                "# DNs whose operation failed; pass this file to resync --source-input-file\n"
            )
            for outcome in result.failures:
                out.write(
                    f"# {outcome.kind}: {outcome.error.splitlines()[0] if outcome.error else ''}\n"
                )
                out.write(f"{outcome.row.dn}\n")


def _single_create(row: Row) -> bool:
    """A create sent as one POST the plan found nothing wrong with: it may go in /Bulk."""
    return row.situation == CREATE and len(row.requests) == 1 and not row.problems


def _deletes(row: Row) -> bool:
    return row.situation == DELETE and bool(row.requests) and row.requests[0].method == "DELETE"


def _pending_operations(request: Request, resolve: Any) -> list[dict[str, Any]]:
    """PATCH operations that set what `request` referred to while it was still pending."""
    body = request.body or {}
    if request.method == "PATCH":
        return [resolve(op) for op in body.get("Operations", []) if has_pending(op.get("value"))]
    ops = []
    now = resolve(body)
    for key, value in body.items():
        if not has_pending(value):
            continue
        if key.lower().startswith("urn:") and isinstance(value, dict):
            for sub, item in value.items():
                if has_pending(item) and (now.get(key) or {}).get(sub) is not None:
                    ops.append({"op": "replace", "path": f"{key}:{sub}", "value": now[key][sub]})
        elif now.get(key) is not None:
            ops.append({"op": "replace", "path": key, "value": now[key]})
    return ops


def _settled(value: Any) -> bool:
    """True when replace_refs would return `value` unchanged (a copy equal to it): no pending
    reference, no None (dropped anywhere) and no {} as a dict's value (dropped). It walks
    the value as replace_refs does, without building the copy: a third of the cost."""
    if isinstance(value, str):
        return not value.startswith(PENDING)
    if isinstance(value, dict):
        for item in value.values():
            if item is None or item == {} or not _settled(item):
                return False
        return True
    if isinstance(value, list):
        for item in value:
            if item is None or not _settled(item):
                return False
    return True


def _pending_dns(row: Row) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith(PENDING):
            found.append(value[len(PENDING) :])
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    for request in row.requests:
        if request.body and has_pending(request.body):
            walk(request.body)
    return [dn for dn in found if normalize_dn(dn) != normalize_dn(row.dn)]


class _Schedule:
    """Which row to send next, shared by the worker threads (under one lock).

    Rows run in waves: a row waits for the rows that create what it refers to (by
    normalized DN); when nothing runs and rows still wait, they wait for each other (a
    reference cycle) and are sent with what can be named. After a fatal error no new row is
    sent; the rows in flight finish and are counted. Each worker takes its next row and
    records the outcome itself: no thread is woken per row to do that bookkeeping (with a
    server on the same cores, that wake-up cost the server CPU)."""

    def __init__(
        self, todo: list[Row], result: ApplyResult, count: Callable[..., None], bar: Phase
    ) -> None:
        self._result, self._count, self._bar = result, count, bar
        self._blockers = {id(r): {normalize_dn(dn) for dn in _pending_dns(r)} for r in todo}
        self._waiters: dict[str, list[Row]] = {}
        for row in todo:
            for ndn in self._blockers[id(row)]:
                self._waiters.setdefault(ndn, []).append(row)
        self._ready = deque(r for r in todo if not self._blockers[id(r)])
        self._waiting = len(todo) - len(self._ready)
        self._running = 0
        self._changed = threading.Condition(threading.Lock())
        self.fatal: BaseException | None = None
        self.error: BaseException | None = None  # not a FatalError: raised as it is
        self.cycle: list[Row] = []

    def work(
        self,
        apply: Callable[[Row], Outcome],
        apply_creates: Callable[[list[Row]], list[Outcome]] | None = None,
        together: int = 1,
    ) -> None:
        """Send rows until none is left: one at a time, or up to `together` creates ready
        at once through `apply_creates`."""
        while rows := self._next(together):
            outcomes: list[Outcome | None]
            try:
                if len(rows) > 1 and apply_creates is not None:
                    outcomes, exc = list(apply_creates(rows)), None
                else:
                    outcomes, exc = [apply(rows[0])], None
            except BaseException as error:  # recorded for run(), as a Future would
                outcomes, exc = [None] * len(rows), error
            for row, outcome in zip(rows, outcomes, strict=True):
                self._done(row, outcome, exc)

    def stop(self, exc: BaseException) -> None:
        with self._changed:
            if self.error is None:
                self.error = exc
            self._changed.notify_all()

    def _next(self, together: int = 1) -> list[Row]:
        """The next row to send, with more ready creates when `together` allows."""
        with self._changed:
            while True:
                if self.fatal is not None or self.error is not None:
                    return []
                if self._ready:
                    rows = [self._ready.popleft()]
                    if together > 1 and _single_create(rows[0]):
                        rows += self._ready_creates(together - 1)
                    self._running += len(rows)
                    return rows
                if not self._waiting:
                    return []  # all sent
                if not self._running:  # a cycle: send what can be named, fix the rest later
                    self._release_cycle()
                    continue
                self._changed.wait()  # until a running row releases its waiters

    def _ready_creates(self, limit: int) -> list[Row]:
        """Up to `limit` more single-request creates from the ready rows, the rest kept in
        order."""
        taken, kept = [], deque()
        while self._ready and len(taken) < limit:
            row = self._ready.popleft()
            (taken if _single_create(row) else kept).append(row)
        self._ready.extendleft(reversed(kept))
        return taken

    def _release_cycle(self) -> None:
        # once each: a row waiting on several DNs sits in several waiter lists
        blockers = self._blockers
        stuck = {id(r): r for rows in self._waiters.values() for r in rows if blockers[id(r)]}
        self._ready.extend(stuck.values())
        self.cycle.extend(stuck.values())
        for row in self._ready:
            blockers[id(row)].clear()
        self._waiters.clear()
        self._waiting = 0

    def _done(self, row: Row, outcome: Outcome | None, exc: BaseException | None) -> None:
        with self._changed:
            self._running -= 1
            stopped = self.fatal is not None or self.error is not None
            if isinstance(exc, FatalError):
                if not stopped:
                    self.fatal = exc
            elif exc is not None:
                if self.error is None:
                    self.error = exc
            else:
                self._count(outcome, self._result)
            if not stopped:
                self._bar.advance()
            # created or failed, its id is now as known as it will be; a create waiting to be
            # sent again keeps its waiters: released as a cycle, they get their references
            # once it is created (Applier._complete_references)
            waits = outcome is not None and outcome.kind == WAITING
            if self._waiters and not waits:
                key = normalize_dn(row.dn)
                for waiter in self._waiters.pop(key, []):
                    left = self._blockers[id(waiter)]
                    left.discard(key)
                    if not left:
                        self._ready.append(waiter)
                        self._waiting -= 1
                self._changed.notify_all()
            elif not self._running:
                self._changed.notify_all()  # a worker may wait for a cycle to be released
