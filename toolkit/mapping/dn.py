"""Distinguished names in a comparable form (RFC 4514), without a round trip to the server.

Used for SCIM ids of mappings without a resourceIDMapping (the SDK uses the normalized DN so
that member values compare equal) and by resolvers keyed by DN. Attribute types and values
are compared case-insensitively, which is right for the naming attributes people use
(uid, cn, ou, dc, o, l, ...).
"""

from __future__ import annotations

import re
from functools import lru_cache

_SPECIAL = set(',+"\\<>;=')


def _split(text: str, separators: str) -> list[str]:
    """Split at unescaped separators, leaving escapes in place."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    quoted = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        out.extend(char.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace")


def _escape(value: str) -> str:
    out = []
    for i, char in enumerate(value):
        if char in _SPECIAL or (i == 0 and char in " #") or (i == len(value) - 1 and char == " "):
            out.append("\\" + char)
        elif ord(char) < 0x20:
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


# DNs without escapes, quotes, multi-valued RDNs or characters needing an escape: the
# common case, normalized by plain splits (the full parser costs about ten times more).
_PLAIN = re.compile(r'[^\\"+;<>#\x00-\x1f]*')


@lru_cache(maxsize=65536)
def normalize_dn(dn: str) -> str:
    """`UID=BJensen, OU=People,dc=Example,dc=COM` -> `uid=bjensen,ou=people,dc=example,dc=com`."""
    if _PLAIN.fullmatch(dn):
        plain = _normalize_plain(dn)
        if plain is not None:
            return plain
    return _normalize_parsed(dn)


def _normalize_parsed(dn: str) -> str:
    rdns = []
    for rdn in _split(dn.strip(), ",;"):
        if not rdn.strip():
            continue
        avas = []
        for ava in _split(rdn, "+"):
            attr, sep, value = ava.partition("=")
            if not sep:
                avas.append(" ".join(ava.split()).lower())
                continue
            text = value.strip()
            if text.startswith("#"):  # BER-encoded value: keep the hex form
                norm = text.lower()
            else:
                norm = _escape(" ".join(_unescape(text).split()).lower())
            avas.append(f"{attr.strip().lower()}={norm}")
        rdns.append("+".join(sorted(avas)))
    return ",".join(rdns)


def _normalize_plain(dn: str) -> str | None:
    rdns = []
    for rdn in dn.split(","):
        attr, sep, value = rdn.partition("=")
        if not sep:
            if rdn.strip():
                return None  # not attr=value: the full parser decides
            continue
        if "=" in value:
            return None  # "=" in a value needs an escape
        rdns.append(f"{attr.strip().lower()}={' '.join(value.split()).lower()}")
    return ",".join(rdns)


def strip_unique_member_uid(value: str) -> str:
    """uniqueMember values (Name and Optional UID) may end in `#'0101'B`: drop that part."""
    head, sep, tail = value.rpartition("#")
    if sep and tail.startswith("'") and tail.upper().endswith("'B") and not head.endswith("\\"):
        return head
    return value
