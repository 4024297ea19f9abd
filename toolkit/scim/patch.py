"""PATCH documents (RFC 7644 §3.5.2) built from attribute-level differences.

`build_patch(current, desired)` compares two SCIM resources as plain dicts and returns the
operations that turn `current` into `desired`, attribute by attribute:
- a simple attribute that differs is `replace`d (`add`ed when `current` lacks it);
- a complex single-valued attribute (`name`) is diffed by sub-attribute (`name.givenName`);
- a multi-valued attribute (`emails`, `phoneNumbers`, `addresses`) that differs, ignoring
  order, is replaced as a whole attribute: its values have no stable identity to diff by;
- an extension's attributes get their URN path (`urn:...:enterprise:2.0:User:department`);
- a None or empty value in `desired` removes the attribute; attributes `desired` does not
  mention are left alone unless listed in `managed` (the attributes the mapping owns).

Group membership is not diffed here: `member_patches(added, removed)` sends only the
changes, in chunks, never the whole member list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from toolkit.scim.filters import eq, value_path

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# Never sent in a PATCH: server-owned (id, meta, schemas), read-only (groups), or handled
# by member_patches (members).
DEFAULT_IGNORED = frozenset({"id", "meta", "schemas", "groups", "members"})

Operation = dict[str, Any]


def patch_document(operations: list[Operation]) -> dict[str, Any]:
    """The PatchOp message carrying `operations`."""
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _canonical(value: Any) -> str:
    """A comparison key for values, insensitive to dict key order and None-valued keys."""
    return json.dumps(_strip_none(value), sort_keys=True, ensure_ascii=False)


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _same_multi(current: list[Any], desired: list[Any]) -> bool:
    """Equal as multisets: SCIM multi-valued attributes have no order."""
    return sorted(map(_canonical, current)) == sorted(map(_canonical, desired))


def _lower_keys(resource: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased attribute name -> actual key: SCIM attribute names are case-insensitive."""
    return {k.lower(): k for k in resource}


def _diff_value(path: str, current: Any, desired: Any, ops: list[Operation]) -> None:
    if _empty(desired):
        if not _empty(current):
            ops.append({"op": "remove", "path": path})
        return
    if _empty(current):
        ops.append({"op": "add", "path": path, "value": desired})
        return
    if isinstance(desired, list) or isinstance(current, list):
        cur = current if isinstance(current, list) else [current]
        des = desired if isinstance(desired, list) else [desired]
        if not _same_multi(cur, des):
            ops.append({"op": "replace", "path": path, "value": des})
        return
    if isinstance(desired, dict) and isinstance(current, dict):
        _diff_complex(path, current, desired, ops)
        return
    if _canonical(current) != _canonical(desired):
        ops.append({"op": "replace", "path": path, "value": desired})


def _diff_complex(
    path: str, current: Mapping[str, Any], desired: Mapping[str, Any], ops: list[Operation]
) -> None:
    """Sub-attribute differences of a single-valued complex attribute (name.givenName)."""
    keys = _lower_keys(current)
    for key, value in desired.items():
        _diff_value(f"{path}.{key}", current.get(keys.get(key.lower(), key)), value, ops)


def _is_extension(key: str, value: Any) -> bool:
    return key.lower().startswith("urn:") and isinstance(value, dict)


def _diff_extension(
    urn: str, current: Mapping[str, Any], desired: Mapping[str, Any], ops: list[Operation]
) -> None:
    keys = _lower_keys(current)
    for key, value in desired.items():
        _diff_value(f"{urn}:{key}", current.get(keys.get(key.lower(), key)), value, ops)


def build_patch(
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    *,
    managed: Iterable[str] | None = None,
    ignored: Iterable[str] = DEFAULT_IGNORED,
) -> list[Operation]:
    """The PATCH operations that make `current` look like `desired` (empty when they agree).

    `managed`: attribute names (top-level, or "urn:...:attr" for extension attributes) the
    caller owns; those absent from `desired` but present in `current` are removed.
    """
    skip = {name.lower() for name in ignored}
    keys = _lower_keys(current)
    ops: list[Operation] = []
    for key, value in desired.items():
        if key.lower() in skip:
            continue
        cur = current.get(keys.get(key.lower(), key))
        if _is_extension(key, value):
            _diff_extension(key, cur if isinstance(cur, dict) else {}, value, ops)
        else:
            _diff_value(key, cur, value, ops)
    for name in managed or ():
        _remove_unmentioned(name, current, desired, ops)
    return ops


def _remove_unmentioned(
    name: str, current: Mapping[str, Any], desired: Mapping[str, Any], ops: list[Operation]
) -> None:
    urn, _, attr = name.rpartition(":") if name.lower().startswith("urn:") else ("", "", name)
    cur_map: Mapping[str, Any] = current
    des_map: Mapping[str, Any] = desired
    if urn:
        cur_map = current.get(_lower_keys(current).get(urn.lower(), urn)) or {}
        des_map = desired.get(_lower_keys(desired).get(urn.lower(), urn)) or {}
    if attr.lower() in _lower_keys(des_map):
        return
    present = _lower_keys(cur_map).get(attr.lower())
    if present is not None and not _empty(cur_map[present]):
        ops.append({"op": "remove", "path": name})


def member_patches(
    added_ids: Iterable[str], removed_ids: Iterable[str], chunk: int = 100
) -> list[list[Operation]]:
    """Group membership changes as PATCH operation lists of at most `chunk` member changes each.

    Each inner list is one PATCH request (atomic on the server). Removals come first, one
    `remove` per member with a `members[value eq "id"]` path (the most widely supported
    form), then one `add` of the request's new members. The member list is never resent.
    """
    if chunk < 1:
        raise ValueError(f"member chunk size must be at least 1, not {chunk}")
    changes = [("remove", m) for m in dict.fromkeys(removed_ids)]
    changes += [("add", m) for m in dict.fromkeys(added_ids)]
    requests: list[list[Operation]] = []
    for start in range(0, len(changes), chunk):
        part = changes[start : start + chunk]
        ops: list[Operation] = [
            {"op": "remove", "path": str(value_path("members", eq("value", member)))}
            for kind, member in part
            if kind == "remove"
        ]
        adds = [{"value": member} for kind, member in part if kind == "add"]
        if adds:
            ops.append({"op": "add", "path": "members", "value": adds})
        requests.append(ops)
    return requests
