"""dry-run and resync: read both sides, build the plan, and (for resync) apply it.

A dry run and a resync run the same code up to the plan; resync then applies exactly that
plan. Nothing is written to LDAP or SCIM by a dry run (the state store records the run).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import collector
from toolkit.config.dn import DNError, is_within, parse_dn
from toolkit.config.model import Config, SyncClass, SyncPipe
from toolkit.config.properties import (
    DeleteLimit,
    check_filter,
    check_positive,
    parse_delete_limit,
)
from toolkit.errors import FatalError
from toolkit.ldap.match import matches
from toolkit.mapping.resource import ResourceMapping
from toolkit.plan import guards
from toolkit.plan.engine import ClassRead, PlanInputs, build
from toolkit.plan.model import Row
from toolkit.plan.plan import Plan
from toolkit.plan.scope import reads_entries
from toolkit.progress import PLAN, READ_LDAP, Listener, Phase, counted
from toolkit.scim.validate import Validator
from toolkit.sync import lock
from toolkit.sync.apply import Applier, ApplyResult
from toolkit.sync.files import pipe_files
from toolkit.sync.reads import LdapReads, ScimReads, forget
from toolkit.sync.runtime import PipeRuntime
from toolkit.sync.startpoint import mark_before_first_resync


@dataclass
class RunOptions:
    pipe_name: str | None = None
    source_search_filter: str | None = None
    source_input_file: Path | None = None
    dns: list[str] | None = None  # only these DNs (`resync --dn`), read as the file's are
    max_deletes: str | None = None  # overrides the pipe's max-deletes ("50" or "5%")
    allow_deletes: bool = False
    allow_recreate: bool = False  # apply a plan recreating every resource gone from the server
    rate_per_second: float | None = None
    failed_dns_file: Path | None = None
    workers: int | None = None
    on_progress: Listener | None = None  # progress events of the reads, planning, applying
    full_compare: bool = False  # map and compare every object, even those found unchanged
    full_read: bool = False  # read both sides whole, not only what changed since the last read

    def __post_init__(self) -> None:
        """Options are checked before any server is asked; errors name the option."""
        check_filter(self.source_search_filter, "--source-search-filter")
        check_positive(self.rate_per_second, "--rate-per-second")
        check_positive(self.workers, "--workers", integer=True)
        if self.max_deletes is not None:
            parse_delete_limit(self.max_deletes, "--max-deletes")
        for dn in self.dns or ():
            try:
                parse_dn(dn)
            except DNError as exc:
                raise FatalError(f"--dn {dn!r}: not a DN: {exc}") from None

    @property
    def partial(self) -> bool:
        """Only some entries are read: absent ones are not deletes."""
        listed = self.source_input_file is not None or self.dns is not None
        return bool(self.source_search_filter) or listed  # an empty list reads nothing

    def listed_dns(self) -> list[str] | None:
        """The DNs to read (the input file's, then --dn's), or None for every entry."""
        if self.source_input_file is None and self.dns is None:
            return None
        listed = _read_dns(self.source_input_file) if self.source_input_file else []
        return list(dict.fromkeys([*listed, *(self.dns or ())]))


def open_session(config: Config, options: RunOptions) -> PipeRuntime:
    """The pipe's runtime for a dry run or a resync."""
    return PipeRuntime(config, options.pipe_name, options.rate_per_second).source_first()


def class_filter(sync_class: SyncClass, extra: str | None) -> str:
    parts = list(sync_class.include_filter)
    flt = (
        parts[0]
        if len(parts) == 1
        else ("(|" + "".join(parts) + ")" if parts else "(objectClass=*)")
    )
    return f"(&{flt}{extra})" if extra else flt


