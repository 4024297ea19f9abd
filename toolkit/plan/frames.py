"""Analyst-readable frames of a Plan: what a person reads, not what the engine compares.

Values are unwrapped (a one-element list shows as its value) and lists joined; schema URNs
shortened (`enterprise:department`, the full path kept in a `path` column or `attrs`);
old and new side by side right after the object's name; group members by display name or
DN (SCIM ids on demand); new values as the request sends them (`tel:+1-512-555-5866`, not the
comparison form); a delete shows the resource that goes. Plan's own frames (`Plan.frame`,
`Plan.changes()`) stay the raw, machine-shaped ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

from toolkit.plan.correlate import lookup_path
from toolkit.plan.model import CREATE, DELETE, PENDING, Row
from toolkit.plan.plan import Plan

#: LDAP attributes that fill a directory frame without telling an analyst anything
HIDDEN_LDAP = ("objectclass",)
#: how values of one cell are joined
JOIN = "; "
#: attributes of a SCIM resource that are not data (the server's bookkeeping)
NOT_DATA = ("schemas", "meta")

_URN = re.compile(
    r"^urn:(?:[^:]+:)*?(?:schemas?:)(?:extension:)?(?P<schema>[^:]+)(?::\d[\d.]*)?(?::[A-Z][^:]*)?:(?P<attr>[^:]+)$"
)


def short_name(path: str) -> str:
    """`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department` ->
    `enterprise:department`; a core schema's URN path -> the bare attribute; others as is."""
    if not path.lower().startswith("urn:"):
        return path
    match = _URN.match(path)
    if match is None:
        urn, _, attr = path.rpartition(":")
        return f"{urn.rsplit(':', 1)[-1]}:{attr}" if urn else path
    if match["schema"].lower() == "core":
        return match["attr"]
    return f"{match['schema']}:{match['attr']}"


def cell(value: Any) -> str:
    """One value as an analyst reads it: lists joined, one element unwrapped, multi-valued
    complex values as `value (type)`, other objects as `key: value` pairs."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return JOIN.join(cell(v) for v in value)
    if isinstance(value, Mapping):
        if "value" in value:
            tags = [str(value[k]) for k in ("type", "display") if value.get(k)]
            tags += ["primary"] if value.get("primary") is True else []
            return cell(value["value"]) + (f" ({', '.join(tags)})" if tags else "")
        if "formatted" in value:  # an address, a name: its one-line form
            return cell(value["formatted"]).replace("\n", ", ")
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return str(value)


def _flat(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    """A SCIM resource as path -> value: extension attributes by their URN path, sub-attributes
    of single complex ones (`name`) as `name.givenName`."""
    out: dict[str, Any] = {}
    for key, value in (resource or {}).items():
        if key in NOT_DATA:
            continue
        if isinstance(value, Mapping) and key.lower().startswith("urn:"):
            for sub, v in value.items():
                out[f"{key}:{sub}"] = v
        elif isinstance(value, Mapping) and "value" not in value:
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


def _filled_paths(resource: Mapping[str, Any]) -> Iterator[str]:
    """The paths of _flat(resource) whose value is set (fill rates count 100,000s of these)."""
    for key, value in resource.items():
        if key in NOT_DATA or value is None or value == "" or value == []:
            continue
        if isinstance(value, Mapping) and (key[:4].lower() == "urn:" or "value" not in value):
            sep = ":" if key[:4].lower() == "urn:" else "."
            for sub, v in value.items():
                if v is not None and v != "" and v != []:
                    yield f"{key}{sep}{sub}"
        else:
            yield key


# --- names of objects ---------------------------------------------------------------------------


class Names:
    """Who a SCIM id (or a pending reference) is: display name, userName or DN from the plan."""

    def __init__(self, plan: Plan):
        # rows by id; their names are worked out when asked (a plan has 100,000s of rows)
        self.by_id: dict[str, Row] = {row.scim_id: row for row in plan.rows if row.scim_id}

    def __call__(self, ref: str, ids: bool = False, dns: bool = False) -> str:
        if ref.startswith(PENDING):
            dn = ref[len(PENDING) :]
            return dn + (" [new]" if ids else "")
        row = self.by_id.get(ref)
        name, dn = (display_name(row), row.dn) if row is not None else ("", "")
        shown = (dn if dns else name) or dn or ref
        return f"{shown} [{ref}]" if ids and shown != ref else shown


def display_name(row: Row) -> str:
    """The name an analyst knows the object by: displayName, userName, else the DN's RDN value."""
    for resource in (row.desired, row.target):
        for attr in ("displayName", "userName"):
            value = (resource or {}).get(attr)
            if isinstance(value, str) and value:
                return value
    rdn = (row.dn or "").split(",", 1)[0]
    return rdn.split("=", 1)[-1] if rdn else (row.scim_id or "")


# --- the frames ---------------------------------------------------------------------------------


