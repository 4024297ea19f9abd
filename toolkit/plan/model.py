"""The words of a plan: situations, links, requests.

A Plan has one row per object. Its situation says what applying it would do:
`create`, `modify`, `delete`, `unchanged`, `conflict` (several targets match),
`adopt` (an unlinked target matches and becomes ours), `out-of-scope` (the object's
class does not synchronize this kind of operation), `duplicate` (a SCIM resource that no
entry links to, with the externalId or correlation values of one that is linked: never
changed or deleted by a run, the operator decides).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit.scim.requests import Request

CREATE = "create"
MODIFY = "modify"
DELETE = "delete"
UNCHANGED = "unchanged"
CONFLICT = "conflict"
ADOPT = "adopt"
OUT_OF_SCOPE = "out-of-scope"
DUPLICATE = "duplicate"
SITUATIONS = (CREATE, MODIFY, DELETE, UNCHANGED, CONFLICT, ADOPT, OUT_OF_SCOPE, DUPLICATE)

#: A reference to a resource that this run creates: its id is known only once the create
#: has answered, so plans carry this marker plus the DN; applying substitutes the real id.
PENDING = "urn:scimsync:pending:"


def pending_ref(dn: str) -> str:
    return PENDING + dn


#: json.dumps with these options, without building an encoder per call
_SORTED_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode


def form_hash(form: Mapping[str, Any]) -> str:
    """A stable hash of a comparable form (saved plans and links compare these)."""
    return hashlib.sha256(_SORTED_JSON(form).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Link:
    """One source entry linked to the SCIM resource this pipe manages for it."""

    entry_uuid: str
    dn: str
    class_name: str
    resource_type: str
    scim_id: str
    etag: str | None = None
    hash: str | None = None
    created: bool = False
    # the comparable form last applied: realtime diffs against it and sends If-Match with the
    # ETag instead of reading the resource first (a 412 sends it back to a fresh read)
    form: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Row:
    """One object of a plan, before it becomes a DataFrame row."""

    class_name: str
    situation: str
    dn: str
    entry_uuid: str
    resource_type: str
    scim_id: str | None
    changes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    reason: str = ""
    source: dict[str, Any] | None = None  # the LDAP entry
    # the SCIM resource the entry should become; None on an unchanged row whose target holds
    # it already (Plan.desired() gives it from the target)
    desired: dict[str, Any] | None = None
    target: dict[str, Any] | None = None  # the SCIM resource as the server has it
    hash: str | None = None  # of the desired comparable form: read it by content_hash()
    form: dict[str, Any] | None = field(default=None, repr=False)  # the desired comparable form
    etag: str | None = None  # of the target when read
    # why the server's schema refuses a request (toolkit.scim.validate): never sent
    problems: list[str] = field(default_factory=list)

    def content_hash(self) -> str | None:
        """The hash of the desired comparable form, computed when first asked: only saved
        plans and links need it, not a dry run that is only looked at."""
        if self.hash is None and self.form is not None:
            self.hash = form_hash(self.form)
        return self.hash
