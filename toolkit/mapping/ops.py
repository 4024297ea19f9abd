"""Compiling attribute definitions into plain functions (the fast path of a mapping).

`scim_op` builds the LDAP -> SCIM function of one attribute; `normalize_op` builds the function
that turns that attribute's value in any SCIM resource into its canonical comparable form.
Entries arrive with lower-cased attribute names; values are lists of str or bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from toolkit.mapping.derived import DerivedContext, derived_function
from toolkit.mapping.model import AttributeDef, LdapMapping
from toolkit.mapping.transformations import (
    Normalize,
    ToScim,
    as_text,
    normalize_string,
)

LowerEntry = Mapping[str, Any]
ScimFunction = Callable[[LowerEntry, DerivedContext], Any]
#: (path for messages, extension URN or None for core, SCIM name, function)
ScimOp = tuple[str, str | None, str, ScimFunction]
#: (extension URN or None, lower-cased SCIM name, SCIM name, function)
NormalizeOp = tuple[str | None, str, str, Normalize]


def is_write_only(attribute: AttributeDef) -> bool:
    """SCIM `password` is write-only: servers never return it, and LDAP only holds its hash."""
    return attribute.name.lower() == "password"


def mappings_of(attribute: AttributeDef) -> list[LdapMapping]:
    found = [attribute.mapping] if attribute.mapping else []
    found += [sub.mapping for sub in attribute.sub_attributes if sub.mapping]
    for canonical in attribute.canonical_values:
        found += [mapping for _, mapping in canonical.sub_mappings]
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


def _converter(mapping: LdapMapping, data_type: str) -> tuple[str, ToScim]:
    return mapping.ldap_attribute.lower(), mapping.transformation.scim_converter(data_type)


def _sub_type(attribute: AttributeDef, sub_name: str) -> str:
    if attribute.kind == "simpleMultiValued":
        return "boolean" if sub_name == "primary" else attribute.data_type or "string"
    sub = attribute.sub_attribute(sub_name)
    return sub.data_type if sub else "string"


def scim_op(attribute: AttributeDef, core_schema: str) -> ScimOp:
    container = None if attribute.schema == core_schema else attribute.schema
    path = attribute.name if container is None else f"{attribute.schema}:{attribute.name}"
    return path, container, attribute.name, _scim_function(attribute, path)


def _scim_function(attribute: AttributeDef, path: str) -> ScimFunction:
    if attribute.derivation is not None:
        canonical = [cv.name for cv in attribute.canonical_values]
        return derived_function(attribute.derivation.kind, path, canonical)
    if attribute.kind == "simple":
        assert attribute.mapping is not None
        return _simple(*_converter(attribute.mapping, attribute.data_type or "string"))
    if attribute.kind == "complex":
        subs = [
            (sub.name, *_converter(sub.mapping, sub.data_type))
            for sub in attribute.sub_attributes
            if sub.mapping
        ]
        return _complex(subs)
    if attribute.kind == "simpleMultiValued":
        return _simple_multi_valued(attribute)
    return _complex_multi_valued(attribute)


def _simple(key: str, convert: ToScim) -> ScimFunction:
    if convert is as_text:  # most attributes: text as the reader gives it, no call

        def text(entry: LowerEntry, ctx: DerivedContext) -> Any:
            values = entry.get(key)
            if not values:
                return None
            value = values[0] if type(values) is list else _first(values)
            return value if type(value) is str else as_text(value)

        return text

    def simple(entry: LowerEntry, ctx: DerivedContext) -> Any:
        values = entry.get(key)
        if not values:
            return None
        return convert(values[0] if type(values) is list else _first(values))

    return simple


def _complex(subs: list[tuple[str, str, ToScim]]) -> ScimFunction:
    def complex_(entry: LowerEntry, ctx: DerivedContext) -> Any:
        out = {}
        for name, key, convert in subs:
            values = entry.get(key)
            if values:
                value = values[0] if type(values) is list else _first(values)
                out[name] = value if convert is as_text and type(value) is str else convert(value)
        return out or None

    return complex_


def _simple_multi_valued(attribute: AttributeDef) -> ScimFunction:
    # Per group: (type or None, key of `value`, its converter, [(other sub, key, converter)]).
    # Every LDAP value of the `value` attribute becomes one item (pingdatasync.md 5.2); the
    # SDK itself keeps only the first value of a canonical type, silently dropping the rest.
    groups: list[tuple[str | None, str | None, ToScim | None, list[tuple[str, str, ToScim]]]] = []
    if attribute.mapping is not None:
        groups.append((None, *_converter(attribute.mapping, attribute.data_type or "string"), []))
    for canonical in attribute.canonical_values:
        if not canonical.sub_mappings:
            continue
        key: str | None = None
        convert: ToScim | None = None
        extras = []
        for sub_name, mapping in canonical.sub_mappings:
            sub_key, sub_convert = _converter(mapping, _sub_type(attribute, sub_name))
            if sub_name == "value":
                key, convert = sub_key, sub_convert
            else:
                extras.append((sub_name, sub_key, sub_convert))
        groups.append((canonical.name, key, convert, extras))

    def simple_multi_valued(entry: LowerEntry, ctx: DerivedContext) -> Any:
        out = []
        for type_name, key, convert, extras in groups:
            extra = {}
            for sub_name, sub_key, sub_convert in extras:
                values = entry.get(sub_key)
                if values:
                    extra[sub_name] = sub_convert(_first(values))
            if key is None:
                if extra:
                    out.append({**extra, "type": type_name} if type_name else extra)
                continue
            values = entry.get(key)
            if not values:
                continue
            for value in _all(values):
                item = {"value": convert(value)}  # type: ignore[misc]
                if extra:
                    item.update(extra)
                if type_name is not None:
                    item["type"] = type_name
                out.append(item)
        return out or None

    return simple_multi_valued


def _complex_multi_valued(attribute: AttributeDef) -> ScimFunction:
    # One item per canonical type, from the first value of each sub-mapped LDAP attribute.
    groups = [
        (
            canonical.name,
            [
                (sub_name, *_converter(mapping, _sub_type(attribute, sub_name)))
                for sub_name, mapping in canonical.sub_mappings
            ],
        )
        for canonical in attribute.canonical_values
        if canonical.sub_mappings
    ]

    def complex_multi_valued(entry: LowerEntry, ctx: DerivedContext) -> Any:
        out = []
        for type_name, subs in groups:
            item = {}
            for sub_name, key, convert in subs:
                values = entry.get(key)
                if values:
                    value = values[0] if type(values) is list else _first(values)
                    text = convert is as_text and type(value) is str
                    item[sub_name] = value if text else convert(value)
            if item:
                item["type"] = type_name
                out.append(item)
        return out or None

    return complex_multi_valued


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
