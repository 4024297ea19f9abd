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
    """Write the plan as its suffix says; the file is private (0600): it holds personal data.
    An .html report gets the full rows in a .parquet file of the same name beside it."""
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
    else:  # the report shows samples; every row goes to the parquet file beside it
        rows_file = save(plan, path.with_suffix(".parquet"))
        text = render_html(plan, rows_file.name)
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


#: objects shown per class and situation in the HTML report (the parquet beside it has all)
SAMPLE = 20
#: sample changes shown per attribute
ATTRIBUTE_SAMPLE = 5
#: characters of one value or request body shown in the report
CUT = 1500
_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;max-width:80em}"
    "h2{margin-top:1.6em;border-bottom:1px solid #ddd}code,pre{font-size:12px;white-space:pre-wrap}"
    ".warn{color:#a00}details{margin:.3em 0}summary{cursor:pointer}"
    ".charts img,.charts svg{max-width:100%;height:auto;display:block;margin:.5em 0}"
)


def render_html(plan: Plan, rows_file: str | None = None, sample: int = SAMPLE) -> str:
    """A report that stays small at any size: the summary, charts, per-attribute change counts
    with samples (datacompy's layout), and up to `sample` objects per class and situation with
    their diffs and requests. `rows_file` names the parquet file beside it with every row."""
    from toolkit.plan import charts, frames
    from toolkit.plan.tables import table_html

    names = frames.Names(plan)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>scimsync plan: {html.escape(plan.pipe)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Plan for pipe {html.escape(plan.pipe)}</h1>",
        f"<p>{plan.source_count:,} source entries read; {plan.managed_count:,} resources managed by this pipe"
        f"{' (filtered read: no deletes inferred)' if plan.partial else ''}; {len(plan):,} objects in the plan.</p>",
    ]
    if rows_file:
        parts.append(
            f"<p>Every row of the plan (changes and exact requests as JSON) is in "
            f"<a href='{html.escape(rows_file)}'>{html.escape(rows_file)}</a> beside this file "
            "(<code>pandas.read_parquet</code>); this report shows samples.</p>"
        )
    parts += _notes(plan)
    parts += ["<h2>Summary</h2>", table_html(plan.summary(), None, index=True)]
    parts.append("<h2>Charts</h2><div class='charts'>")
    parts += [_svg(chart.svg) for chart in charts.plan_charts(plan)]
    parts.append("</div>")
    counts = frames.attribute_counts(plan)
    parts.append("<h2>Changes per attribute</h2>")
    parts.append(
        "<p>Objects whose attribute a resync changes, and their rate of the class's objects "
        "compared (created, modified, adopted or unchanged); then a few of each.</p>"
    )
    parts.append(table_html(counts.drop(columns="path"), None))
    parts += _attribute_samples(plan, counts, names)
    by_class: dict[str, dict[str, list[Row]]] = {}
    for row in plan.rows:
        kept = by_class.setdefault(row.class_name, {}).setdefault(row.situation, [])
        if len(kept) < sample:
            kept.append(row)
    totals = plan.class_totals()
    for name, situations in by_class.items():
        parts.append(f"<h2>Class {html.escape(name)}</h2>")
        for situation, rows in situations.items():
            total = totals[name][situation]
            shown = f"{len(rows)} of {total:,}" if total > len(rows) else f"{total:,}"
            parts.append(f"<h3>{html.escape(situation)}: {shown} objects</h3>")
            parts += [_object(plan, row, names) for row in rows if row.requests or row.reason]
            plain = [row for row in rows if not (row.requests or row.reason)]
            if plain:  # nothing to send: their names suffice
                listed = frames.objects(Plan(plan.pipe, plain))[["name", "dn"]]
                parts.append(table_html(listed, None))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _notes(plan: Plan) -> list[str]:
    parts = []
    for finding in plan.guard.findings:
        how = f"refused unless {finding.override}" if finding.override else "refused"
        parts.append(f"<p class='warn'><b>Resync {how}:</b> {html.escape(finding.text)}</p>")
    for warning in plan.guard.warnings:
        parts.append(f"<p class='warn'><b>Warning:</b> {html.escape(warning)}</p>")
    invalid = sum(1 for row in plan.rows if row.problems)
    if invalid:
        parts.append(
            f"<p class='warn'>{invalid} objects have requests the server's schema refuses: "
            "a resync does not send them.</p>"
        )
    duplicates = plan.duplicates()
    if duplicates:
        parts.append(
            f"<p class='warn'>{len(duplicates)} SCIM resources duplicate ones this pipe manages "
            "(situation duplicate): a run leaves them; remove or keep each by hand.</p>"
        )
    return parts


def _svg(svg: str) -> str:
    # the XML prolog and DOCTYPE do not belong inside HTML
    return svg[svg.index("<svg") :]


def _attribute_samples(plan: Plan, counts: Any, names: Any) -> list[str]:
    from toolkit.plan import frames
    from toolkit.plan.tables import table_html

    wanted = {(c, p) for c, p in zip(counts["class"], counts["path"], strict=True)}
    picked: dict[tuple[str, str], list[Row]] = {}
    for row in plan.rows:
        if row.situation not in ("modify", "adopt", "delete"):
            continue
        for change in row.changes:
            key = (row.class_name, change["attribute"])
            if key in wanted and len(picked.setdefault(key, [])) < ATTRIBUTE_SAMPLE:
                picked[key].append(row)
    parts = []
    for (cls, path), rows in picked.items():
        lines = frames.changes(plan, rows, names=names)
        lines = lines[lines["path"] == path]
        lines = lines.assign(old=lines["old"].map(_cut), new=lines["new"].map(_cut))
        parts.append(
            f"<details><summary>{html.escape(frames.short_name(path))} ({html.escape(cls)}): "
            f"{len(lines)} samples</summary>"
        )
        parts.append(table_html(lines[["name", "old", "new", "situation", "dn"]], None))
        parts.append("</details>")
    return parts


def _cut(text: str) -> str:
    return text if len(text) <= CUT else f"{text[:CUT]}… ({len(text):,} characters)"


def _object(plan: Plan, row: Row, names: Any) -> str:
    from toolkit.plan import frames
    from toolkit.plan.tables import table_html

    label = row.dn or f"{row.resource_type} {row.scim_id}"
    parts = [
        f"<details><summary>{html.escape(row.situation)} {html.escape(label)}"
        f" <i>({html.escape(frames.display_name(row))})</i></summary>"
    ]
    if row.reason:
        parts.append(f"<p>{html.escape(row.reason)}</p>")
    for problem in row.problems:
        parts.append(f"<p class='warn'>{html.escape(problem)}</p>")
    diff = frames.object_changes(plan, row, names)
    if len(diff):
        diff = diff.assign(old=diff["old"].map(_cut), new=diff["new"].map(_cut))
        parts.append(table_html(diff.drop(columns="path"), None))  # the request has the paths
    for request in row.requests:
        parts.append(f"<p><b>{request.method} {html.escape(request.path)}</b></p>")
        if request.body is not None:
            text = json.dumps(request.body, ensure_ascii=False, indent=1)
            parts.append(f"<pre>{html.escape(_cut(text))}</pre>")
    parts.append("</details>")
    return "".join(parts)
