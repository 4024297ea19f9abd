"""A strict RFC 4515 LDAP search filter parser.

ldap3's own parser accepts filters that a directory rejects or reads differently (a space
inside an attribute name, a broken `\\4` escape), so configuration checks use this one. It
returns a small syntax tree so that callers can also see which attributes a filter uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# attributedescription = attributetype *( ";" option ); attributetype = descr / numericoid
_DESCR = r"[A-Za-z][A-Za-z0-9-]*"
_NUMERICOID = r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+"
_ATTR = re.compile(rf"(?:{_DESCR}|{_NUMERICOID})(?:;[A-Za-z0-9-]+)*")
_OID = re.compile(rf"{_DESCR}|{_NUMERICOID}")
_HEX = "0123456789abcdefABCDEF"


class FilterError(ValueError):
    """An invalid filter; `position` is the 0-based offset of the problem."""

    def __init__(self, message: str, text: str, position: int):
        self.reason = message
        self.text = text
        self.position = position
        super().__init__(f"{message} at character {position + 1} of {text!r}")


@dataclass(frozen=True)
class And:
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    filter: Filter


@dataclass(frozen=True)
class Compare:
    """Equality `=`, approximate `~=`, greater-or-equal `>=` or less-or-equal `<=`."""

    attribute: str
    operator: str
    value: str


@dataclass(frozen=True)
class Present:
    attribute: str


@dataclass(frozen=True)
class Substring:
    attribute: str
    initial: str | None
    any: tuple[str, ...]
    final: str | None


@dataclass(frozen=True)
class Extensible:
    attribute: str | None
    matching_rule: str | None
    dn_attributes: bool
    value: str


Filter = And | Or | Not | Compare | Present | Substring | Extensible


def parse_filter(text: str) -> Filter:
    """The syntax tree of `text`, or FilterError naming the first problem and its position."""
    if not isinstance(text, str):
        raise FilterError(f"expected a filter string, got {type(text).__name__}", str(text), 0)
    parser = _Parser(text)
    if not text.strip():
        raise FilterError("empty filter", text, 0)
    if text[0] != "(":
        raise FilterError("a filter must start with '('", text, 0)
    result = parser.filter()
    if parser.pos != len(text):
        if text[parser.pos] == ")":
            raise FilterError("unbalanced parenthesis: unexpected ')'", text, parser.pos)
        raise FilterError("unexpected text after the filter", text, parser.pos)
    return result


def filter_attributes(node: Filter) -> set[str]:
    """Attribute names (lower case, without options) that a filter tests."""
    if isinstance(node, And | Or):
        return set().union(*(filter_attributes(f) for f in node.filters))
    if isinstance(node, Not):
        return filter_attributes(node.filter)
    if node.attribute is None:
        return set()
    return {node.attribute.split(";", 1)[0].lower()}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str, position: int | None = None) -> FilterError:
        return FilterError(message, self.text, self.pos if position is None else position)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def filter(self) -> Filter:
        start = self.pos
        if self.peek() != "(":
            if not self.peek():
                raise self.error("unbalanced parenthesis: missing ')'", start)
            raise self.error("expected '('")
        self.pos += 1
        char = self.peek()
        if char == "&":
            self.pos += 1
            node: Filter = And(self.filter_list("&"))
        elif char == "|":
            self.pos += 1
            node = Or(self.filter_list("|"))
        elif char == "!":
            self.pos += 1
            if self.peek() != "(":
                raise self.error("'!' must be followed by one filter in parentheses")
            node = Not(self.filter())
        elif char == "(":
            raise self.error("nested parenthesis without '&', '|' or '!'")
        elif char == ")":
            raise self.error("empty filter '()'")
        elif not char:
            raise self.error("unbalanced parenthesis: missing ')'", start)
        else:
            node = self.item()
        if self.peek() != ")":
            if not self.peek():
                raise self.error("unbalanced parenthesis: missing ')'", start)
            raise self.error("expected ')'")
        self.pos += 1
        return node

    def filter_list(self, operator: str) -> tuple[Filter, ...]:
        items: list[Filter] = []
        while self.peek() == "(":
            items.append(self.filter())
        if not items:
            if not self.peek():
                raise self.error("unbalanced parenthesis: missing ')'")
            raise self.error(f"'{operator}' needs at least one filter in parentheses")
        return tuple(items)

    def item(self) -> Filter:
        start = self.pos
        attribute: str | None = None
        match = _ATTR.match(self.text, self.pos)
        if match:
            attribute = match.group(0)
            self.pos = match.end()
        char = self.peek()
        if char == ":":
            return self.extensible(attribute, start)
        if attribute is None:
            raise self.error("invalid attribute description")
        if self.text.startswith(("~=", ">=", "<="), self.pos):
            operator = self.text[self.pos : self.pos + 2]
            self.pos += 2
            value = self.value(allow_star=False)
            return Compare(attribute, operator, value)
        if char != "=":
            if not char:
                raise self.error("unbalanced parenthesis: missing ')'", start - 1)
            raise self.error(
                "invalid attribute description"
                if char not in "()"
                else "expected '=', '~=', '>=' or '<='"
            )
        self.pos += 1
        return self.equality_or_substring(attribute)

    def equality_or_substring(self, attribute: str) -> Filter:
        parts = [self.value(allow_star=False)]
        stars = 0
        while self.peek() == "*":
            self.pos += 1
            stars += 1
            parts.append(self.value(allow_star=False))
        if stars == 0:
            return Compare(attribute, "=", parts[0])
        if stars == 1 and parts == ["", ""]:
            return Present(attribute)
        middle = parts[1:-1]
        if any(part == "" for part in middle):
            raise self.error("empty substring between two '*'")
        return Substring(attribute, parts[0] or None, tuple(middle), parts[-1] or None)

    def extensible(self, attribute: str | None, start: int) -> Filter:
        dn_attributes = False
        rule: str | None = None
        if self.text.startswith(":dn", self.pos) and self.text[self.pos + 3 : self.pos + 4] in (
            ":",
        ):
            dn_attributes = True
            self.pos += 3
        if self.text.startswith(":=", self.pos):
            self.pos += 2
        else:
            self.pos += 1  # the ':' before a matching rule
            match = _OID.match(self.text, self.pos)
            if not match:
                raise self.error("invalid matching rule in extensible match")
            rule = match.group(0)
            self.pos = match.end()
            if not self.text.startswith(":=", self.pos):
                raise self.error("expected ':=' in extensible match")
            self.pos += 2
        if attribute is None and rule is None:
            raise self.error("an extensible match needs an attribute or a matching rule", start)
        return Extensible(attribute, rule, dn_attributes, self.value(allow_star=False))

    def value(self, allow_star: bool) -> str:
        raw = bytearray()
        while True:
            char = self.peek()
            if not char or char in "()" or (char == "*" and not allow_star):
                break
            if char == "\\":
                pair = self.text[self.pos + 1 : self.pos + 3]
                if len(pair) != 2 or any(c not in _HEX for c in pair):
                    raise self.error("invalid escape: '\\' must be followed by two hex digits")
                raw.append(int(pair, 16))
                self.pos += 3
                continue
            if char == "\x00":
                raise self.error("NUL character must be escaped as \\00")
            raw += char.encode("utf-8")
            self.pos += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
