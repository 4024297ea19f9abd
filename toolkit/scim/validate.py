"""Client-side checks of SCIM request bodies against the server's discovered schemas.

A dry run shows the problems a real run would meet, and a resync does not send a body known
to be invalid: `Validator(discovery).problems(resource_type, method, body)` lists them as
readable strings that name the attribute path, e.g. `emails[0].value: expected string, got
42` or `PATCH op 2 of 3 replace active: expected boolean, got 'yes'`.

What is checked (RFC 7643 §2, §3, §7; RFC 7644 §3.3, §3.5.1, §3.5.2):
- POST/PUT: every attribute exists in the server's schema (core, common attributes, declared
  extensions as URN-keyed objects), its type (string, boolean, integer, decimal, dateTime,
  reference, binary, complex; multi-valued as a list), sub-attributes likewise, required
  attributes present, `schemas` lists the core schema and every extension used. readOnly
  attributes are an error in a POST; in a PUT the server ignores them (§3.5.1), so they are
  not checked there (our PUT bodies carry the target's id and groups).
- PATCH: the PatchOp message, each operation's op, path (value filters allowed), mutability
  (readOnly never; immutable only for add; a required attribute is never removed) and value.
- DELETE/GET: no body.

Never a false alarm: without a schema for the resource type (a server without /Schemas)
nothing is checked, and an extension whose schema the server does not describe is accepted
as it is. Validation is precomputed per resource type, so 100,000 bodies take a second or two.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from toolkit.scim.discovery import COMMON_ATTRIBUTES, VALUE_FILTER, AttributeInfo, Discovery
from toolkit.scim.patch import PATCH_OP_SCHEMA

PATCH_OPS = frozenset({"add", "remove", "replace"})
_OP_KEYS = frozenset({"op", "path", "value"})
_OPS = {op: op for op in PATCH_OPS}
# xsd:dateTime as RFC 7643 §2.3.5 asks (an RFC 3339 string; the offset may be left out).
_DATETIME = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)?"
)
_PATH_CACHE_LIMIT = 10_000
# Modes: what the body is, which decides the mutability and required checks.
_POST, _PUT, _PATCH = "POST", "PUT", "PATCH"
_VERBS = {v: v for v in (_POST, _PUT, _PATCH, "DELETE", "GET")}


def _is_datetime(value: Any) -> bool:
    return type(value) is str and _DATETIME.fullmatch(value) is not None


def _is_base64(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        binascii.a2b_base64(value.replace("\r", "").replace("\n", ""), strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_decimal(value: Any) -> bool:
    return type(value) in (int, float)


def _is_integer(value: Any) -> bool:
    return type(value) is int


# type name (lower case) -> (the Python type a value usually has, full check)
_TYPES: dict[str, tuple[type | None, Callable[[Any], bool]]] = {
    "string": (str, lambda v: type(v) is str),
    "reference": (str, lambda v: type(v) is str),
    "boolean": (bool, lambda v: type(v) is bool),
    "integer": (int, _is_integer),
    "decimal": (float, _is_decimal),
    "datetime": (None, _is_datetime),
    "binary": (None, _is_base64),
    "complex": (dict, lambda v: isinstance(v, Mapping)),
}
_EXPECTED = {"datetime": "dateTime (RFC 3339)", "binary": "base64 string", "complex": "object"}


class _Node:
    """One attribute, flattened for speed: its type check, mutability and sub-attributes."""

    __slots__ = (
        "name",
        "type",
        "exact",
        "check",
        "expected",
        "multi",
        "read_only",
        "immutable",
        "required",
        "subs",
        "required_subs",
        "sep",
        "schema",
        "open_urns",
        "guarded",
    )

    def __init__(
        self,
        name: str,
        type_: str,
        *,
        multi: bool = False,
        mutability: str = "readWrite",
        required: bool = False,
        subs: dict[str, _Node] | None = None,
        sep: str = ".",
        schema: str = "",
    ) -> None:
        self.name = name
        self.type = type_
        exact, check = _TYPES.get(type_.lower(), (None, None))
        self.exact = exact
        self.check = check
        self.expected = _EXPECTED.get(type_.lower(), type_)
        self.multi = multi
        self.read_only = mutability == "readOnly"
        self.immutable = mutability == "immutable"
        self.required = required and not self.read_only
        self.guarded = self.read_only or self.immutable or self.required  # PATCH may refuse
        # None: the schema names no sub-attributes (or is unknown), so any keys are accepted
        self.subs = subs
        seen = {id(n): n for n in (subs or {}).values()}
        self.required_subs = tuple(n for n in seen.values() if n.required)
        self.sep = sep  # joins this node's path to its sub-attributes' ("." or ":" for URNs)
        self.schema = schema
        self.open_urns = False  # a resource whose undeclared URN keys are accepted

    @classmethod
    def of(cls, info: AttributeInfo) -> _Node:
        subs = _index(cls.of(s) for s in info.sub_attributes) if info.sub_attributes else None
        return cls(
            info.name,
            info.type,
            multi=info.multi_valued,
            mutability=info.mutability,
            required=info.required,
            subs=subs,
            schema=info.schema,
        )


def _index(nodes: Any) -> dict[str, _Node]:
    """Name -> node, under both the schema's spelling and lower case (names are case-blind)."""
    out: dict[str, _Node] = {}
    for node in nodes:
        out.setdefault(node.name.lower(), node)
        out.setdefault(node.name, node)
    return out


