"""A small SCIM filter builder (RFC 7644 §3.4.2.2) that escapes every value.

Values become JSON literals, so quotes, backslashes and control characters in a userName
cannot break out of the string: `eq("userName", 'a"b\\c')` is `userName eq "a\\"b\\\\c"`.
Attribute paths are checked against the RFC grammar, so a path cannot smuggle operators.

    >>> str(and_(eq("userName", "bjensen"), pr("emails")))
    'userName eq "bjensen" and emails pr'
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

# ATTRNAME with optional URN prefix and one sub-attribute (RFC 7644 §3.10 attrPath).
_ATTR_PATH = re.compile(
    r"^(?:urn:[A-Za-z0-9][A-Za-z0-9.:_-]*:)?[A-Za-z$][\w$-]*(?:\.[A-Za-z$][\w$-]*)?$"
)
FilterValue = str | int | float | bool | None | datetime | date


class Filter(str):
    """A filter expression; a str, so it goes anywhere a filter string goes."""

    # "atom", "and", "or" or "not": decides when an operand needs parentheses.
    op: str = "atom"

    @classmethod
    def _make(cls, text: str, op: str) -> Filter:
        made = cls(text)
        made.op = op
        return made

    def __and__(self, other: str) -> Filter:
        return and_(self, other)

    def __or__(self, other: str) -> Filter:
        return or_(self, other)


def attr_path(path: str) -> str:
    """`path` if it is a valid SCIM attribute path, else ValueError naming it."""
    if not _ATTR_PATH.match(path):
        raise ValueError(f"not a SCIM attribute path: {path!r}")
    return path


def literal(value: FilterValue) -> str:
    """The SCIM filter literal of a value: a JSON string, number, true/false or null."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot use {type(value).__name__} in a SCIM filter")


def compare(path: str, op: str, value: FilterValue) -> Filter:
    op = op.lower()
    if op not in {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}:
        raise ValueError(f"not a SCIM comparison operator: {op!r}")
    return Filter._make(f"{attr_path(path)} {op} {literal(value)}", "atom")


def eq(path: str, value: FilterValue) -> Filter:
    return compare(path, "eq", value)


def ne(path: str, value: FilterValue) -> Filter:
    return compare(path, "ne", value)


def co(path: str, value: FilterValue) -> Filter:
    return compare(path, "co", value)


def sw(path: str, value: FilterValue) -> Filter:
    return compare(path, "sw", value)


def ew(path: str, value: FilterValue) -> Filter:
    return compare(path, "ew", value)


def gt(path: str, value: FilterValue) -> Filter:
    return compare(path, "gt", value)


def ge(path: str, value: FilterValue) -> Filter:
    return compare(path, "ge", value)


def lt(path: str, value: FilterValue) -> Filter:
    return compare(path, "lt", value)


def le(path: str, value: FilterValue) -> Filter:
    return compare(path, "le", value)


def pr(path: str) -> Filter:
    return Filter._make(f"{attr_path(path)} pr", "atom")


def _operand(expr: str, parent: str) -> str:
    op = getattr(expr, "op", "or")  # a plain str may hold anything: parenthesise it
    return expr if op in ("atom", "not", parent) else f"({expr})"


def _join(op: str, exprs: tuple[str, ...]) -> Filter:
    if not exprs:
        raise ValueError(f"{op}_ needs at least one expression")
    if len(exprs) == 1:
        only = exprs[0]
        return only if isinstance(only, Filter) else Filter._make(f"({only})", "atom")
    return Filter._make(f" {op} ".join(_operand(e, op) for e in exprs), op)


def and_(*exprs: str) -> Filter:
    return _join("and", exprs)


def or_(*exprs: str) -> Filter:
    return _join("or", exprs)


def not_(expr: str) -> Filter:
    return Filter._make(f"not ({expr})", "not")


def value_path(path: str, expr: str) -> Filter:
    """A value filter on a multi-valued attribute: `emails[type eq "work"]`."""
    if "." in path:
        raise ValueError(f"value filters apply to an attribute, not a sub-attribute: {path!r}")
    return Filter._make(f"{attr_path(path)}[{expr}]", "atom")