def _sent(row: Row, path: str, change: Mapping[str, Any], side: str) -> Any:
    """The value as the server has it (old) or as the request sends it (new): the resources'
    form, not the comparison form the change holds (which normalizes telephone numbers)."""
    resource = row.target if side == "old" else row.desired
    if resource is None:
        return change.get(side)
    value = lookup_path(resource, path)
    if value is None and change.get(side) is not None:
        return change.get(side)  # a path the resources do not carry as such
    return value


def _change_records(row: Row, names: Names, ids: bool = False) -> list[tuple[str, str, str]]:
    """(path, old, new) per attribute of one object; see object_changes."""
    records = []
    if row.situation == DELETE and not row.changes:  # the whole resource goes
        for path, value in _flat(row.target).items():
            records.append((path, cell(value), ""))
    elif row.situation == CREATE and row.desired is not None:
        for path, value in _flat(row.desired).items():
            if path == "members":
                refs = [m.get("value") for m in value or [] if isinstance(m, Mapping)]
                value = "+ " + JOIN.join(names(r, ids) for r in refs if r) if refs else ""
                records.append((path, "", value))
            else:
                records.append((path, "", cell(value)))
    else:
        for change in row.changes:
            path = change["attribute"]
            if "add" in change or "remove" in change:
                removed = [names(r, ids) for r in change.get("remove") or []]
                added = [names(r, ids) for r in change.get("add") or []]
                old = f"− {JOIN.join(removed)}" if removed else ""
                new = f"+ {JOIN.join(added)}" if added else ""
                records.append((path, old, new))
            else:
                old = cell(_sent(row, path, change, "old"))
                new = cell(_sent(row, path, change, "new"))
                records.append((path, old, new))
    return records


def object_changes(
    plan: Plan, row: Row, names: Names | None = None, ids: bool = False
) -> pd.DataFrame:
    """One object's attribute changes: attribute, old, new (as sent), path. A create shows every
    attribute it sends, a delete every attribute of the resource that goes. Members are named
    (display name, else DN); `ids` adds each one's SCIM id."""
    records = _change_records(row, names or Names(plan), ids)
    frame = pd.DataFrame(records, columns=["path", "old", "new"])
    frame.insert(0, "attribute", frame["path"].map(short_name))
    return frame[["attribute", "old", "new", "path"]]


def changes(
    plan: Plan,
    rows: Iterable[Row] | None = None,
    ids: bool = False,
    situations: Iterable[str] | None = None,
    names: Names | None = None,
) -> pd.DataFrame:
    """One line per changed attribute of each object: name, attribute, old, new first; then
    class, situation, DN (and SCIM id with `ids`) and the full attribute path. Creates list
    what they send, deletes what goes."""
    names = names or Names(plan)
    wanted = set(situations) if situations is not None else None
    records = []
    for row in plan.rows if rows is None else rows:
        if wanted is not None and row.situation not in wanted:
            continue
        if not row.changes and row.situation != DELETE:
            continue
        name = display_name(row)
        for path, old, new in _change_records(row, names, ids):
            record = {
                "name": name,
                "attribute": short_name(path),
                "old": old,
                "new": new,
                "class": row.class_name,
                "situation": row.situation,
                "dn": row.dn,
            }
            if ids:
                record["scim_id"] = row.scim_id or ""
            record["path"] = path
            records.append(record)
    columns = ["name", "attribute", "old", "new", "class", "situation", "dn"]
    columns += ["scim_id"] if ids else []
    return pd.DataFrame(records, columns=[*columns, "path"])


def objects(plan: Plan, ids: bool = False) -> pd.DataFrame:
    """One line per object: name, situation, class, what applying does, the DN."""
    records = []
    for row in plan.rows:
        first = row.requests[0] if row.requests else None
        record = {
            "name": display_name(row),
            "situation": row.situation,
            "class": row.class_name,
            "changes": len(row.changes),
            "request": f"{first.method} {first.path}" if first else "",
            "reason": row.reason,
            "dn": row.dn,
        }
        if ids:
            record["scim_id"] = row.scim_id or ""
        records.append(record)
    columns = ["name", "situation", "class", "changes", "request", "reason", "dn"]
    return pd.DataFrame(records, columns=[*columns, *(["scim_id"] if ids else [])])


def directory(plan: Plan, hidden: Iterable[str] = HIDDEN_LDAP) -> pd.DataFrame:
    """The LDAP entries as read, one line per entry: values unwrapped and joined, the DN last
    (objectClass left out: every entry of a class has the same)."""
    skip = {h.lower() for h in hidden} | {"dn"}
    records = []
    for row in plan.rows:
        if not row.source:
            continue
        record = {"name": display_name(row), "class": row.class_name}
        record.update({k: cell(v) for k, v in row.source.items() if k.lower() not in skip})
        record["dn"] = row.dn
        records.append(record)
    frame = pd.DataFrame(records)
    if len(frame):
        frame = frame[[c for c in frame.columns if c != "dn"] + ["dn"]].fillna("")
    return frame


