"""Distinguished names (RFC 4514): validation, normalisation and ancestry for config checks."""

from __future__ import annotations

import re

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


def normalize_dn(text: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A comparable form: types and values lower-cased, inner spaces collapsed, RDN parts sorted."""
    return tuple(
        tuple(sorted((attr.lower(), " ".join(value.lower().split())) for attr, value in rdn))
        for rdn in parse_dn(text)
    )


def is_within(dn: str, base: str) -> bool:
    """True when `dn` equals `base` or lies below it."""
    child, parent = normalize_dn(dn), normalize_dn(base)
    return len(child) >= len(parent) and child[len(child) - len(parent) :] == parent


def is_valid_dn(text: str) -> bool:
    try:
        parse_dn(text)
    except DNError:
        return False
    return True
