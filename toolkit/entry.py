"""An LDAP entry as scimsync passes it around: `{"dn": DN, attribute (lower case): [values]}`.

Values are text, or bytes where they are not UTF-8 (the mapping refuses those unless it
declares a binary transformation). Readers, the mapping and the plan share this one shape,
its DN and its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.config.dn import normalize_dn

Entry = Mapping[str, Any]


def entry_dn(entry: Entry) -> str | None:
    """The entry's DN ("dn" as a string or a one-item list)."""
    dn = entry.get("dn")
    if dn is None or isinstance(dn, str):
        return dn
    if isinstance(dn, bytes):
        return dn.decode("utf-8", "replace")
    first = dn[0] if dn else None
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else first


# the attributes holding an entry's unique id, by directory kind: entryUUID (RFC 4530:
# OpenLDAP, 389-DS, ...), objectGUID (Active Directory, read in its string form)
UNIQUE_ID_ATTRIBUTES = ("entryuuid", "objectguid")


def key_attribute(unique_id_attribute: str | None) -> str:
    """The attribute whose value `entry_key` takes as the key (and a link stores), for a
    source with this unique-id attribute: objectGUID on AD, else entryUUID (a source keyed on
    nsUniqueId still links by entryUUID)."""
    if (unique_id_attribute or "").lower() == "objectguid":
        return "objectGUID"
    return "entryUUID"


def entry_key(entry: Entry) -> str:
    """The stable key of an entry: its entryUUID (objectGUID on AD), else its normalized DN."""
    values = next((entry[a] for a in UNIQUE_ID_ATTRIBUTES if entry.get(a)), None)
    values = values or entry.get("entryUUID")
    if values:
        value = values[0] if isinstance(values, list | tuple) else values
        value = value.decode() if isinstance(value, bytes) else str(value)
        return value.lower()
    return "dn:" + normalize_dn(entry_dn(entry) or "")
