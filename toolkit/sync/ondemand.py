"""Provision on demand: apply a few DNs now and tell, step by step, what happened to each.

The steps are those of Microsoft Entra's provision on demand: the entry imported, its class
and scope, the correlation with a SCIM resource, the action, the requests sent, the
server's responses, and the resource as the server now has it. The work itself is a
resync of just those DNs (`RunOptions.dns`, the same partial plan as `--source-input-file`):
one plan, one Applier, one set of guards; this module only reads the result.
`preview` is the same without applying (a dry run of those DNs): the setup notebook's
mapping preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from toolkit.config.dn import normalize_dn
from toolkit.config.model import Config, SyncClass
from toolkit.errors import FatalError, ScimsyncError
from toolkit.plan.model import CONFLICT, CREATE, DUPLICATE, OUT_OF_SCOPE, UNCHANGED, Row
from toolkit.plan.plan import Plan
from toolkit.sync.apply import Outcome
from toolkit.sync.batch import ResyncResult, RunOptions, dry_run, resync, scope_text
from toolkit.sync.runtime import PipeRuntime

IMPORT = "import"
SCOPE = "class and scope"
CORRELATION = "correlation"
ACTION = "action"
REQUEST = "request"
RESPONSE = "response"
RESOURCE = "resource"
STEPS = (IMPORT, SCOPE, CORRELATION, ACTION, REQUEST, RESPONSE, RESOURCE)


@dataclass
class Step:
    name: str
    ok: bool | None  # None: nothing to judge (skipped)
    detail: str
    data: Any = None  # what the step shows as JSON (the entry, the requests, the resource)


@dataclass
class ObjectReport:
    """What provisioning one DN did (one per resource type its entry became)."""

    dn: str
    steps: list[Step] = field(default_factory=list)
    situation: str | None = None
    resource_type: str | None = None
    scim_id: str | None = None

    @property
    def ok(self) -> bool:
        return all(step.ok is not False for step in self.steps)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


@dataclass
class OnDemandResult:
    plan: Plan
    reports: list[ObjectReport]
    resync: ResyncResult | None = None  # None for a preview

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.reports)


def provision(config: Config, dns: list[str], options: RunOptions | None = None) -> OnDemandResult:
    """Apply just `dns` now (a resync of those entries) and report each one's steps.

    `options` carries the pipe and the guard overrides; its `dns` is replaced by `dns`."""
    run = _options(dns, options)
    result = resync(config, run)
    outcomes = {id(o.row): o for o in result.applied.outcomes}
    resources = _read_back(config, run, result)
    reports = _reports(config, run, result.plan, dns, outcomes, resources)
    return OnDemandResult(result.plan, reports, result)


def preview(config: Config, dns: list[str], options: RunOptions | None = None) -> OnDemandResult:
    """What provisioning `dns` would do: a dry run of those entries, nothing sent."""
    run = _options(dns, options)
    plan = dry_run(config, run)
    return OnDemandResult(plan, _reports(config, run, plan, dns, None, {}))


def _options(dns: list[str], options: RunOptions | None) -> RunOptions:
    if not dns:
        raise FatalError("provision on demand: no DN given")
    return replace(options or RunOptions(), dns=list(dns), source_input_file=None)


def _read_back(
    config: Config, options: RunOptions, result: ResyncResult
) -> dict[tuple[str, str], dict[str, Any] | str]:
    """The resource each applied row now is on the server (or why it cannot be read)."""
    wanted = {
        (o.row.resource_type, o.scim_id)
        for o in result.applied.outcomes
        if o.ok and o.scim_id and not _deletes(o.row)
    }
    found: dict[tuple[str, str], dict[str, Any] | str] = {}
    if not wanted:
        return found
    with PipeRuntime(config, options.pipe_name) as runtime:
        for kind, scim_id in sorted(wanted):
            try:
                found[(kind, scim_id)] = runtime.client.get(kind, scim_id)
            except ScimsyncError as exc:
                found[(kind, scim_id)] = str(exc)
    return found


def _reports(
    config: Config,
    options: RunOptions,
    plan: Plan,
    dns: list[str],
    outcomes: dict[int, Outcome] | None,
    resources: dict[tuple[str, str], dict[str, Any] | str],
) -> list[ObjectReport]:
    pipe = config.pipe(options.pipe_name)
    by_dn: dict[str, list[Row]] = {}
    for row in plan.rows:
        if row.situation != DUPLICATE:  # a duplicate is a resource, not one of these entries
            by_dn.setdefault(normalize_dn(row.dn), []).append(row)
    reports = []
    for dn in dict.fromkeys(dns):
        rows = by_dn.get(normalize_dn(dn), [])
        if not rows:
            scopes = "; ".join(
                f"{c.name}: {scope_text(c)}" for c in pipe.classes_in_order() if not c.is_exclusion
            )
            reports.append(
                ObjectReport(
                    dn,
                    [
                        Step(
                            IMPORT,
                            False,
                            "not read: no such entry, or no synchronizing class takes it "
                            f"(classes: {scopes})",
                        )
                    ],
                )
            )
            continue
        for row in rows:
            outcome = outcomes.get(id(row)) if outcomes is not None else None
            sync_class = pipe.sync_classes.get(row.class_name)
            applied = outcomes is not None
            reports.append(_report(sync_class, plan, row, applied, outcome, resources))
    return reports


def _report(
    sync_class: SyncClass | None,
    plan: Plan,
    row: Row,
    applied: bool,
    outcome: Outcome | None,
    resources: dict[tuple[str, str], dict[str, Any] | str],
) -> ObjectReport:
    report = ObjectReport(row.dn, situation=row.situation, resource_type=row.resource_type)
    steps = report.steps
    entry = {k: v for k, v in (row.source or {}).items() if k != "dn"} or None
    steps.append(
        Step(IMPORT, True, "read from LDAP" if entry else "not in LDAP (linked before)", entry)
    )
    scope = scope_text(sync_class) if sync_class is not None else "?"
    if row.situation == OUT_OF_SCOPE:
        steps.append(Step(SCOPE, False, f"class {row.class_name} ({scope}): {row.reason}"))
        return report
    steps.append(
        Step(SCOPE, True, f"class {row.class_name} ({scope}), becomes a {row.resource_type}")
    )
    if row.situation == CONFLICT:
        steps.append(Step(CORRELATION, False, row.reason or "conflict", plan.desired(row)))
        return report
    if row.scim_id:
        how = f"matched {row.resource_type} {row.scim_id}"
    else:
        how = f"no {row.resource_type} matches: a new one"
    steps.append(
        Step(CORRELATION, True, how + (f" ({row.reason})" if row.reason else ""), row.target)
    )
    changes = [{k: v for k, v in c.items() if v not in (None, [])} for c in row.changes]
    if row.problems:
        steps.append(
            Step(ACTION, False, f"{row.situation}: the server's schema refuses it", row.problems)
        )
    else:
        if row.situation == UNCHANGED or not row.requests:
            what = "nothing to change"
        elif row.situation == CREATE:
            what = "create"
        else:
            what = f"{row.situation}: {len(changes)} attributes"
        steps.append(Step(ACTION, True, what, changes or plan.desired(row)))
    sent = [r.as_dict() for r in row.requests]
    steps.append(Step(REQUEST, None if not sent else True, f"{len(sent)} requests", sent or None))
    if not applied:
        return report
    if outcome is None:
        steps.append(Step(RESPONSE, None, "nothing sent"))
        report.scim_id = row.scim_id
        if row.target is not None:
            steps.append(Step(RESOURCE, True, "left as it was on the server", row.target))
        return report
    if outcome.ok:
        bodies = [r for r in outcome.responses if r is not None]
        said = f"applied: {len(outcome.responses)} answered"
        said += ", with the resource" if bodies else " without a body (204)"
        said += f" ({outcome.note})" if outcome.note else ""
        steps.append(Step(RESPONSE, True, said, bodies or None))
    else:
        steps.append(Step(RESPONSE, False, outcome.error, outcome.responses or None))
        return report
    report.scim_id = outcome.scim_id
    now = resources.get((row.resource_type, report.scim_id or ""))
    if isinstance(now, dict):
        where = f"{row.resource_type} {report.scim_id} as the server now has it"
        steps.append(Step(RESOURCE, True, where, now))
    elif isinstance(now, str):
        steps.append(Step(RESOURCE, False, f"cannot read it back: {now}"))
    elif _deletes(row):
        steps.append(Step(RESOURCE, True, "deleted"))
    return report


def _deletes(row: Row) -> bool:
    return bool(row.requests) and row.requests[0].method == "DELETE"
