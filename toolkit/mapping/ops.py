"""Compiling attribute definitions into plain functions (the fast path of a mapping).

`resource_function` builds the LDAP -> SCIM function of a whole resource; `normalize_op` builds
the function that turns one attribute's value in any SCIM resource into its canonical
comparable form.
Entries arrive with lower-cased attribute names; values are lists of str or bytes.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from toolkit.mapping.derived import DerivedContext, derived_function
from toolkit.mapping.model import AttributeDef, LdapMapping
from toolkit.mapping.transformations import (
    Normalize,
    ToScim,
    TransformationError,
    as_text,
    ldap_text,
    normalize_string,
)

LowerEntry = Mapping[str, Any]
#: a whole entry -> its resource (resource_function)
ResourceFunction = Callable[[LowerEntry, DerivedContext], dict[str, Any]]
#: (entry, SCIM attribute path, the transformation's error) -> the error to raise
Refuse = Callable[[LowerEntry, str, TransformationError], Exception]
#: (extension URN or None, lower-cased SCIM name, SCIM name, function)
NormalizeOp = tuple[str | None, str, str, Normalize]


def is_write_only(attribute: AttributeDef) -> bool:
    """SCIM `password` is write-only: servers never return it, and LDAP only holds its hash."""
    return attribute.name.lower() == "password"


def mappings_of(attribute: AttributeDef) -> list[LdapMapping]:
    return [mapping for mapping, _ in typed_mappings(attribute)]


def typed_mappings(attribute: AttributeDef) -> list[tuple[LdapMapping, str]]:
    """Each LDAP mapping of the attribute, with the SCIM data type its values become."""
    found = [(attribute.mapping, attribute.data_type or "string")] if attribute.mapping else []
    found += [(sub.mapping, sub.data_type) for sub in attribute.sub_attributes if sub.mapping]
    for canonical in attribute.canonical_values:
        found += [(m, _sub_type(attribute, name)) for name, m in canonical.sub_mappings]
    return found


def _typed(attribute: AttributeDef) -> bool:
    """True if the mapping gives values a canonical `type`."""
    return any(cv.sub_mappings for cv in attribute.canonical_values)


def written_sub_attributes(attribute: AttributeDef) -> list[str]:
    """Sub-attribute names `to_scim` fills ("" = the attribute itself is a simple value)."""
    derivation = attribute.derivation
    if derivation is not None:
        return {"manager": ["value"], "members": ["value", "type"], "groups": ["value"]}[
            derivation.kind
        ]
    if attribute.kind == "simple":
        return [""]
    if attribute.kind == "complex":
        return [sub.name for sub in attribute.sub_attributes if sub.mapping]
    names = ["value"] if attribute.mapping else []
    for canonical in attribute.canonical_values:
        names += [name for name, _ in canonical.sub_mappings if name not in names]
    if _typed(attribute):
        names.append("type")
    return names


# --- LDAP -> SCIM -----------------------------------------------------------------------------


def _first(values: Any) -> Any:
    if isinstance(values, str | bytes):
        return values
    return values[0] if isinstance(values, list | tuple) else next(iter(values))


def _all(values: Any) -> Any:
    return (values,) if isinstance(values, str | bytes) else values


@dataclass(frozen=True)
class _Converter:
    """How one LDAP attribute's values become SCIM values of one data type."""

    key: str  # the LDAP attribute, lower case (as entries hold it)
    convert: ToScim
    attribute: str  # as the mapping spells it, for messages
    takes_bytes: bool  # else a value that is not UTF-8 text is refused (BinaryValueError)


def _converter(mapping: LdapMapping, data_type: str) -> _Converter:
    transformation = mapping.transformation
    return _Converter(
        mapping.ldap_attribute.lower(),
        transformation.scim_converter(data_type),
        mapping.ldap_attribute,
        transformation.accepts_bytes(data_type),
    )


def _sub_type(attribute: AttributeDef, sub_name: str) -> str:
    if attribute.kind == "simpleMultiValued":
        return "boolean" if sub_name == "primary" else attribute.data_type or "string"
    sub = attribute.sub_attribute(sub_name)
    return sub.data_type if sub else "string"


