"""uniqueMember values (RFC 4517 Name and Optional UID) as the DNs they name.

DNs themselves (their normal form, containment) are toolkit.config.dn's.
"""

from __future__ import annotations


def strip_unique_member_uid(value: str) -> str:
    """uniqueMember values (Name and Optional UID) may end in `#'0101'B`: drop that part."""
    head, sep, tail = value.rpartition("#")
    if sep and tail.startswith("'") and tail.upper().endswith("'B") and not head.endswith("\\"):
        return head
    return value
