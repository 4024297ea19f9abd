"""Distinguished names (RFC 4514): validation, normalisation and ancestry for config checks."""

from __future__ import annotations

import re
from functools import lru_cache

_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+")
_SPECIAL = '"+,;<>\\= #'
_HEX = "0123456789abcdefABCDEF"

Rdn = tuple[tuple[str, str], ...]


class DNError(ValueError):
    """A string that is not a distinguished name."""


def parse_dn(text: str) -> tuple[Rdn, ...]:
    """The RDNs of `text` as ((type, value), ...) tuples, values unescaped; DNError if invalid.

    Spaces around ',', '+' and '=' are tolerated (RFC 2253 style, common in admin input).
    """
    if not isinstance(text, str):
        raise DNError(f"expected a DN string, got {type(text).__name__}")
    if not text.strip():
        raise DNError("empty DN")
    rdns: list[Rdn] = []
    pos = 0
    current: list[tuple[str, str]] = []
    while True:
        pos = _skip_spaces(text, pos)
        match = _TYPE.match(text, pos)
        if not match:
            raise DNError(f"invalid attribute type at character {pos + 1} of {text!r}")
        attr = match.group(0)
        pos = _skip_spaces(text, match.end())
        if pos >= len(text) or text[pos] != "=":
            raise DNError(f"expected '=' after {attr!r} in {text!r}")
        pos, value = _value(text, _skip_spaces(text, pos + 1))
        current.append((attr, value))
        if pos >= len(text):
            rdns.append(tuple(current))
            return tuple(rdns)
        if text[pos] == "+":
            pos += 1
            continue
        if text[pos] in ",;":
            rdns.append(tuple(current))
            current = []
            pos += 1
            continue
        raise DNError(f"unexpected {text[pos]!r} at character {pos + 1} of {text!r}")


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _value(text: str, pos: int) -> tuple[int, str]:
    if pos < len(text) and text[pos] == "#":
        match = re.compile(r"#((?:[0-9a-fA-F]{2})+)").match(text, pos)
        if not match:
            raise DNError(f"invalid hex value at character {pos + 1} of {text!r}")
        end = _skip_spaces(text, match.end())
        return end, match.group(0).lower()
    raw = bytearray()
    trailing = 0  # unescaped spaces at the end are not part of the value
    while pos < len(text):
        char = text[pos]
        if char in ",+;":
            break
        if char == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt and nxt in _SPECIAL:
                raw += nxt.encode()
                pos += 2
            elif len(text) >= pos + 3 and all(c in _HEX for c in text[pos + 1 : pos + 3]):
                raw.append(int(text[pos + 1 : pos + 3], 16))
                pos += 3
            else:
                raise DNError(f"invalid escape at character {pos + 1} of {text!r}")
            trailing = 0
            continue
        if char in '"<>\x00':
            raise DNError(f"{char!r} must be escaped at character {pos + 1} of {text!r}")
        raw += char.encode("utf-8")
        trailing = trailing + 1 if char == " " else 0
        pos += 1
    if trailing:
        del raw[len(raw) - trailing :]
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DNError(f"value is not UTF-8 in {text!r}") from exc
    if not value:
        raise DNError(f"empty attribute value in {text!r}")
    return pos, value


def dn_key(text: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A comparable form RDN by RDN (parsed strictly): types and values lower-cased, inner
    spaces collapsed, RDN parts sorted. `normalize_dn` gives the same as text, faster."""
    return tuple(
        tuple(sorted((attr.lower(), " ".join(value.lower().split())) for attr, value in rdn))
        for rdn in parse_dn(text)
    )


def is_within(dn: str, base: str) -> bool:
    """True when `dn` equals `base` or lies below it."""
    child, parent = dn_key(dn), dn_key(base)
    return len(child) >= len(parent) and child[len(child) - len(parent) :] == parent


def is_valid_dn(text: str) -> bool:
    try:
        parse_dn(text)
    except DNError:
        return False
    return True


# --- the normal form as text: ids of DN-based mappings, resolver and link keys -------------

_ESCAPED = set(',+"\\<>;=')


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
        if char in _ESCAPED or (i == 0 and char in " #") or (i == len(value) - 1 and char == " "):
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