def resource_function(
    attributes: Iterable[AttributeDef], core_schema: str, refuse: Refuse
) -> ResourceFunction:
    """The function mapping a lower-cased entry to its whole resource (`schemas` first, then
    each attribute in order, an extension's under its URN once it has a value).

    Its source is generated once per mapping: every attribute but the derived ones is written
    out as straight-line code, so that mapping an entry does not pay a call, a tuple and a
    loop turn per attribute (most attributes are one text value: the overhead was most of
    their cost); derived ones call their function. A value a transformation rejects raises
    `refuse(entry, path, error)`.
    """
    code = _Source()
    extensions: dict[str, str] = {}  # URN -> the local holding its values
    for attribute in attributes:
        urn = None if attribute.schema == core_schema else attribute.schema
        if urn is not None:
            extensions.setdefault(urn, f"x{len(extensions)}")
        path = attribute.name if urn is None else f"{urn}:{attribute.name}"
        code.line(f"path = {path!r}")
        store = _Store(code, attribute.name, (extensions[urn], urn) if urn else None)
        _emit_attribute(code, attribute, path, store)
    if not code.lines:
        code.line("pass")
    head = ["def resource(entry, ctx):", f"    out = {{'schemas': [{core_schema!r}]}}"]
    head += [f"    {local} = None" for local in extensions.values()]
    head += ["    try:"]
    tail = [
        "    except TransformationError as exc:",
        "        raise refuse(entry, path, exc) from exc",
    ]
    for urn, local in extensions.items():
        tail += [f"    if {local} is not None:", f"        out['schemas'].append({urn!r})"]
    tail += ["    return out"]
    source = "\n".join([*head, *code.lines, *tail]) + "\n"
    return code.compile(source, {"refuse": refuse}, f"<resource {core_schema}>")["resource"]


class _Source:
    """Lines of generated code (in the body of a try: 8 spaces in), and the objects they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_first": _first,
            "_all": _all,
            "ldap_text": ldap_text,
            "TransformationError": TransformationError,
        }
        self.depth = 2

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        """`header` (an `if`, a `for`), and the lines written inside the `with` under it."""
        self.line(header)
        self.depth += 1
        yield
        self.depth -= 1

    def name(self, value: Any) -> str:
        """A name the generated code knows `value` by (a converter, a function)."""
        for name, known in self.names.items():
            if known is value:
                return name
        name = f"f{len(self.names)}"
        self.names[name] = value
        return name

    def compile(self, source: str, names: dict[str, Any], filename: str) -> dict[str, Any]:
        namespace = {**self.names, **names}
        # registered so that a traceback through it shows its lines
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)
        return namespace


@dataclass
class _Store:
    """Where an attribute's value goes: `out[name]`, or for an extension's attribute (local,
    URN) `local[name]`, the local created as `out[URN]` on first use."""

    code: _Source
    name: str
    extension: tuple[str, str] | None = None

    def put(self, expression: str) -> None:
        if self.extension is None:
            self.code.line(f"out[{self.name!r}] = {expression}")
            return
        local, urn = self.extension
        with self.code.block(f"if {local} is None:"):
            self.code.line(f"{local} = out[{urn!r}] = {{}}")
        self.code.line(f"{local}[{self.name!r}] = {expression}")


def _emit_attribute(code: _Source, attribute: AttributeDef, path: str, store: _Store) -> None:
    if attribute.derivation is None and attribute.kind == "simple":
        assert attribute.mapping is not None
        converter = _converter(attribute.mapping, attribute.data_type or "string")
        code.line(f"v = entry.get({converter.key!r})")
        with code.block("if v:"):
            code.line("v = v[0] if type(v) is list else _first(v)")
            if converter.convert is ldap_text:  # most attributes: text as read, no call
                store.put(_converted(code, converter))
            else:
                code.line(f"v = {_converted(code, converter)}")
                with code.block("if v is not None:"):
                    store.put("v")
    elif attribute.derivation is None and attribute.kind == "complex":
        subs = [(sub.name, sub.mapping, sub.data_type) for sub in attribute.sub_attributes]
        code.line("item = {}")
        _emit_item(code, [(name, _converter(m, t)) for name, m, t in subs if m])
        with code.block("if item:"):
            store.put("item")
    elif attribute.derivation is None and attribute.kind == "complexMultiValued":
        # One item per canonical type, from the first value of each sub-mapped LDAP attribute.
        code.line("items = []")
        for canonical in attribute.canonical_values:
            if not canonical.sub_mappings:
                continue
            code.line("item = {}")
            subs = [
                (sub_name, _converter(mapping, _sub_type(attribute, sub_name)))
                for sub_name, mapping in canonical.sub_mappings
            ]
            _emit_item(code, subs)
            with code.block("if item:"):
                code.line(f"item['type'] = {canonical.name!r}")
                code.line("items.append(item)")
        with code.block("if items:"):
            store.put("items")
    elif attribute.derivation is None:
        _emit_simple_multi_valued(code, attribute, store)
    else:
        canonical = [cv.name for cv in attribute.canonical_values]
        function = derived_function(attribute.derivation.kind, path, canonical)
        code.line(f"v = {code.name(function)}(entry, ctx)")
        with code.block("if v is not None:"):
            store.put("v")


def _emit_item(code: _Source, subs: list[tuple[str, _Converter]], item: str = "item") -> None:
    """`item[name]` = the first value of each sub-attribute's LDAP attribute, converted."""
    for name, converter in subs:
        code.line(f"v = entry.get({converter.key!r})")
        with code.block("if v:"):
            code.line("v = v[0] if type(v) is list else _first(v)")
            code.line(f"{item}[{name!r}] = {_converted(code, converter)}")


