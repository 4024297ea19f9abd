"""realtime-sync: follow the source's change feed and apply each change to the SCIM target.

One thread polls the feed from the persisted cursor. Each batch is split by entry: the
changes of one entry stay in order (they are reconciled once, against the entry as it is
now), different entries run in parallel on `num-worker-threads`. The cursor moves past a
batch only once every change in it has an outcome recorded (applied, no change needed,
dropped, or a failure in the failures table), so a process killed at any moment loses
nothing: the next start replays at most one batch, and replaying is harmless. The new ETags
and forms of resources already linked are committed with the cursor, in one transaction (a
replay finds those resources right and records them as read).

A backlog is read a full batch ahead, while the batch before it is applied; a feed that is
kept up with is read again as soon as a batch is done, so a change waits behind at most the
batch in progress, and for `change-detection-polling-interval` only when the feed was empty.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from toolkit.config.dn import normalize_dn
from toolkit.config.model import Config, SyncPipe
from toolkit.config.private import open_private, private_dir
from toolkit.config.properties import check_positive
from toolkit.entry import entry_key
from toolkit.errors import FatalError
from toolkit.ldap.changes import Change, ChangeDetector, describe_cursor
from toolkit.ldap.search import AnyOf, request_attributes
from toolkit.mapping.urns import ENTERPRISE_USER
from toolkit.plan.guards import DeleteBudget
from toolkit.plan.model import ADOPT, CREATE, DELETE, Link
from toolkit.progress import REALTIME, Listener, Phase
from toolkit.scim.errors import Conflict
from toolkit.scim.filters import eq
from toolkit.sync import lock, synclog
from toolkit.sync.files import pipe_files
from toolkit.sync.reconcile import Reconciler, Result
from toolkit.sync.runtime import PipeRuntime
from toolkit.sync.startpoint import feed_source
from toolkit.sync.state import Failure, Run

BATCH = 500
PREFETCH_MIN = 8  # entries in a batch from which one OR search beats a search each
PREFETCH_CHUNK = 100  # values per OR filter
HELD_DELETE = "held-delete"  # the failures table's kind of a delete the delete guard held back
KIND_FLAG = {"add": "creates", "modify": "modifies", "modrdn": "modifies", "delete": "deletes"}
REFERENCE_ROUNDS = 3  # entries naming a changed entry, then those naming one of them created...


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class Stats:
    started_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    detector: str = ""
    cursor: str | None = None
    changes: int = 0
    batches: int = 0
    completed: dict[str, int] = field(default_factory=dict)
    background_retries: dict[str, int] = field(default_factory=dict)  # by outcome
    # entries reconciled because an entry they name (manager, member) changed, by outcome
    referencing: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # entries whose failure this run recorded and that are still failed
    last_change_time: str | None = None
    last_poll_at: float | None = None
    ops_per_second: float = 0.0
    idle: bool = False
    held_deletes: int = 0  # deletes the delete guard held back in this run

    def count(self, msg_type: str) -> None:
        self.completed[msg_type] = self.completed.get(msg_type, 0) + 1


class RealtimeSync:
    """One pipe's realtime loop; `run()` returns when stopped, idle (until_idle) or done."""

    def __init__(
        self,
        config: Config,
        pipe_name: str | None = None,
        workers: int | None = None,
        allow_deletes: bool = False,
        on_progress: Listener | None = None,
    ):
        self.config = config
        self.on_progress = on_progress
        self.runtime = PipeRuntime(config, pipe_name).source_first()
        self.pipe = self.runtime.pipe
        try:
            self.source = self.runtime.feed_source
        except BaseException:
            self.runtime.close()
            raise
        self.detector: ChangeDetector | None = None
        self.store, self.client = self.runtime.store, self.runtime.client
        self.reconciler = Reconciler(
            config,
            self.pipe,
            self.runtime.mappings,
            self.source,
            self.client,
            self.store,
            self.runtime.scope,
        )
        self.allow_deletes = allow_deletes
        if not allow_deletes:
            window = self.pipe.delete_guard_window
            self.reconciler.delete_budget = DeleteBudget(
                self.pipe.max_deletes,
                self.store.link_counts(self.pipe.name),
                window,
                self.store.recent_deletes(self.pipe.name, time.time() - window),
            )
        self.log = synclog.SyncLog(self.runtime.files.log, self.pipe.name)
        self.workers = workers or self.pipe.num_worker_threads
        self.stop_event = threading.Event()
        self.stats = Stats()
        self._failed_dns_lock = threading.Lock()
        self._prefetched: dict[str, dict[str, Any]] = {}  # identity -> entry as read
        # the keys with a failure stored (read with each round of background retries), and
        # those this run recorded: an entry found in sync clears its failure without a query
        self._failures_lock = threading.Lock()
        self._failure_keys: set[str] = set()
        self._failed_keys: set[str] = set()

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()
        self.runtime.close()
        self.log.close()

    def run(self, until_idle: bool = False, max_changes: int | None = None) -> Stats:
        with lock.writer(self.config.state_dir, self.pipe.name, lock.REALTIME):
            return self._run(until_idle, max_changes)

    def _run(self, until_idle: bool, max_changes: int | None) -> Stats:
        self.detector, reason = self.source.change_detector()
        self.stats.detector = reason
        cursor = self.store.cursor(self.pipe.name)
        if cursor is None:  # first start without set-startpoint: changes from now on
            cursor = self.detector.cursor_at_end()
            self.store.save_cursor(self.pipe.name, cursor)
        self.stats.cursor = cursor
        self._settle_held_deletes()
        interval = self.pipe.change_detection_polling_interval
        progress = Phase(self.on_progress, REALTIME, "realtime sync", "changes")

        def limit(queued: int) -> int:
            left = None if max_changes is None else max_changes - self.stats.changes - queued
            return BATCH if left is None else min(BATCH, left)

        def poll(at: str, size: int) -> tuple[list[Change], str, dict[str, dict[str, Any]]]:
            """The next batch, and its entries as they are now (read off the workers' path)."""
            self.stats.last_poll_at = time.time()
            changes, after = self.detector.poll(at, size) if size > 0 else ([], at)
            return changes, after, self._prefetch(changes) if changes else {}

        # A backlog (a full batch) is read on while its batch is applied; a feed that is kept
        # up with is read again as soon as a batch is done, so that the changes made while a
        # batch was applied are in the next one (one poll per batch, no wait behind another)
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="scimsync-realtime") as pool,
            ThreadPoolExecutor(1, thread_name_prefix="scimsync-feed") as feed,
        ):
            ahead: Future | None = None  # the batch after a full one, read on
            while not self.stop_event.is_set():
                if ahead is not None:
                    changes, next_cursor, entries = ahead.result()
                    ahead = None
                    room = min(BATCH - len(changes), limit(len(changes)))
                    if room > 0:  # not a full batch: with the changes made since it was read
                        late, next_cursor, late_entries = poll(next_cursor, room)
                        changes, entries = changes + late, _merged(entries, late, late_entries)
                else:
                    changes, next_cursor, entries = poll(cursor, limit(0))
                if len(changes) >= BATCH:
                    ahead = feed.submit(poll, next_cursor, limit(len(changes)))
                self._retry_failures()
                if changes:
                    budget = self.reconciler.delete_budget
                    if budget is not None:  # of the resources managed now
                        budget.recount(self.store.link_counts(self.pipe.name))
                    self._process(changes, pool, entries)
                    progress.advance(len(changes))
                if next_cursor != cursor:
                    # one transaction: the batch's deferred link writes, then the cursor
                    self.store.save_cursor(self.pipe.name, next_cursor)
                    cursor = self.stats.cursor = next_cursor
                else:
                    self.store.flush()  # what background retries deferred
                self.stats.idle = not changes
                self._write_status()
                if not changes:
                    if until_idle or limit(0) <= 0:
                        break
                    self.stop_event.wait(interval)
        self.store.flush()
        stored = {f.key for f in self.store.failures(self.pipe.name)}
        self.stats.failed = len(self._failed_keys & stored)
        self._write_status()
        progress.close()
        return self.stats

    def _process(
        self, changes: list[Change], pool: ThreadPoolExecutor, entries: dict[str, dict[str, Any]]
    ) -> None:
        """Reconcile each entry of the batch once; log every change with its outcome."""
        started = time.perf_counter()
        self.log.write_many(
            synclog.CHANGE_DETECTED,
            [
                {
                    "kind": change.kind,
                    "dn": change.dn,
                    "new_dn": change.new_dn,
                    "change_number": change.change_number,
                    "csn": change.csn,
                }
                for change in changes
            ],
        )
        by_entry: OrderedDict[str, list[Change]] = OrderedDict()
        for change in changes:
            by_entry.setdefault(_identity(change), []).append(change)
        groups = list(by_entry.values())
        self._prefetched = entries
        self.reconciler.known_references = self._references(entries)
        try:
            results = self._run_chains(pool, _chains(groups))
        finally:  # the second pass, and the next batch, read the links written meanwhile
            self.reconciler.known_references = None
        retry = [g for g in groups if results[id(g)].unresolved]
        if retry:  # references to entries created in this batch: one more pass now that they exist
            results.update(self._run_chains(pool, _chains(retry), final=True))
        held = [g for g in groups if _name_taken(results[id(g)])]
        if held:  # names taken from each other (a swap, a rotation): applied as resync does
            results.update(self._settle_names(held))
        self._reconcile_referencing(
            pool, [dn for g in groups for dn in _named_anew(g, results[id(g)])]
        )
        self._reconcile_groups_left(pool, groups, results)
        for group in groups:
            for _ in group:  # the final outcome of each change
                self.stats.count(results[id(group)].msg_type)
        elapsed = time.perf_counter() - started
        self.stats.changes += len(changes)
        self.stats.batches += 1
        self.stats.ops_per_second = len(changes) / elapsed if elapsed > 0 else 0.0
        last = changes[-1]
        self.stats.last_change_time = last.time.isoformat() if last.time else None

    def _reconcile_groups_left(
        self, pool: ThreadPoolExecutor, groups: list[list[Change]], results: dict[int, Result]
    ) -> None:
        """On a feed that does not report the groups a deleted member leaves (AD's DirSync:
        the member and manager values go without a change of the entries holding them),
        the entries whose resources still name a resource deleted in this batch,
        reconciled: read now, they drop it."""
        if not getattr(self.detector, "silent_member_removal", False):
            return
        try:
            links = self._groups_left(groups, results)
            unique_id = self.reconciler.unique_id
            entries = [
                entry
                for link in links
                if (entry := self.reconciler.locate(link.dn, link.entry_uuid, unique_id))
                is not None
            ]
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:  # logged and listed by status; a resync settles it
            for group in groups:
                if group[-1].kind == "delete":
                    dn = group[-1].dn
                    self._record_failure(
                        Result(
                            synclog.CHANGE_FAILED,
                            detail=f"groups left by the deleted entry: {type(exc).__name__}: {exc}",
                        ),
                        dn,
                        "dn:" + _dn_key(dn),
                        "references",
                    )
            return
        list(pool.map(self._reconcile_referencer, entries))

    def _groups_left(self, groups: list[list[Change]], results: dict[int, Result]) -> list[Link]:
        """The links of the resources that name a resource deleted here as a member or a
        manager (AD drops the manager value silently too)."""
        gone = [
            results[id(g)].scim_id
            for g in groups
            if g[-1].kind == "delete"
            and results[id(g)].scim_id
            and results[id(g)].msg_type == synclog.CHANGE_APPLIED
        ]
        found: dict[str, Link] = {}
        for resource in {r.name: r for r in self.reconciler.scope.resources.values()}.values():
            paths = [
                path
                for name, path in (
                    ("members", "members.value"),
                    ("manager", f"{ENTERPRISE_USER}:manager.value"),
                )
                if resource.attribute(name) is not None
            ]
            for path, scim_id in ((p, i) for p in paths for i in gone):
                for target in self.client.find(resource.name, eq(path, scim_id)):
                    link = self.store.link_of_target(self.pipe.name, resource.name, target["id"])
                    if link is not None:
                        found[link.entry_uuid] = link
        return list(found.values())

    def _prefetch(self, changes: list[Change]) -> dict[str, dict[str, Any]]:
        """The entries of a large batch read with a few OR searches on their unique ids, rather
        than one search per entry (each a round trip on the source's one lookup connection),
        on the change detector's connection (this runs on the thread that reads the feed).
        Keyed by the changes' identity. A failed read prefetches nothing (each entry is then looked up on
        its own)."""
        last_of: dict[str, Change] = {}
        for change in changes:
            last_of[_identity(change)] = change
        wanted: dict[str, dict[str, list[str]]] = {}  # attribute -> lower-case value -> entries
        for identity, last in last_of.items():
            if last.kind == "delete":
                continue
            if last.entry_uuid:
                attribute, value = self.reconciler.unique_id, last.entry_uuid
            elif last.unique_id and last.unique_id_attribute:
                attribute, value = last.unique_id_attribute, last.unique_id
            else:
                continue
            wanted.setdefault(attribute.lower(), {}).setdefault(value.lower(), []).append(identity)
        if sum(len(values) for values in wanted.values()) < PREFETCH_MIN:
            return {}
        found: dict[str, dict[str, Any]] = {}
        assert self.detector is not None
        try:
            for attribute, values in wanted.items():
                names = request_attributes(
                    sorted({*self.reconciler.scope.attributes, attribute}),
                    self.source.spec.unique_id_attribute,
                )
                keys = list(values)
                for start in range(0, len(keys), PREFETCH_CHUNK):
                    flt = AnyOf(attribute, tuple(keys[start : start + PREFETCH_CHUNK]))
                    for base in self.source.base_dns:
                        # on the feed's connection, read with the fast decoder: no connection
                        # set up per search (an entry left out is looked up on its own)
                        page, _ = self.detector.read_page(base, flt, names, 2 * PREFETCH_CHUNK)
                        for entry in (encoded.decode() for encoded in page):
                            for value in entry.get(attribute, ()):
                                for identity in values.get(str(value).lower(), ()):
                                    found[identity] = entry
        except Exception:  # the per-entry look-ups will meet (and report) the trouble
            return {}
        return found  # an entry not found is looked up on its own: never taken as gone

    def _references(self, entries: dict[str, dict[str, Any]]) -> dict[str, list[Link]] | None:
        """The links the prefetched entries refer to, read at once; None if that read fails
        (each entry then reads its own)."""
        try:
            return self.reconciler.read_references(entries.values())
        except Exception:
            return None

    def _run_chains(
        self, pool: ThreadPoolExecutor, chains: list[list[list[Change]]], final: bool = False
    ) -> dict[int, Result]:
        """Every chain reconciled on the workers, each worker taking the next chain as it is
        done with one: a task per worker rather than per chain (hundreds of futures a batch,
        each waking this thread). After a fatal error the others take no new chain."""
        todo = deque(chains)
        failed = threading.Event()

        def drain(_: int) -> dict[int, Result]:
            results: dict[int, Result] = {}
            while todo and not failed.is_set():
                try:
                    chain = todo.popleft()
                except IndexError:  # another worker took the last one
                    break
                try:
                    results.update(self._reconcile_chain(chain, final))
                except BaseException:
                    failed.set()
                    raise
            return results

        results: dict[int, Result] = {}
        for part in pool.map(drain, range(min(self.workers, len(chains)))):
            results.update(part)
        return results

    def _reconcile_chain(self, chain: list[list[Change]], final: bool = False) -> dict[int, Result]:
        """Entries that shared a DN in the batch, one after the other in feed order."""
        return {id(group): self._reconcile_entry(group, final) for group in chain}

    def _reconcile_entry(self, group: list[Change], final: bool = True) -> Result:
        """Reconcile one entry; log its changes' outcome unless a later pass will decide it
        (references unresolved before the final pass, a unique name another entry held)."""
        last = group[-1]
        try:
            # the final pass reads the resources afresh: the form a create's link remembers
            # holds the references it was sent without (to itself, to entries created later)
            result = self._reconcile(group, trust_link=not final)
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:  # one entry's trouble never stops the others
            result = Result(
                synclog.CHANGE_FAILED,
                dn=last.new_dn or last.dn,
                detail=f"{type(exc).__name__}: {exc}",
            )
        if (result.unresolved and not final) or _name_taken(result):
            return result  # logged after a later pass, so each change has one outcome
        self._conclude(group, result)
        return result

    def _conclude(self, group: list[Change], result: Result) -> None:
        """Record an entry's final outcome: its failure, or its failure cleared; and the log."""
        last = group[-1]
        if result.msg_type == synclog.CHANGE_FAILED:
            self._record_failure(
                result, result.dn or last.new_dn or last.dn, _failure_key(last), last.kind
            )
        else:
            self._clear_failures(result.key, _failure_key(last))
        for change in group:
            self.log.write(
                result.msg_type,
                kind=change.kind,
                dn=result.dn or change.new_dn or change.dn,
                change_number=change.change_number,
                csn=change.csn,
                situation=result.situation,
                scim_id=result.scim_id,
                **{"class": result.class_name},
                detail=result.detail or None,
                changes=result.changes or None,
            )

    def _entry(self, group: list[Change]) -> tuple[dict[str, Any] | None, Link | None, str | None]:
        """The entry of a group of changes as it is now (None: deleted), its link and key."""
        last = group[-1]
        dn = last.new_dn or last.dn
        unique_id = last.entry_uuid or last.unique_id
        unique_attr = self.reconciler.unique_id if last.entry_uuid else last.unique_id_attribute
        if last.kind == "delete":
            entry = None
        elif _identity(group[0]) in self._prefetched:
            entry = self._prefetched[_identity(group[0])]
        else:
            entry = self.reconciler.locate(dn, unique_id, unique_attr)
        link = self._link(group, entry)
        key = entry_key(entry) if entry is not None else (link.entry_uuid if link else None)
        return entry, link, key

    def _reconcile(self, group: list[Change], trust_link: bool = True) -> Result:
        last = group[-1]
        dn = last.new_dn or last.dn
        entry, link, key = self._entry(group)
        kinds = {c.kind for c in group}
        flag = "creates" if kinds == {"add"} else ("deletes" if last.kind == "delete" else None)
        try:
            result = self.reconciler.reconcile(
                entry, link, kind_allowed=flag if entry is not None else None, trust_link=trust_link
            )
        except FatalError:
            raise
        except Exception as exc:  # the target failed: a failure of this entry, under its key
            return Result(
                synclog.CHANGE_FAILED, dn=dn, key=key, detail=f"{type(exc).__name__}: {exc}"
            )
        result.key = result.key or key
        return result

    def _settle_names(self, groups: list[list[Change]]) -> dict[int, Result]:
        """Entries refused with 409 on a unique name, applied again as one plan, as resync
        applies one: each name freed before it is taken, a cycle's first resource moved aside
        to a temporary name for a moment (toolkit.sync.apply)."""
        read = [self._entry(group) for group in groups]
        try:
            results = self.reconciler.reconcile_together([(e, lk) for e, lk, _ in read])
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:
            failed = f"{type(exc).__name__}: {exc}"
            results = [Result(synclog.CHANGE_FAILED, detail=failed) for _ in groups]
        out = {}
        for group, (_, _, key), result in zip(groups, read, results, strict=True):
            result.key = result.key or key
            self._conclude(group, result)
            out[id(group)] = result
        return out

    def _reconcile_referencing(self, pool: ThreadPoolExecutor, dns: list[str]) -> None:
        """The entries naming an entry that was added, deleted, renamed or moved (as manager,
        as member) map anew, as a resync maps them: reconcile them too. Those that this
        creates or deletes in turn are followed, up to REFERENCE_ROUNDS rounds."""
        for _ in range(REFERENCE_ROUNDS):
            # each round after the last's outcomes: entries reconciled side by side may have
            # read each other's links before one was moved
            wanted = list({_dn_key(dn): dn for dn in dns}.values())
            if not wanted or self.stop_event.is_set():
                return
            try:
                entries = self.reconciler.referencers(wanted)
            except FatalError:
                self.stop_event.set()
                raise
            except Exception as exc:  # retried in the background: each DN's entry again
                for dn in wanted:
                    self._record_failure(
                        Result(synclog.CHANGE_FAILED, detail=f"{type(exc).__name__}: {exc}"),
                        dn,
                        "dn:" + _dn_key(dn),
                        "references",
                    )
                return
            results = list(pool.map(self._reconcile_referencer, entries))
            dns = [r.dn for r in results if r.dn and _creates_or_deletes(r)]
            dns += [dn for r in results for dn in _moved(r)]

    def _reconcile_referencer(self, entry: dict[str, Any]) -> Result:
        """Reconcile an entry naming one that changed; log and record its outcome."""
        key = entry_key(entry)
        try:
            result = self.reconciler.reconcile(entry, None)
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:
            result = Result(synclog.CHANGE_FAILED, detail=f"{type(exc).__name__}: {exc}")
        result.key, result.dn = result.key or key, result.dn or entry["dn"]
        if result.msg_type == synclog.CHANGE_FAILED:
            self._record_failure(result, result.dn, key, "modify")
        else:
            self._clear_failures(result.key, key)
        with self._failures_lock:
            counted = self.stats.referencing
            counted[result.msg_type] = counted.get(result.msg_type, 0) + 1
        self.log.write(
            result.msg_type,
            dn=result.dn,
            situation=result.situation,
            scim_id=result.scim_id,
            **{"class": result.class_name},
            detail="; ".join(t for t in ("an entry it names changed", result.detail) if t),
            changes=result.changes or None,
        )
        return result

    def _link(self, group: list[Change], entry: dict[str, Any] | None) -> Link | None:
        """The entry's link: by its entryUUID (the change's, else the entry's as read now), else,
        for an entry gone, by any DN it had in these changes (389-DS changes, deletes above
        all, carry no entryUUID, and the link may still hold a DN from before a rename in
        this batch). An entry read is never given another's link by DN: after a swap in the
        batch, its DN's link is the other entry's."""
        uuids = [c.entry_uuid for c in reversed(group) if c.entry_uuid]
        if entry is not None:
            uuids.insert(0, entry_key(entry))
        for uuid in dict.fromkeys(uuids):
            link = self.store.link(self.pipe.name, uuid)
            if link is not None:
                return link
        if entry is not None:
            return None
        dns = [dn for c in reversed(group) for dn in (c.new_dn, c.dn) if dn]
        for dn in dict.fromkeys(dns):
            link = self.store.link_by_dn(self.pipe.name, dn)
            if link is not None:
                return link
        return None

    # --- failures ----------------------------------------------------------------------------

    def _retry_delay(self, retries_done: int) -> float:
        """The wait before the next background retry: failed-op-background-retry-delay, doubled
        after each retry that failed."""
        return self.pipe.failed_op_background_retry_delay * 2**retries_done

    def _record_failure(self, result: Result, dn: str, fallback_key: str, operation: str) -> None:
        """An entry that failed all its attempts: into the failures table, due for its first
        background retry. A new change's failure starts the count again (it earns its own
        retries), and replaces the row the applier wrote for the same failure."""
        key = result.key or fallback_key
        if result.held:  # kept for the operator: never retried in the background
            self.stats.held_deletes += 1
            self.store.put_failure(
                self.pipe.name,
                key,
                dn,
                result.detail,
                HELD_DELETE,
                attempts=0,
                background_retries=0,
                next_retry_at=None,
                class_name=result.class_name,
                operation=operation,
            )
            return
        retries = self.pipe.max_failed_op_background_retries
        self.store.put_failure(
            self.pipe.name,
            key,
            dn,
            result.detail,
            "realtime",
            attempts=self.pipe.max_operation_attempts,
            background_retries=0,
            next_retry_at=time.time() + self._retry_delay(0) if retries > 0 else None,
            class_name=result.class_name,
            operation=operation,
        )
        with self._failures_lock:
            self._failure_keys.add(key)
            self._failed_keys.add(key)
        if retries == 0:
            self._write_failed_dn(dn, result.detail)

    def _clear_failures(self, *keys: str | None) -> None:
        """The entry is in sync, or gone: its failure (under any of its keys) is over."""
        for key in dict.fromkeys(k for k in keys if k):
            with self._failures_lock:
                if key not in self._failure_keys:
                    continue
                self._failure_keys.discard(key)
            self.store.clear_failure(self.pipe.name, key)

    def _write_failed_dn(self, dn: str, error: str) -> None:
        """A change that finally failed: its DN for `resync --source-input-file` (Ping's
        sync-failed-dns)."""
        path = pipe_files(self.config, self.pipe).failed_dns
        first_line = (error or "").splitlines()[0] if error else ""
        with self._failed_dns_lock, open_private(path, "a") as out:
            out.write(f"# realtime: {first_line}\n{dn}\n")

    def _settle_held_deletes(self) -> None:
        """Deletes held back by earlier runs: applied now with --allow-deletes; forgotten
        once their resource is gone (a resync applied them); else kept for the operator."""
        for failure in self.store.failures(self.pipe.name):
            if failure.kind != HELD_DELETE:
                continue
            if self.allow_deletes:
                (result,) = self._retry([failure])
                self._log_retry(failure, result, "held delete released by --allow-deletes")
                if result.msg_type == synclog.CHANGE_FAILED:
                    continue  # stays held; the next start with --allow-deletes tries again
            elif self._link_of(failure) is not None:
                continue
            self.store.clear_failure(self.pipe.name, failure.key)

    def _log_retry(self, failure: Failure, result: Result, why: str) -> None:
        self.log.write(
            result.msg_type,
            dn=result.dn or failure.dn,
            situation=result.situation,
            scim_id=result.scim_id,
            **{"class": result.class_name},
            detail=f"{why}: {result.detail}",
            changes=result.changes or None,
        )

    def _link_of(self, failure: Failure) -> Link | None:
        if failure.key.startswith("dn:"):
            return self.store.link_by_dn(self.pipe.name, failure.dn)
        return self.store.link(self.pipe.name, failure.key)

    def _retry_failures(self) -> None:
        """The second retry level: failed changes again after failed-op-background-retry-delay
        (doubled after each retry that failed), up to max-failed-op-background-retries times.
        A retry that settles an entry follows it to the entries naming it."""
        now = time.time()
        limit = self.pipe.max_failed_op_background_retries
        stored = self.store.failures(self.pipe.name)
        with self._failures_lock:
            self._failure_keys = {f.key for f in stored}
        due = [
            f
            for f in stored
            if f.kind == "realtime"
            and f.next_retry_at is not None
            and f.next_retry_at <= now
            and f.background_retries < limit
        ]
        settled: list[str] = []
        results = {}
        for failure in due:
            if self.stop_event.is_set():
                return
            results[failure.key] = self._retry([failure])[0]
        held = [f for f in due if _name_taken(results[f.key])]
        if held:  # names taken from each other: applied together, as resync applies them
            results.update(zip((f.key for f in held), self._retry(held), strict=True))
        for failure in due:
            result = results[failure.key]
            self._log_retry(failure, result, f"background retry {failure.background_retries + 1}")
            retried = self.stats.background_retries
            retried[result.msg_type] = retried.get(result.msg_type, 0) + 1
            if result.msg_type != synclog.CHANGE_FAILED:
                self._clear_failures(failure.key, result.key)
                if failure.operation != "modify" or _creates_or_deletes(result):
                    settled.append(failure.dn)
                settled += _moved(result)
                continue
            done = failure.background_retries + 1
            self.store.put_failure(
                self.pipe.name,
                failure.key,
                failure.dn,
                result.detail,
                "realtime",
                attempts=failure.attempts + self.pipe.max_operation_attempts,
                background_retries=done,
                next_retry_at=None if done >= limit else time.time() + self._retry_delay(done),
                class_name=failure.class_name,
                operation=failure.operation,
            )
            with self._failures_lock:
                self._failed_keys.add(failure.key)
            if done >= limit:
                self._write_failed_dn(failure.dn, result.detail)
        if settled:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="scimsync-retry") as pool:
                self._reconcile_referencing(pool, settled)

    def _retry(self, failures: list[Failure]) -> list[Result]:
        """Reconcile failed entries as they are now (found by entryUUID, else by DN); several
        in one plan (toolkit.sync.reconcile.Reconciler.reconcile_together)."""
        try:
            read = []
            for failure in failures:
                if failure.key.startswith("dn:"):
                    entry = self.reconciler.locate(failure.dn, None, None)
                else:
                    entry = self.reconciler.locate(None, failure.key, self.reconciler.unique_id)
                read.append((entry, self._link_of(failure)))
            if len(read) == 1:
                return [self.reconciler.reconcile(*read[0])]
            return self.reconciler.reconcile_together(read)
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:  # still failing: counted as this retry's failure
            detail = f"{type(exc).__name__}: {exc}"
            return [Result(synclog.CHANGE_FAILED, dn=f.dn, detail=detail) for f in failures]

    def _write_status(self) -> None:
        path = self.runtime.files.status
        tmp = path.with_suffix(".tmp")
        with open_private(tmp) as out:
            out.write(json.dumps(asdict(self.stats), default=str))
        tmp.replace(path)


