"""PATCH messages (RFC 7644 §3.5.2): the PatchOp document and group membership in chunks.

The operations of an update come from the plan's attribute-level diff (toolkit.plan.engine)
and the requests are built in toolkit.scim.requests. Group membership is never resent whole:
`member_patches(added, removed)` sends only the changes, in chunks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from toolkit.scim.filters import eq, value_path

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Operation = dict[str, Any]


def patch_document(operations: list[Operation]) -> dict[str, Any]:
    """The PatchOp message carrying `operations`."""
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}


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
