"""Plan files: .json (the whole plan, loadable again), .csv, .parquet, and a readable .html."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from toolkit.config.private import create_private, open_private
from toolkit.errors import FatalError
from toolkit.plan.guards import ALLOW_DELETES, Finding, GuardVerdict
from toolkit.plan.model import Link, Request, Row
from toolkit.plan.plan import Plan, dumps

FORMAT_VERSION = 1
JSON_COLUMNS = ("changes", "body", "requests")


def save(plan: Plan, path: Path) -> Path:
    """Write the plan as its suffix says; the file is private (0600): it holds personal data."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv", ".parquet", ".html", ".htm"):
        raise FatalError(
            f"{path}: unknown plan format {suffix or '(none)'}; use .json, .csv, .parquet or .html"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FatalError(f"{path}: cannot create its folder: {exc.strerror}") from None
    if suffix == ".parquet":  # pyarrow opens the file by name: created private first
        frame = _flat_frame(plan)
        create_private(path)
        frame.to_parquet(path, index=False)
        return path
    if suffix == ".json":
        text = json.dumps(_to_json(plan), ensure_ascii=False, indent=1, default=str) + "\n"
    elif suffix == ".csv":
        text = _flat_frame(plan).to_csv(index=False)
    else:
        text = render_html(plan)
    with open_private(path) as out:  # made before it is opened: a failure leaves the old file
        out.write(text)
    return path


def _flat_frame(plan: Plan) -> Any:
    """The plan's frame with its nested columns as JSON text (CSV and Parquet cells)."""
    frame = plan.frame.copy()
    for column in JSON_COLUMNS:
        frame[column] = frame[column].map(dumps)
    return frame


def _to_json(plan: Plan) -> dict[str, Any]:
    return {
        "format": "scimsync-plan",
        "version": FORMAT_VERSION,
        "pipe": plan.pipe,
        "created_at": plan.created_at,
        "partial": plan.partial,
        "source_count": plan.source_count,
        "managed_count": plan.managed_count,
        "guard": {
            "problems": list(plan.guard.problems),
            "overridable": plan.guard.overridable,
            "findings": [asdict(f) for f in plan.guard.findings],
            "warnings": list(plan.guard.warnings),
        },
        "summary": plan.as_summary_json(),
        "stale_links": [asdict(link) for link in plan.stale_links],
        "rows": [_row_json(r) for r in plan.rows],
    }


def _row_json(row: Row) -> dict[str, Any]:
    data = asdict(row)
    data["hash"] = row.content_hash()
    data["requests"] = [r.as_dict() for r in row.requests]
    data["source"] = {
        k: [_text(v) for v in vs] if isinstance(vs, list) else _text(vs)
        for k, vs in (row.source or {}).items()
    }
    return data


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def load(path: Path) -> Plan:
    if path.suffix.lower() != ".json":
        raise FatalError(
            f"{path}: only .json plans can be applied (save the dry run with --output FILE.json)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FatalError(f"{path}: not a readable plan: {exc}") from exc
    if data.get("format") != "scimsync-plan" or data.get("version") != FORMAT_VERSION:
        raise FatalError(f"{path}: not a scimsync plan of format version {FORMAT_VERSION}")
    rows = []
    for item in data["rows"]:
        item["requests"] = [Request(**r) for r in item["requests"]]
        rows.append(Row(**item))
    return Plan(
        pipe=data["pipe"],
        rows=rows,
        stale_links=[Link(**link) for link in data["stale_links"]],
        source_count=data["source_count"],
        managed_count=data["managed_count"],
        guard=_guard(data["guard"]),
        partial=data["partial"],
        reads=data.get("summary", {}).get("reads", []),
        created_at=data["created_at"],
    )


def _guard(data: dict[str, Any]) -> GuardVerdict:
    findings = data.get("findings")
    if findings is None:  # a plan saved before findings named their override
        override = ALLOW_DELETES if data["overridable"] else None
        findings = [{"text": text, "override": override} for text in data["problems"]]
    return GuardVerdict(tuple(Finding(**f) for f in findings), tuple(data.get("warnings", ())))


def _value(value: Any) -> str:
    if value is None:
        return '<span class="none">—</span>'
    if isinstance(value, str):
        return html.escape(value)
    return f"<code>{html.escape(json.dumps(value, ensure_ascii=False))}</code>"


def render_html(plan: Plan) -> str:
    """A self-contained report: summary, per-class tables, per-object diffs and requests."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>scimsync plan: {html.escape(plan.pipe)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}"
        "code{font-size:.85em;white-space:pre-wrap}.none{color:#999}.warn{color:#a00}"
        "details{margin:.3em 0}summary{cursor:pointer}</style></head><body>",
        f"<h1>Plan for pipe {html.escape(plan.pipe)}</h1>",
        f"<p>{plan.source_count} source entries read; {plan.managed_count} resources managed by this pipe"
        f"{' (filtered read: no deletes inferred)' if plan.partial else ''}.</p>",
    ]
    for finding in plan.guard.findings:
        how = f"refused unless {finding.override}" if finding.override else "refused"
        parts.append(f"<p class='warn'><b>Resync {how}:</b> {html.escape(finding.text)}</p>")
    for warning in plan.guard.warnings:
        parts.append(f"<p class='warn'><b>Warning:</b> {html.escape(warning)}</p>")
    invalid = sum(1 for row in plan.rows if row.problems)
    if invalid:
        parts.append(
            f"<p class='warn'>{invalid} objects have requests the server's schema refuses: "
            "they are shown below and a resync does not send them.</p>"
        )
    duplicates = plan.duplicates()
    if duplicates:
        parts.append(
            f"<p class='warn'>{len(duplicates)} SCIM resources duplicate ones this pipe manages "
            "(situation duplicate): a run leaves them; remove or keep each by hand.</p>"
        )
    parts += ["<h2>Summary</h2>", plan.summary().to_html()]
    frame = plan.frame
    for name, group in frame.groupby("class", sort=False):
        parts.append(f"<h2>Class {html.escape(str(name))}</h2>")
        parts.append(
            group[["situation", "dn", "scim_id", "method", "path", "reason"]].to_html(
                index=False, na_rep=""
            )
        )
    parts.append("<h2>Objects with changes</h2>")
    for row in plan.rows:
        if not row.requests and not row.reason:
            continue
        parts.append(
            f"<details><summary>{html.escape(row.situation)} "
            f"{html.escape(row.dn or f'{row.resource_type} {row.scim_id}')}</summary>"
        )
        if row.reason:
            parts.append(f"<p>{html.escape(row.reason)}</p>")
        for problem in row.problems:
            parts.append(f"<p class='warn'>{html.escape(problem)}</p>")
        if row.changes:
            parts.append("<table><tr><th>attribute</th><th>now</th><th>after</th></tr>")
            for c in row.changes:
                old = c.get("old") if "old" in c else {"remove": c.get("remove")}
                new = c.get("new") if "new" in c else {"add": c.get("add")}
                parts.append(
                    f"<tr><td>{html.escape(c['attribute'])}</td><td>{_value(old)}</td><td>{_value(new)}</td></tr>"
                )
            parts.append("</table>")
        for request in row.requests:
            parts.append(f"<p><b>{request.method} {html.escape(request.path)}</b></p>")
            if request.body is not None:
                parts.append(
                    f"<code>{html.escape(json.dumps(request.body, ensure_ascii=False, indent=1))}</code>"
                )
        parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