def _read_dns(path: Path) -> list[str]:
    """DNs from a failed-DNs file or any list: one per line, `dn:` prefix and # comments allowed."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise FatalError(f"{path}: {exc.strerror}") from None
    dns = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        dn = line[3:].strip() if line.lower().startswith("dn:") else line
        try:
            parse_dn(dn)
        except DNError as exc:
            raise FatalError(f"{path}:{number}: not a DN: {exc}") from None
        dns.append(dn)
    return dns


def read_classes(session: PipeRuntime, options: RunOptions) -> list[ClassRead]:
    """The entries of every synchronizing class, each class with its bases and filters."""
    with collector.paused():  # every entry read is kept: see toolkit.collector
        return _read_classes(session, options)


def _read_classes(session: PipeRuntime, options: RunOptions) -> list[ClassRead]:
    source_bases = list(session.config.source_of(session.pipe).base_dn)
    dns = options.listed_dns()
    ldap = LdapReads(session, options.full_read, options.on_progress, partial=options.partial)
    reads = []
    scope = session.scope
    for sync_class in scope.classes:
        if not reads_entries(sync_class):
            continue
        resource = scope.resources[sync_class.name]
        attributes = scope.class_attributes(sync_class)
        flt = class_filter(sync_class, options.source_search_filter)
        bases = list(sync_class.include_base_dn) or source_bases
        entries: list[dict[str, Any]] = []
        desc = f"reading LDAP ({sync_class.name})"
        if dns is None:  # whole, or what changed since the last read (toolkit.sync.reads)
            entries = ldap.read(sync_class.name, bases, flt, attributes)
        else:
            for dn in counted(dns, options.on_progress, READ_LDAP, desc, "DNs"):
                if any(is_within(dn, b) for b in bases):
                    entry = session.source.get_entry(dn, attributes)
                    if entry is not None and matches(entry, flt):
                        entries.append(entry)
        reads.append(ClassRead(sync_class, resource, entries))
    ldap.finish()
    session.reads.extend(ldap.notes)
    return reads


def read_targets(
    session: PipeRuntime,
    resources: Iterable[ResourceMapping],
    on_progress: Listener | None = None,
    options: RunOptions | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The SCIM resources of each resource type: whole, or what changed since the last read
    merged into it (toolkit.sync.reads); list pages fetched by up to num-worker-threads."""
    options = options or RunOptions(full_read=True)
    workers = options.workers or session.pipe.num_worker_threads
    scim = ScimReads(session, options.full_read, workers, on_progress)
    with collector.paused():  # every resource read is kept: see toolkit.collector
        targets = scim.read(r.name for r in resources)
    session.reads.extend(scim.notes)
    return targets


def make_plan(session: PipeRuntime, options: RunOptions) -> Plan:
    """Read both sides and build the plan (the whole of a dry run)."""
    started = time.perf_counter()
    session.reads.clear()
    links = session.store.links(session.pipe.name)
    # full compare: no object skips the comparison (the keys found are still recorded)
    stored_keys = session.store.quick_check_keys(session.pipe.name)
    quick_check_keys = {} if options.full_compare else stored_keys
    session.timings.state_read = time.perf_counter() - started
    started = time.perf_counter()
    classes = read_classes(session, options)
    session.timings.ldap_read = time.perf_counter() - started
    started = time.perf_counter()
    targets = read_targets(session, [c.mapping for c in classes], options.on_progress, options)
    endpoints = {name: session.client.endpoint_path(name) for name in targets}
    session.timings.scim_read = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    planning = Phase(options.on_progress, PLAN, "planning", "objects")
    partial = options.partial
    result = build(
        PlanInputs(
            pipe=session.pipe.name,
            classes=classes,
            targets=targets,
            links=links,
            endpoints=endpoints,
            update_method=session.config.destination_of(session.pipe).update_method,
            delete_policy=session.pipe.delete_policy,
            member_chunk_size=session.pipe.member_chunk_size,
            partial=partial,
            validator=Validator(session.client.discovery),
            quick_check_keys=quick_check_keys,
        )
    )
    verdict = guards.check(
        guards.GuardInputs(
            rows=result.rows,
            links=links,
            present={
                kind: {r["id"] for r in found if "id" in r} for kind, found in targets.items()
            },
            class_reads=_class_reads(classes, result.rows),
            filters={c.sync_class.name: scope_text(c.sync_class) for c in classes},
            source_count=result.source_count,
            previous_source_count=session.store.last_source_count(session.pipe.name),
            limit=_delete_limit(session.pipe, options),
            partial=partial,
        )
    )
    plan = Plan(
        pipe=session.pipe.name,
        rows=result.rows,
        stale_links=result.stale_links,
        source_count=result.source_count,
        managed_count=len(links),
        guard=verdict,
        partial=partial,
        quick_checked=result.quick_checked,
        views={read.mapping.name: read.mapping.mapped_view for read in classes},
        reads=[note.as_json() for note in session.reads],
    )
    planning.close(len(plan.rows))
    session.timings.plan = time.perf_counter() - started
    session.timings.plan_cpu = time.process_time() - cpu
    started = time.perf_counter()
    # only keys that moved: a full compare finds every unchanged object again (100,000
    # rows rewritten as they were took 3 s)
    found = result.quick_check_keys
    session.store.save_quick_check_keys(
        session.pipe.name, {k: v for k, v in found.items() if stored_keys.get(k) != v}
    )
    session.timings.state_write = time.perf_counter() - started
    return plan