def _emit_simple_multi_valued(code: _Source, attribute: AttributeDef, store: _Store) -> None:
    """One item per LDAP value of each group's `value` attribute (pingdatasync.md 5.2; the
    SDK itself keeps only the first value of a canonical type, silently dropping the rest),
    with the first value of its other sub-attributes and the group's canonical type. A group
    with no `value` mapping gives one item of those others, if any has a value."""
    # Per group: (type or None, converter of `value` or None, [(other sub, its converter)])
    groups: list[tuple[str | None, _Converter | None, list[tuple[str, _Converter]]]]
    groups = []
    if attribute.mapping is not None:
        groups.append((None, _converter(attribute.mapping, attribute.data_type or "string"), []))
    for canonical in attribute.canonical_values:
        value: _Converter | None = None
        extras = []
        for sub_name, mapping in canonical.sub_mappings:
            converter = _converter(mapping, _sub_type(attribute, sub_name))
            if sub_name == "value":
                value = converter
            else:
                extras.append((sub_name, converter))
        if canonical.sub_mappings:
            groups.append((canonical.name, value, extras))
    code.line("items = []")
    for type_name, value, extras in groups:
        if extras:
            code.line("extra = {}")
            _emit_item(code, extras, "extra")
        if value is None:  # its other sub-attributes make one item
            if extras:
                with code.block("if extra:"):
                    item = f"{{**extra, 'type': {type_name!r}}}" if type_name else "extra"
                    code.line(f"items.append({item})")
            continue
        typed = f", 'type': {type_name!r}" if type_name is not None else ""
        code.line(f"v = entry.get({value.key!r})")
        with code.block("if v:"), code.block("for v in (v if type(v) is list else _all(v)):"):
            if not extras:  # the usual case: one literal
                code.line(f"items.append({{'value': {_converted(code, value)}{typed}}})")
            else:
                code.line(f"item = {{'value': {_converted(code, value)}}}")
                with code.block("if extra:"):
                    code.line("item.update(extra)")
                if typed:
                    code.line(f"item['type'] = {type_name!r}")
                code.line("items.append(item)")
    with code.block("if items:"):
        store.put("items")


def _converted(code: _Source, converter: _Converter) -> str:
    """The expression converting the LDAP value `v`. Text as the reader gives it costs no call;
    anything else (bytes: a value that is not UTF-8) goes through `ldap_text`, which refuses it
    naming the attribute, unless the transformation takes octets (base64)."""
    convert = converter.convert
    if converter.takes_bytes:
        return f"{code.name(convert)}(v)"
    text = f"v if type(v) is str else ldap_text(v, {converter.attribute!r})"
    return text if convert is ldap_text else f"{code.name(convert)}({text})"


# --- comparable form --------------------------------------------------------------------------


def normalize_op(attribute: AttributeDef, core_schema: str) -> NormalizeOp:
    container = None if attribute.schema == core_schema else attribute.schema
    return container, attribute.name.lower(), attribute.name, _normalize_function(attribute)


def _normalize_id(value: Any) -> str | None:
    return as_text(value).strip() or None if value is not None else None


def _normalize_function(attribute: AttributeDef) -> Normalize:
    derivation = attribute.derivation
    if derivation is not None and derivation.kind == "manager":
        return _normalize_reference
    if derivation is not None:
        return _normalize_references
    if attribute.kind == "simple":
        assert attribute.mapping is not None
        normalize = attribute.mapping.transformation.normalizer(attribute.data_type or "string")

        def simple(raw: Any) -> Any:
            if type(raw) is list or type(raw) is tuple:
                raw = raw[0] if raw else None
            return normalize(raw)

        return simple
    if attribute.kind == "complex":
        subs = {
            sub.name.lower(): (sub.name, sub.mapping.transformation.normalizer(sub.data_type))
            for sub in attribute.sub_attributes
            if sub.mapping
        }
        return _normalize_complex(subs)
    return _normalize_multi_valued(attribute)