def side_by_side(plan: Plan, rows: Iterable[Row] | None = None) -> pd.DataFrame:
    """Each object's attributes as its entry maps (ldap) beside the server's copy (scim):
    columns (attribute, ldap|scim) with short names; `attrs["paths"]` maps them back."""
    records, paths = [], {}
    for row in plan.rows if rows is None else rows:
        record: dict[tuple[str, str], str] = {("name", ""): display_name(row)}
        record[("situation", "")] = row.situation
        for side, resource in (("ldap", plan.desired(row)), ("scim", row.target)):
            for path, value in _flat(resource).items():
                if path == "externalId" or path == "id":
                    continue
                name = short_name(path)
                paths[name] = path
                record[(name, side)] = cell(value)
        records.append(record)
    frame = pd.DataFrame(records)
    if not len(frame):
        return frame
    attrs = sorted({c[0] for c in frame.columns if c[1]}, key=str.lower)
    ordered = [("name", ""), ("situation", "")]
    ordered += [(a, s) for a in attrs for s in ("ldap", "scim") if (a, s) in frame.columns]
    frame = frame[ordered].fillna("")
    frame.columns = pd.MultiIndex.from_tuples(ordered)
    frame.attrs["paths"] = paths
    return frame


def attribute_counts(plan: Plan) -> pd.DataFrame:
    """datacompy's per-column view: per class and attribute, the objects whose attribute a run
    changes, and their share of the objects compared (created, modified or unchanged)."""
    compared: dict[str, int] = {}
    counts: dict[tuple[str, str], int] = {}
    for row in plan.rows:
        if row.situation in ("modify", "unchanged", "create", "adopt"):
            compared[row.class_name] = compared.get(row.class_name, 0) + 1
        if row.situation not in ("modify", "adopt", "delete"):
            continue
        for change in row.changes:
            key = (row.class_name, change["attribute"])
            counts[key] = counts.get(key, 0) + 1
    records = [
        {
            "class": cls,
            "attribute": short_name(path),
            "changed": n,
            "of": compared.get(cls, 0),
            "rate": n / compared[cls] if compared.get(cls) else 0.0,
            "path": path,
        }
        for (cls, path), n in counts.items()
    ]
    frame = pd.DataFrame(records, columns=["class", "attribute", "changed", "of", "rate", "path"])
    return frame.sort_values(["class", "changed"], ascending=[True, False], ignore_index=True)


def fill_rates(plan: Plan) -> pd.DataFrame:
    """Per class and SCIM attribute, the share of objects whose mapped resource sets it: a low
    rate is a SCIM attribute left empty (index: attribute, columns: classes). An attribute that
    no object of the class's resource type sets is NaN (not this type's attribute)."""
    filled: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    types: dict[str, str] = {}
    for row in plan.rows:
        desired = plan.desired(row)
        if desired is None:
            continue
        totals[row.class_name] = totals.get(row.class_name, 0) + 1
        types[row.class_name] = row.resource_type
        per = filled.setdefault(row.class_name, {})
        for path in _filled_paths(desired):
            per[path] = per.get(path, 0) + 1
    if not filled:
        return pd.DataFrame()
    of_type: dict[str, set[str]] = {}
    for cls, per in filled.items():
        of_type.setdefault(types[cls], set()).update(per)
    frame = pd.DataFrame(
        {
            cls: {p: per.get(p, 0) / totals[cls] for p in of_type[types[cls]]}
            for cls, per in filled.items()
        }
    )
    frame.attrs["paths"] = {short_name(p): p for p in frame.index}
    frame.index = pd.Index([short_name(p) for p in frame.index], name="attribute")
    return frame.sort_index(key=lambda s: s.str.lower())


def records(row: Row, desired: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One object's attributes: as its entry maps (`ldap`: `desired`, else the row's) beside
    the server's copy (`scim`), one line per attribute (short name; the path last)."""
    mapped = _flat(desired if desired is not None else row.desired)
    target = _flat(row.target)
    paths = sorted(set(mapped) | set(target), key=lambda p: short_name(p).lower())
    return pd.DataFrame(
        {
            "attribute": [short_name(p) for p in paths],
            "ldap": [cell(mapped.get(p)) for p in paths],
            "scim": [cell(target.get(p)) for p in paths],
            "differs": ["" if mapped.get(p) == target.get(p) else "≠" for p in paths],
            "path": paths,
        }
    )


def entry(row: Row) -> pd.DataFrame:
    """The LDAP entry as read: one line per attribute, its values joined."""
    source = {k: v for k, v in (row.source or {}).items() if k != "dn"}
    return pd.DataFrame({"attribute": list(source), "values": [cell(v) for v in source.values()]})


def short_paths(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its `path` column blank where the attribute's name is the path already: the
    full name stays where it says more (a shortened extension URN)."""
    if "path" not in frame or "attribute" not in frame:
        return frame
    return frame.assign(path=frame["path"].where(frame["path"] != frame["attribute"], ""))
