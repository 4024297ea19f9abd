"""Every SCIM write request scimsync sends, built here and only here.

A plan carries these requests exactly as they will be sent (method, path, body), save for
ids still pending (`urn:scimsync:pending:<DN>`, a resource this run creates first); the
Applier executes them as given (`ScimClient.execute`). The few requests decided while
applying (moving a resource aside during a name swap, adopting after a 409, completing
references that were pending) are built here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from toolkit.scim.patch import member_patches, patch_document

#: Never copied into an update: server-owned.
SERVER_OWNED = ("schemas", "id", "meta")


@dataclass(frozen=True, slots=True)
class Request:
    """One SCIM request exactly as applying the plan sends it (pending ids aside)."""

    method: str
    path: str
    body: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}


def member_path(endpoint: str, resource_id: str) -> str:
    """`/Users/<id>` with the opaque id percent-encoded (`urn:...:pending:` keeps its colons)."""
    return f"{endpoint}/{quote(resource_id, safe=':@')}"


def create(endpoint: str, resource: dict[str, Any]) -> Request:
    return Request("POST", endpoint, resource)


def replace(path: str, resource: dict[str, Any]) -> Request:
    return Request("PUT", path, resource)


def patch(path: str, operations: list[dict[str, Any]]) -> Request:
    return Request("PATCH", path, patch_document(operations))


def delete(path: str) -> Request:
    return Request("DELETE", path)


def deactivate(path: str) -> Request:
    """A delete under `delete-policy: deactivate`."""
    return patch(path, [{"op": "replace", "path": "active", "value": False}])


def member_chunks(path: str, added: list[str], removed: list[str], chunk: int) -> list[Request]:
    """Membership changes as PATCH add/remove in chunks, never the whole member list."""
    return [patch(path, part) for part in member_patches(added, removed, chunk)]


def rename(update: Request, path: str, attribute: str, name: Any) -> Request:
    """`update`'s resource given another unique name: the same PUT body with the name, or a
    PATCH of the name alone (a swap moves one resource aside for a moment)."""
    if update.method == "PUT" and update.body is not None:
        return replace(path, {**update.body, attribute: name})
    return patch(path, [{"op": "replace", "path": attribute, "value": name}])


def adopt(path: str, desired: Mapping[str, Any], existing: Mapping[str, Any]) -> Request | None:
    """After a 409 on create: the existing resource made as desired, attribute by attribute
    (None when it already is)."""
    operations = [
        {"op": "replace", "path": key, "value": value}
        for key, value in desired.items()
        if key not in SERVER_OWNED and existing.get(key) != value
    ]
    return patch(path, operations) if operations else None
