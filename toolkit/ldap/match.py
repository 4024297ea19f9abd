"""Evaluate LDAP search filters (RFC 4515) on entries held in memory.

ldap3 has no evaluator for plain dict entries (only its mock server's internal one), so this
module compiles the syntax tree of `toolkit.config.ldapfilter` into a predicate. Matching
follows what directories do for ordinary string attributes: attribute names and values are
compared without regard to case, and runs of spaces count as one. A filter on an attribute
without options also matches its subtypes with options (`cn` matches `cn;lang-fr`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from toolkit.config.dn import DNError, parse_dn
from toolkit.config.ldapfilter import (
    And,
    Compare,
    Extensible,
    Filter,
    Not,
    Or,
    Present,
    Substring,
    parse_filter,
)
from toolkit.entry import Entry

Predicate = Callable[[Entry], bool]

_EXACT_RULES = {
    "caseexactmatch",
    "caseexactia5match",
    "octetstringmatch",
    "2.5.13.5",
    "1.3.6.1.4.1.1466.109.114.1",
}
_BIT_AND = {"1.2.840.113556.1.4.803", "bitandmatch"}
_BIT_OR = {"1.2.840.113556.1.4.804", "bitormatch"}


def normalize(value: str | bytes) -> str | bytes:
    """caseIgnoreMatch's view of a value: lower case, inner runs of spaces as one, trimmed."""
    if isinstance(value, bytes):
        return value
    return " ".join(value.lower().split())


def _values(entry: Entry, attribute: str) -> list[str | bytes]:
    name = attribute.lower()
    found = list(entry.get(name, ()))
    if ";" not in name:
        prefix = name + ";"
        for key, values in entry.items():
            if key.startswith(prefix):
                found.extend(values)
    return found


@lru_cache(maxsize=256)
def compile_filter(text: str) -> Predicate:
    """A predicate for `text`; FilterError (a ValueError) names the problem and its position."""
    return _compile(parse_filter(text))


def matches(entry: Entry, text: str) -> bool:
    """True when `entry` (`{"dn": ..., attribute: [values]}`) matches the filter `text`."""
    return compile_filter(text)(entry)


def _compile(node: Filter) -> Predicate:
    if isinstance(node, And):
        parts = [_compile(f) for f in node.filters]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, Or):
        parts = [_compile(f) for f in node.filters]
        return lambda e: any(p(e) for p in parts)
    if isinstance(node, Not):
        inner = _compile(node.filter)
        return lambda e: not inner(e)
    if isinstance(node, Present):
        attribute = node.attribute
        return lambda e: bool(_values(e, attribute))
    if isinstance(node, Substring):
        return _substring(node)
    if isinstance(node, Compare):
        return _compare(node)
    return _extensible(node)


def _compare(node: Compare) -> Predicate:
    attribute, wanted = node.attribute, normalize(node.value)
    if node.operator in ("=", "~="):
        return lambda e: any(normalize(v) == wanted for v in _values(e, attribute))
    greater = node.operator == ">="

    def ordered(entry: Entry) -> bool:
        for value in _values(entry, attribute):
            order = _order(normalize(value), wanted)
            if order is not None and (order >= 0 if greater else order <= 0):
                return True
        return False

    return ordered


def _order(value: str | bytes, wanted: str | bytes) -> int | None:
    """-1, 0 or 1 comparing `value` to `wanted`: as integers when both are, else as strings."""
    if isinstance(value, bytes) != isinstance(wanted, bytes):
        return None
    try:
        a, b = int(value), int(wanted)
    except ValueError:
        a, b = value, wanted  # type: ignore[assignment]
    return (a > b) - (a < b)


def _substring(node: Substring) -> Predicate:
    initial = normalize(node.initial) if node.initial else ""
    final = normalize(node.final) if node.final else ""
    middles = [normalize(m) for m in node.any]
    attribute = node.attribute

    def one(value: str | bytes) -> bool:
        if isinstance(value, bytes):
            return False
        text = normalize(value)
        if not text.startswith(initial):  # type: ignore[arg-type]
            return False
        pos = len(initial)
        for middle in middles:
            found = text.find(middle, pos)  # type: ignore[arg-type]
            if found < 0:
                return False
            pos = found + len(middle)
        return text.endswith(final) and len(text) - len(final) >= pos  # type: ignore[arg-type]

    return lambda e: any(one(v) for v in _values(e, attribute))


def _value_test(node: Extensible) -> Callable[[str | bytes], bool]:
    """How one value is compared under the extensible match's matching rule."""
    rule = (node.matching_rule or "").lower()
    if rule in _BIT_AND or rule in _BIT_OR:
        mask = int(node.value)
        every = rule in _BIT_AND

        def bits(value: str | bytes) -> bool:
            number = _int(value)
            if number is None:
                return False
            return number & mask == mask if every else number & mask != 0

        return bits
    if rule in _EXACT_RULES:
        exact = node.value
        return lambda value: value == exact
    wanted = normalize(node.value)
    return lambda value: normalize(value) == wanted


def _extensible(node: Extensible) -> Predicate:
    test = _value_test(node)
    attribute = node.attribute

    def check(entry: Entry) -> bool:
        if attribute is not None:
            values = _values(entry, attribute)
        else:
            values = [v for key, vs in entry.items() if key != "dn" for v in vs]
        if any(test(v) for v in values):
            return True
        if node.dn_attributes:
            return any(test(v) for v in _dn_values(entry.get("dn", ""), attribute))
        return False

    return check


def _int(value: str | bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _dn_values(dn: str, attribute: str | None) -> list[str]:
    try:
        rdns = parse_dn(dn)
    except DNError:
        return []
    return [
        v for rdn in rdns for a, v in rdn if attribute is None or a.lower() == attribute.lower()
    ]