def _single(raw: Any) -> Any:
    if isinstance(raw, list | tuple):
        return raw[0] if raw else None
    return raw


def _normalize_reference(raw: Any) -> Any:
    """manager: {"value": id}; accepts a bare id and SCIM 1.1's `managerId`."""
    if isinstance(raw, Mapping):
        lowered = {key.lower(): value for key, value in raw.items()}
        value = _normalize_id(lowered.get("value", lowered.get("managerid")))
    else:
        value = _normalize_id(_single(raw))
    return {"value": value} if value else None


def _normalize_references(raw: Any) -> Any:
    """members/groups: the sorted set of ids (`type`, `display` and `$ref` follow from the id)."""
    ids = set()
    for item in raw if isinstance(raw, list | tuple) else [raw]:
        if isinstance(item, Mapping):
            item = next((v for k, v in item.items() if k.lower() == "value"), None)
        value = _normalize_id(item)
        if value:
            ids.add(value)
    return [{"value": value} for value in sorted(ids)] or None


def _normalize_complex(subs: dict[str, tuple[str, Normalize]]) -> Normalize:
    def normalize(raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return None
        out = {}
        for key, value in raw.items():
            sub = subs.get(key.lower())
            if sub is not None and value is not None:
                normalized = sub[1](value)
                if normalized is not None:
                    out[sub[0]] = normalized
        return out or None

    return normalize


_SKIP: tuple[str, Normalize] = ("type", lambda value: None)


def _normalize_multi_valued(attribute: AttributeDef) -> Normalize:
    defaults: dict[str, tuple[str, Normalize]] = {}
    by_type: dict[str, dict[str, tuple[str, Normalize]]] = {}
    if attribute.mapping is not None:
        normalize = attribute.mapping.transformation.normalizer(attribute.data_type or "string")
        defaults["value"] = ("value", normalize)
    for canonical in attribute.canonical_values:
        for sub_name, mapping in canonical.sub_mappings:
            entry = (sub_name, mapping.transformation.normalizer(_sub_type(attribute, sub_name)))
            typed_subs = by_type.setdefault(canonical.name, {})
            for key in {sub_name, sub_name.lower()}:  # exact spelling first, then any case
                defaults.setdefault(key, entry)
                typed_subs[key] = entry
    # A type without its own mapping of a sub-attribute compares it like the others do.
    for subs in by_type.values():
        for key, entry in defaults.items():
            subs.setdefault(key, entry)
    typed = _typed(attribute)
    canonical_types = {cv.name.lower(): cv.name for cv in attribute.canonical_values}
    # Spellings already canonical skip the string work (the common case).
    canonical_types.update({cv.name: cv.name for cv in attribute.canonical_values})
    # `type` is handled apart; the marker saves a second, lower-cased look-up of it.
    for subs in (defaults, *by_type.values()):
        subs["type"] = _SKIP

    def normalize_items(raw: Any) -> Any:
        found: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
        for item in raw if type(raw) is list else [raw]:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                item = {"value": item}
            type_name = None
            subs = defaults
            if typed:
                raw_type = item.get("type")
                if raw_type is None:
                    raw_type = next((v for k, v in item.items() if k.lower() == "type"), None)
                type_name = canonical_types.get(raw_type) if type(raw_type) is str else None
                if type_name is None:
                    raw_type = normalize_string(raw_type)
                    if raw_type:
                        type_name = canonical_types.get(raw_type.lower(), raw_type)
                if type_name is not None:
                    subs = by_type.get(type_name, defaults)
            out = {}
            for key, value in item.items():
                sub = subs.get(key)
                if sub is None:
                    sub = subs.get(key.lower())
                if sub is not None and sub is not _SKIP and value is not None:
                    normalized = sub[1](value)
                    if normalized is not None:
                        out[sub[0]] = normalized
            if not out:
                continue
            if type_name is not None:
                out["type"] = type_name
            # Values of one sub-attribute share one type, so these keys always compare.
            found[tuple(sorted(out.items()))] = out
        if len(found) < 2:
            return list(found.values()) or None
        return [found[key] for key in sorted(found)]

    return normalize_items