def _delete_limit(pipe: SyncPipe, options: RunOptions) -> DeleteLimit:
    if not options.max_deletes:
        return pipe.max_deletes
    try:
        return parse_delete_limit(options.max_deletes)
    except (TypeError, ValueError):
        raise FatalError(
            f"--max-deletes {options.max_deletes}: expected a count (50) or a percentage (5%)"
        ) from None


def _class_reads(classes: list[ClassRead], rows: list[Row]) -> dict[str, int]:
    """Entries each synchronizing class took (an entry read by two goes to the first)."""
    counts = {c.sync_class.name: 0 for c in classes if not c.sync_class.is_exclusion}
    for row in rows:
        if row.source is not None and row.class_name in counts:
            counts[row.class_name] += 1
    return counts


def scope_text(sync_class: SyncClass) -> str:
    bases = ", ".join(sync_class.include_base_dn) or "the source's base DNs"
    return f"{' '.join(sync_class.include_filter) or '(objectClass=*)'} under {bases}"


def dry_run(config: Config, options: RunOptions) -> Plan:
    with open_session(config, options) as session:
        run_id = session.store.start_run(session.pipe.name, "dry-run")
        try:
            plan = make_plan(session, options)
        except BaseException:
            session.store.finish_run(run_id, "failed")
            raise
        session.store.finish_run(run_id, "completed", plan.source_count, plan.totals())
        return plan


@dataclass
class ResyncResult:
    plan: Plan
    applied: ApplyResult
    start_point: str | None = None  # what the resync did about realtime's start point

    def as_json(self) -> dict[str, Any]:
        out = self.plan.as_summary_json()
        out["applied"] = self.applied.applied
        out["failed"] = self.applied.failed
        return out


def _refuse_unless_allowed(plan: Plan, options: RunOptions) -> None:
    refusal = plan.guard.refusal(options.allow_deletes, options.allow_recreate)
    if refusal:
        raise guards.GuardRefused(refusal)


def _check_saved_plan(saved: Plan, fresh: Plan) -> None:
    """A saved plan applies only if its objects are as they were when it was made."""
    now = {(r.entry_uuid, r.resource_type): r for r in fresh.rows}
    changed = []
    for row in saved.rows:
        if not row.requests:
            continue
        current = now.get((row.entry_uuid, row.resource_type))
        same = (
            current is not None
            and current.situation == row.situation
            and current.etag == row.etag
            and current.content_hash() == row.hash
            and [r.as_dict() for r in current.requests] == [r.as_dict() for r in row.requests]
        )
        if not same:
            changed.append(row.dn)
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise FatalError(
            f"the saved plan is out of date: {len(changed)} objects changed since it was made ({shown}); "
            "make a new dry run"
        )


def resync(config: Config, options: RunOptions, saved_plan: Path | None = None) -> ResyncResult:
    # one writer per pipe, from before the plan is made: the plan applied is not raced
    pipe = config.pipe(options.pipe_name).name
    with lock.writer(config.state_dir, pipe, lock.RESYNC), open_session(config, options) as session:
        run_id = session.store.start_run(session.pipe.name, "resync")
        try:
            start_point = mark_before_first_resync(session.source, session.pipe, session.store)
            plan = make_plan(session, options)
            if saved_plan is not None:
                saved = Plan.load(saved_plan)
                if saved.pipe != session.pipe.name:
                    raise FatalError(
                        f"{saved_plan}: a plan for pipe {saved.pipe}, not {session.pipe.name}"
                    )
                _check_saved_plan(saved, plan)
                saved.reads = plan.reads
                plan = saved
            _refuse_unless_allowed(plan, options)
            failed_dns = (
                options.failed_dns_file or pipe_files(session.config, session.pipe).failed_dns
            )
            applier = Applier(
                plan,
                session.client,
                session.store,
                workers=options.workers or session.pipe.num_worker_threads,
                failed_dns_file=failed_dns,
                on_progress=options.on_progress,
                keep_outcomes=options.dns is not None,  # a few DNs: their steps are shown
            )
            applied = applier.run()
            forget(session, applied.deleted)
        except BaseException:
            session.store.finish_run(run_id, "failed")
            raise
        status = "completed" if not applied.failed else "completed-with-failures"
        # a filtered read says nothing about the source's size: keep the shrink guard's base
        count = None if plan.partial else plan.source_count
        session.store.finish_run(
            run_id,
            status if count is not None else "partial",
            count,
            plan.totals(),
            applied.applied,
            applied.failed,
        )
        return ResyncResult(plan, applied, start_point)