class _Shape:
    """Everything one resource type's bodies are checked against, built once."""

    def __init__(self, discovery: Discovery, resource_type: str) -> None:
        info = discovery.resource_type(resource_type)
        assert info is not None
        self.name = info.name
        self.core = info.schema
        self.core_lower = info.schema.lower()
        core = [_Node.of(a) for a in discovery.schemas[info.schema]]
        names = {n.name.lower() for n in core}
        for raw in COMMON_ATTRIBUTES:
            if raw["name"].lower() not in names:
                core.append(_Node.of(AttributeInfo.from_schema(raw, info.schema)))
        self.extensions: dict[str, _Node] = {}
        for urn in info.extensions:
            self.extensions[urn.lower()] = self._container(discovery, urn)
        # A URN the resource type does not declare: flagged only when /ResourceTypes was
        # served (else extensions are unknown); validated when /Schemas describes it.
        self.strict = "/ResourceTypes" not in discovery.missing
        if not self.strict:
            cores = {t.schema for t in discovery.resource_types.values()}
            for urn in discovery.schemas:
                if urn.lower() not in self.extensions and urn not in cores:
                    self.extensions[urn.lower()] = self._container(discovery, urn)
        self.required_extensions = tuple(
            self.extensions[u.lower()] for u in info.required_extensions
        )
        root_subs = _index(core)
        for node in self.extensions.values():
            root_subs.setdefault(node.name, node)
            root_subs.setdefault(node.name.lower(), node)
        self.root = _Node(info.name, "complex", subs=root_subs, schema=info.schema)
        self.root.open_urns = not self.strict
        # longest first, so that a URN that prefixes another cannot shadow it
        self.urns = sorted(
            [(self.core.lower(), self.root), *self.extensions.items()],
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.known_schemas = {self.core.lower(), *self.extensions}
        self.paths: dict[str, tuple[_Node | None, str]] = {}

    @staticmethod
    def _container(discovery: Discovery, urn: str) -> _Node:
        attrs = discovery.schemas.get(urn)
        if attrs is None:  # the server does not describe it: accept whatever it holds
            return _Node(urn, "any", sep=":", schema=urn)
        return _Node(urn, "complex", subs=_index(_Node.of(a) for a in attrs), sep=":", schema=urn)

    def resolve(self, path: str) -> tuple[_Node | None, str]:
        """The node a PATCH path names (value filters dropped), or None with the reason."""
        bare = VALUE_FILTER.sub("", path) if "[" in path else path
        found = self.paths.get(bare)
        if found is None:
            found = self._resolve(bare)
            if len(self.paths) < _PATH_CACHE_LIMIT:
                self.paths[bare] = found
        return found

    def _resolve(self, bare: str) -> tuple[_Node | None, str]:
        lower = bare.lower()
        for urn, container in self.urns:
            if lower == urn:
                return container, ""
            if lower.startswith(urn) and lower[len(urn) : len(urn) + 1] == ":":
                return self._lookup(container, bare[len(urn) + 1 :])
        if lower.startswith("urn:"):
            if self.strict:
                return None, f"not an extension of {self.name} on this server"
            return _Node(bare, "any"), ""  # without /ResourceTypes: an extension unknown
        return self._lookup(self.root, bare)

    def _lookup(self, container: _Node, rest: str) -> tuple[_Node | None, str]:
        if container.subs is None:
            return _Node(rest, "any"), ""
        top, _, sub = rest.partition(".")
        node = container.subs.get(top) or container.subs.get(top.lower())
        if node is not None and sub:
            if node.subs is None:
                return _Node(sub, "any"), ""
            node = node.subs.get(sub) or node.subs.get(sub.lower())
        if node is None:
            return None, f"not in the server's schema ({container.schema})"
        return node, ""


class Validator:
    """Checks request bodies against one server's discovery; reuse it, it caches per type."""

    def __init__(self, discovery: Discovery) -> None:
        self.discovery = discovery
        self._shapes: dict[str, _Shape | None] = {}

    def problems(self, resource_type: str, method: str, body: Any) -> list[str]:
        """The problems of one request's body; [] when it is fine or nothing is known."""
        shape = self._shapes.get(resource_type, _MISSING)
        if shape is _MISSING:
            shape = self._shapes[resource_type] = self._shape(resource_type)
        verb = _VERBS.get(method) or method.upper()
        if verb in ("DELETE", "GET"):
            return [] if not body else [f"{verb} takes no body"]
        if shape is None:
            return []
        out: list[str] = []
        if verb == _POST or verb == _PUT:
            if not isinstance(body, Mapping):
                return [f"{verb} body: expected a SCIM resource object, got {_show(body)}"]
            self._schemas(shape, body, out)
            self._complex(shape.root, body, "", out, verb)
            for ext in shape.required_extensions:
                if not any(k.lower() == ext.name.lower() and v for k, v in body.items()):
                    out.append(f"{ext.name}: extension required by {shape.name} but missing")
        elif verb == "PATCH":
            self._patch(shape, body, out)
        else:
            out.append(f"{method}: not a SCIM method this validator knows")
        return out

    def _shape(self, resource_type: str) -> _Shape | None:
        info = self.discovery.resource_type(resource_type)
        if info is None or info.schema not in self.discovery.schemas:
            return None  # nothing to validate against: never a false alarm
        return _Shape(self.discovery, resource_type)

    # --- resources ---------------------------------------------------------------------------

    def _schemas(self, shape: _Shape, body: Mapping[str, Any], out: list[str]) -> None:
        listed = body.get("schemas")
        if listed is None:
            listed = next((v for k, v in body.items() if k.lower() == "schemas"), None)
        if type(listed) is not list or not all(type(s) is str for s in listed):
            out.append(f"schemas: expected a list of schema URNs with {shape.core}")
            return
        lowered = {s.lower() for s in listed}
        if shape.core_lower not in lowered:
            out.append(f"schemas: does not list the core schema {shape.core}")
        for key, value in body.items():
            if key[0] in "uU" and value and key[:4].lower() == "urn:":
                lkey = key.lower()
                if lkey not in lowered and lkey in shape.extensions:
                    out.append(f"schemas: does not list {key}, which the body uses")
        if shape.strict and not lowered <= shape.known_schemas:
            for urn in listed:
                if urn.lower() not in shape.known_schemas:
                    out.append(f"schemas: {urn} is not a schema of {shape.name} on this server")

    def _complex(self, node: _Node, value: Any, path: str, out: list[str], mode: str) -> None:
        """The keys of an object (a resource, an extension, a complex value); `path` names
        it in messages ("" for a resource itself)."""
        subs = node.subs
        if subs is None:
            return
        for key, item in value.items():
            sub = subs.get(key)
            if sub is None:
                sub = subs.get(key.lower())
                if sub is None:
                    if path or key.lower() != "schemas":
                        problem = self._unknown(node, _join(path, node.sep, key), path)
                        if problem:
                            out.append(problem)
                    continue
            if sub.read_only:
                if mode is not _PUT:  # RFC 7644 §3.5.1: a PUT's readOnly values are ignored
                    where = _join(path, node.sep, key)
                    out.append(f"{where}: readOnly, a client cannot write it")
                continue
            if item is None:
                continue  # null means unassigned (RFC 7643 §2.5)
            if sub.multi:
                if type(item) is list:
                    self._items(sub, item, _join(path, node.sep, key), out, mode)
                else:
                    where = _join(path, node.sep, key)
                    out.append(f"{where}: expected a list of {sub.expected}, got {_show(item)}")
            elif type(item) is not sub.exact:
                self._single(sub, item, _join(path, node.sep, key), out, mode)
            elif sub.subs is not None:
                self._complex(sub, item, _join(path, node.sep, key), out, mode)
        if node.required_subs and mode is not _PATCH:
            self._required(node, value, path, out)

    def _unknown(self, node: _Node, where: str, path: str) -> str:
        if not path and where[:4].lower() == "urn:":
            if node.open_urns:  # without /ResourceTypes nobody knows the extensions
                return ""
            return f"{where}: not an extension of {node.name} on this server"
        return f"{where}: not in the server's schema ({node.schema})"

    def _required(self, node: _Node, value: Mapping[str, Any], path: str, out: list[str]) -> None:
        present: set[str] | None = None
        for req in node.required_subs:
            found = value.get(req.name)
            if found is not None and found != "" and found != []:
                continue
            if present is None:  # not under the schema's spelling: compare case-blind
                present = {
                    k.lower() for k, v in value.items() if v is not None and v not in ("", [])
                }
            if req.name.lower() not in present:
                where = _join(path, node.sep, req.name)
                out.append(f"{where}: required by {req.schema or node.schema} but missing")

    def _items(self, node: _Node, items: list[Any], path: str, out: list[str], mode: str) -> None:
        exact = node.exact
        subs = node.subs
        for i, item in enumerate(items):
            if type(item) is not exact:
                self._single(node, item, f"{path}[{i}]", out, mode)
            elif subs is not None:
                self._complex(node, item, f"{path}[{i}]", out, mode)

    def _single(self, node: _Node, value: Any, path: str, out: list[str], mode: str) -> None:
        """A value whose Python type is not the usual one for its attribute: check fully."""
        check = node.check
        if check is None or value is None:
            return  # a type this validator does not know, or unassigned
        if not check(value):
            out.append(f"{path}: expected {node.expected}, got {_show(value)}")
        elif node.subs is not None and isinstance(value, Mapping):
            self._complex(node, value, path, out, mode)

    # --- PATCH -------------------------------------------------------------------------------

    def _patch(self, shape: _Shape, body: Any, out: list[str]) -> None:
        if not isinstance(body, Mapping):
            out.append(f"PATCH body: expected a PatchOp message, got {_show(body)}")
            return
        schemas = body.get("schemas")
        ops = body.get("Operations")
        if schemas is None or ops is None:  # member names are case-insensitive
            lowered = {k.lower(): v for k, v in body.items()}
            schemas, ops = lowered.get("schemas"), lowered.get("operations")
        if type(schemas) is not list or PATCH_OP_SCHEMA not in schemas:
            out.append(f"PATCH schemas: expected [{PATCH_OP_SCHEMA!r}]")
        if type(ops) is not list or not ops:
            out.append("PATCH Operations: expected a non-empty list of operations")
            return
        total = len(ops)
        for number, op in enumerate(ops, 1):
            before = len(out)
            self._operation(shape, op, out)
            if len(out) > before:  # labelled only when there is a problem
                for i in range(before, len(out)):
                    out[i] = f"PATCH op {number} of {total}{out[i]}"

    def _operation(self, shape: _Shape, op: Any, out: list[str]) -> None:
        """Problems of one operation, each starting " VERB PATH: " (the caller adds which)."""
        if type(op) is not dict and not isinstance(op, Mapping):
            out.append(f": expected an object, got {_show(op)}")
            return
        if not op.keys() <= _OP_KEYS:  # member names are case-insensitive too
            op = {k.lower(): v for k, v in op.items()}
        kind = op.get("op")
        verb = _OPS.get(kind) if type(kind) is str else None
        if verb is None:
            verb = kind.lower() if type(kind) is str else None
            if verb not in PATCH_OPS:
                out.append(f": op {kind!r} is not add, remove or replace")
                return
        path = op.get("path")
        value = op.get("value")
        if path is None:
            self._pathless(shape, verb, value, out)
            return
        if type(path) is not str or not path:
            out.append(f" {verb}: path must be a non-empty string, got {_show(path)}")
            return
        node, problem = shape.resolve(path)
        if node is not None and node.guarded:
            problem = _mutability(node, verb, path)
        if node is None or problem:
            out.append(f" {verb} {path}: {problem}")
            return
        if verb == "remove":
            return
        if value is None:
            out.append(f" {verb} {path}: {verb} needs a value")
            return
        before = len(out)
        if node.multi and type(value) is list:
            self._items(node, value, path, out, _PATCH)
        elif type(value) is not node.exact:
            self._single(node, value, path, out, _PATCH)
        elif node.subs is not None:
            self._complex(node, value, path, out, _PATCH)
        if len(out) == before:
            return
        head = path + ": "
        for i in range(before, len(out)):
            # "active: expected boolean" about the value itself reads "replace active: ..."
            problem = out[i]
            tail = problem[len(head) :] if problem.startswith(head) else problem
            out[i] = f" {verb} {path}: {tail}"

    def _pathless(self, shape: _Shape, verb: str, value: Any, out: list[str]) -> None:
        """add/replace without a path: the value is an object of attributes (RFC 7644
        §3.5.2.1, §3.5.2.3), checked like a resource body without the required checks."""
        if verb == "remove":
            out.append(" remove: remove needs a path")
        elif not isinstance(value, Mapping):
            out.append(f" {verb}: without a path the value must be an object of attributes")
        else:
            before = len(out)
            self._complex(shape.root, value, "", out, _PATCH)
            for i in range(before, len(out)):
                out[i] = f" {verb}: {out[i]}"


def _mutability(node: _Node, verb: str, path: str) -> str:
    """Why `verb` may not touch the attribute a PATCH path names ("" when it may)."""
    if node.read_only:
        return "readOnly, a client cannot write it"
    if node.immutable and verb != "add":
        return f"immutable, it can only be added, not {verb}d"
    if verb == "remove" and node.required and "[" not in path:
        return f"required by {node.schema}, it cannot be removed"
    return ""


_MISSING: Any = object()


def _join(path: str, sep: str, key: str) -> str:
    return f"{path}{sep}{key}" if path else key


def _show(value: Any) -> str:
    """A short picture of a wrong value for a message."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_LAST: tuple[Discovery, Validator] | None = None


def request_problems(
    discovery: Discovery, resource_type: str, method: str, body: Mapping[str, Any] | None
) -> list[str]:
    """One-off form of `Validator(discovery).problems(...)` (reuses the last Validator)."""
    global _LAST
    last = _LAST
    if last is None or last[0] is not discovery:
        last = _LAST = (discovery, Validator(discovery))
    return last[1].problems(resource_type, method, body)