def _merged(
    entries: dict[str, dict[str, Any]],
    later: list[Change],
    later_entries: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The entries read ahead for a batch, joined by changes read later: an entry read before
    one of those changes is dropped unless read again (it is then looked up on its own)."""
    changed = {_identity(c) for c in later}
    out = {k: v for k, v in entries.items() if k not in changed}
    out.update(later_entries)
    return out


def _chains(groups: list[list[Change]]) -> list[list[list[Change]]]:
    """The entries' change groups, those that share a DN joined into one chain (in feed order).

    A delete and a re-add of one DN, or two entries swapping names, are different entries
    that must not run in parallel: the second would correlate to the first's resource.
    """
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, group in enumerate(groups):
        for change in group:
            for dn in (change.dn, change.new_dn):
                if not dn:
                    continue
                key = _dn_key(dn)
                if key in owner:
                    parent[root(i)] = root(owner[key])
                else:
                    owner[key] = i
    chains: OrderedDict[int, list[list[Change]]] = OrderedDict()
    for i, group in enumerate(groups):
        chains.setdefault(root(i), []).append(group)
    return list(chains.values())


def _name_taken(result: Result) -> bool:
    """A change refused with 409: the unique name it takes is held, perhaps by another entry
    of the batch that gives it up (a swap, a rotation), which the names pass settles."""
    return result.msg_type == synclog.CHANGE_FAILED and isinstance(result.error, Conflict)


def _creates_or_deletes(result: Result) -> bool:
    return result.msg_type == synclog.CHANGE_APPLIED and result.situation in (CREATE, DELETE, ADOPT)


def _named_anew(group: list[Change], result: Result) -> list[str]:
    """The DNs whose entry (or its resource) the group's outcome added, removed or moved:
    entries naming one of them map anew. None for a failure (its retry follows them)."""
    if result.msg_type == synclog.CHANGE_FAILED:
        return []
    dns = [dn for c in group if c.kind != "modify" for dn in (c.dn, c.new_dn) if dn]
    if _creates_or_deletes(result) and result.dn:
        dns.append(result.dn)  # a modify that took the entry into or out of scope
    return dns + _moved(result)


def _moved(result: Result) -> list[str]:
    """Both DNs of an entry whose link this outcome moved (a rename applied late, after it
    failed): the entries naming either map anew."""
    if result.moved_from is None or result.msg_type == synclog.CHANGE_FAILED:
        return []
    return [result.moved_from, *([result.dn] if result.dn else [])]


def _dn_key(dn: str) -> str:
    try:
        return str(normalize_dn(dn))
    except Exception:  # an odd DN still chains with the same spelling
        return dn.strip().lower()


def _failure_key(change: Change) -> str:
    """The failures-table key of a change whose entry was not read: the applier's key form."""
    if change.entry_uuid:
        return change.entry_uuid.lower()
    return "dn:" + _dn_key(change.new_dn or change.dn)


def _identity(change: Change) -> str:
    """Changes with the same identity are one entry's: kept in order, reconciled together.

    The feed's unique id first: 389-DS gives targetUniqueId on every change but an entryUUID
    only on adds, so the entryUUID would split one entry's changes.
    """
    if change.unique_id:
        return "uid:" + change.unique_id.lower()
    if change.entry_uuid:
        return "uuid:" + change.entry_uuid.lower()
    return "dn:" + str(normalize_dn(change.dn))


# --- start, stop, status -----------------------------------------------------------------------


def run_foreground(
    config: Config,
    pipe_name: str | None,
    until_idle: bool,
    max_changes: int | None,
    allow_deletes: bool = False,
    on_progress: Listener | None = None,
) -> Stats:
    check_positive(max_changes, "--max-changes", integer=True)
    sync = RealtimeSync(config, pipe_name, allow_deletes=allow_deletes, on_progress=on_progress)
    pidf = sync.runtime.files.pid
    if sync.runtime.files.running_pid():
        sync.close()
        raise FatalError(f"pipe {sync.pipe.name} is already running (pid file {pidf})")
    try:  # the writer lock before the pid file: a refused process never looks started
        held = lock.acquire(config.state_dir, sync.pipe.name, lock.REALTIME)
    except BaseException:
        sync.close()
        raise
    private_dir(pidf.parent)
    with open_private(pidf) as out:
        out.write(f"{os.getpid()}\n")

    def stop(*_: object) -> None:
        sync.stop_event.set()  # in-flight changes finish; the cursor is saved; then exit

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return sync.run(until_idle=until_idle, max_changes=max_changes)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sync.close()
        lock.release(held)  # before the pid file goes: `stop` returning means the pipe is free
        pidf.unlink(missing_ok=True)


def start_detached(config: Config, pipe_name: str | None, allow_deletes: bool = False) -> int:
    """Run realtime sync in a process of its own (toolkit.sync.detached); returns its PID."""
    pipe = config.pipe(pipe_name)
    if pipe_files(config, pipe).running_pid():
        raise FatalError(f"pipe {pipe.name} is already running")
    lock.check_free(config.state_dir, pipe.name)  # refused here, not once detached
    private_dir(config.state_dir)
    out = open_private(pipe_files(config, pipe).realtime_out, "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit.sync.detached",
            str(config.path),
            pipe.name,
            *(["--allow-deletes"] if allow_deletes else []),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pipe_files(config, pipe).running_pid() == proc.pid:
            # reap it when it ends: a long-lived caller (a notebook) would otherwise keep a
            # zombie that still answers kill(pid, 0), so the pipe would look started
            threading.Thread(target=proc.wait, daemon=True).start()
            return proc.pid
        if proc.poll() is not None:
            tail = pipe_files(config, pipe).realtime_out.read_text(errors="replace")[-800:]
            raise FatalError(f"realtime sync exited at start ({proc.returncode}): {tail}")
        time.sleep(0.05)
    raise FatalError("realtime sync did not start within 30 s")


def stop(config: Config, pipe_name: str | None, timeout: float = 120.0) -> int | None:
    """Ask the running process to stop after its in-flight changes; wait until it has."""
    pipe = config.pipe(pipe_name)
    pid = pipe_files(config, pipe).running_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pipe_files(config, pipe).running_pid() == pid:
        time.sleep(0.05)
    if pipe_files(config, pipe).running_pid() == pid:
        raise FatalError(f"pipe {pipe.name} (pid {pid}) did not stop within {timeout:.0f} s")
    return pid


@dataclass(frozen=True)
class RealtimeStatus:
    """One pipe's realtime state, as `scimsync status` and the realtime panel show it."""

    pipe: str
    pid: int | None  # of the running process; None when stopped
    cursor: str | None  # as stored (the detector's state)
    detector: str | None
    lag_changes: int | None  # changes waiting after the cursor (up to 10,000); None: unknown
    lag_seconds: float | None  # how old the oldest of them is
    ops_per_second: float
    changes_processed: int
    completed: dict[str, int]
    background_retries: dict[str, int]
    referencing: dict[str, int]  # entries reconciled because an entry they name changed
    failures: list[Failure]
    links: int
    last_resync: Run | None

    @property
    def started(self) -> bool:
        return self.pid is not None

    @property
    def position(self) -> str:
        """The cursor for people (never its raw state)."""
        return describe_cursor(self.cursor)

    def as_json(self) -> dict[str, Any]:
        """The `status --json` shape."""
        return {
            "pipe": self.pipe,
            "started": self.started,
            "pid": self.pid,
            "cursor": self.cursor,
            "position": self.position,
            "detector": self.detector,
            "lag": {"changes": self.lag_changes, "seconds": self.lag_seconds},
            "ops_per_second": self.ops_per_second,
            "changes_processed": self.changes_processed,
            "completed": self.completed,
            "background_retries": self.background_retries,
            "referencing": self.referencing,
            "failures": [
                {
                    "dn": f.dn,
                    "error": f.error,
                    "attempts": f.attempts,
                    "background_retries": f.background_retries,
                }
                for f in self.failures
            ],
            "links": self.links,
            "last_resync": {
                "status": self.last_resync.status,  # running, completed, ..., interrupted
                "totals": self.last_resync.totals,
                "started_at": self.last_resync.started_at,
                "finished_at": self.last_resync.finished_at,
            }
            if self.last_resync
            else None,
        }

    def facts(self) -> list[tuple[str, str]]:
        """(name, value) lines: what the CLI prints and the panel's table shows."""
        lag = "unknown" if self.lag_changes is None else f"{self.lag_changes} changes"
        if self.lag_seconds is not None and self.lag_changes:
            lag += f", the oldest {self.lag_seconds:.1f} s old"
        completed = ", ".join(f"{k} {v}" for k, v in sorted(self.completed.items()))
        return [
            ("state", f"started (pid {self.pid})" if self.started else "stopped"),
            ("position", self.position),
            ("change feed", self.detector or "not read yet"),
            ("lag", lag),
            ("ops/second", f"{self.ops_per_second:g}"),
            ("processed", f"{self.changes_processed} changes; {completed or 'none'}"),
            ("links", str(self.links)),
            ("failures", str(len(self.failures))),
            ("last resync", self.last_resync.status if self.last_resync else "none"),
        ]


def status(config: Config, pipe_name: str | None) -> RealtimeStatus:
    """Started or not, cursor, lag, rates, completion counters, failures."""
    with PipeRuntime(config, pipe_name) as runtime:
        pipe, store, files = runtime.pipe, runtime.store, runtime.files
        cursor = store.cursor(pipe.name)
        failures = store.failures(pipe.name)
        links = sum(store.link_counts(pipe.name).values())
        runs = store.runs(pipe.name)
    stats: dict[str, Any] = json.loads(files.status.read_text()) if files.status.exists() else {}
    pid = files.running_pid()
    behind, seconds = _lag(config, pipe, cursor)
    return RealtimeStatus(
        pipe=pipe.name,
        pid=pid,
        cursor=cursor,
        detector=stats.get("detector"),
        lag_changes=behind,
        lag_seconds=seconds,
        ops_per_second=round(stats.get("ops_per_second", 0.0), 1) if pid else 0.0,
        changes_processed=stats.get("changes", 0),
        completed=stats.get("completed", {}),
        background_retries=stats.get("background_retries", {}),
        referencing=stats.get("referencing", {}),
        failures=failures,
        links=links,
        last_resync=next((r for r in reversed(runs) if r.kind == "resync"), None),
    )


def _lag(
    config: Config, pipe: SyncPipe, cursor: str | None, cap: int = 10000
) -> tuple[int | None, float | None]:
    """How many changes (up to `cap`) wait after the cursor, and how old the oldest is."""
    if cursor is None:
        return None, None
    try:
        source = feed_source(config, pipe)
    except FatalError:
        return None, None
    try:
        detector, _ = source.change_detector()
        try:
            changes, _ = detector.poll(cursor, cap)
        finally:
            detector.close()
    except Exception:
        return None, None
    finally:
        source.close()
    if not changes:
        return 0, 0.0
    first = changes[0].time
    seconds = (datetime.now(UTC) - first).total_seconds() if first else None
    return len(changes), seconds
