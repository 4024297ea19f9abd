"""A resource mapping: LDAP entry -> SCIM 2.0 resource, and any SCIM resource -> comparable form.

The definitions from the XML are compiled once into plain Python: one generated function per
resource for LDAP -> SCIM, one normalizer per SCIM attribute for the comparable form, so that
mapping an entry costs a few dict look-ups per attribute and no lxml work at all.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config.dn import normalize_dn
from toolkit.entry import Entry, entry_dn
from toolkit.errors import SkippableError
from toolkit.mapping import ops as compiler
from toolkit.mapping.derived import (
    LDAP_ATTRIBUTES,
    URL_ATTRIBUTES,
    DerivedContext,
    OnUnresolved,
    Resolver,
    referenced_dns,
    unresolvable,
)
from toolkit.mapping.model import (
    AddTemplate,
    AttributeDef,
    DerivationKind,
    LdapAttributeUse,
    SearchParams,
)
from toolkit.mapping.ops import ResourceFunction
from toolkit.mapping.transformations import Normalize, TransformationError, as_text

#: An LDAP entry: attribute name (any case) -> values, plus "dn".
#: (lower-cased SCIM name, SCIM name, function)
_Normalizer = tuple[str, str, Normalize]
#: attribute names as spelled, and lower-cased
_Names = tuple[frozenset[str], frozenset[str]]


#: never mapped attributes (RFC 7643 common attributes), so checked first
_UNMAPPED = frozenset({"schemas", "id", "meta"})


def _names(names: Any) -> _Names:
    spelled = frozenset(names)
    return spelled, frozenset(n.lower() for n in spelled)


def _same_extension(x: Any, y: Any, names: _Names) -> bool:
    """Equal values of an extension's mapped attributes, spelled as mapped (None = {})."""
    x, y = x or {}, y or {}
    if not isinstance(x, Mapping) or not isinstance(y, Mapping):
        return False
    spelled, lowered = names
    for extension in (x, y):
        for key in extension:
            if key not in spelled and key.lower() in lowered:
                return False
    return all(x.get(name) == y.get(name) for name in spelled)


class MappingValueError(SkippableError):
    """One entry cannot be mapped (a value its transformation rejects); names DN and attribute."""


def _refused(entry: Entry, path: str, exc: TransformationError) -> MappingValueError:
    return MappingValueError(f"{entry_dn(entry) or 'entry'}: SCIM attribute {path}: {exc}")


@dataclass(eq=False)
class ResourceMapping:
    """One <resource> of scim-resources.xml, in SCIM 2.0 terms."""

    name: str
    endpoint: str
    schema: str  # the SCIM 2.0 core schema URN
    search: SearchParams
    attributes: tuple[AttributeDef, ...]
    description: str = ""
    source_schema: str = ""  # as written in the file (maybe SCIM 1.1)
    add: AddTemplate | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)
    _lower_names: set[str] = field(default_factory=set, init=False, repr=False)

    # --- what the mapping covers ------------------------------------------------------------

    @property
    def schemas(self) -> tuple[str, ...]:
        """The core schema, then each extension schema with a mapped attribute."""
        found = [self.schema]
        for attribute in self.attributes:
            if attribute.managed and attribute.schema not in found:
                found.append(attribute.schema)
        return tuple(found)

    def attribute(self, name: str) -> AttributeDef | None:
        """An attribute by name, or by `URN:name` for an extension attribute."""
        lowered = name.lower()
        for attribute in self.attributes:
            if attribute.name.lower() == lowered or (
                f"{attribute.schema}:{attribute.name}".lower() == lowered
            ):
                return attribute
        return None

    def _selected(self, include_read_only: bool, include_write_only: bool) -> list[AttributeDef]:
        return [
            a
            for a in self.attributes
            if a.managed
            and (include_read_only or not a.read_only)
            and (include_write_only or not compiler.is_write_only(a))
        ]

    def written_attributes(
        self, *, include_read_only: bool = False, include_write_only: bool = False
    ) -> list[str]:
        """SCIM attribute paths `to_scim` writes (extension ones as `URN:attr.sub`)."""
        paths: list[str] = []
        for attribute in self._selected(include_read_only, include_write_only):
            prefix = "" if attribute.schema == self.schema else f"{attribute.schema}:"
            for sub in compiler.written_sub_attributes(attribute):
                path = f"{prefix}{attribute.name}" + (f".{sub}" if sub else "")
                if path not in paths:
                    paths.append(path)
        return paths

    def ldap_attributes(
        self, *, include_read_only: bool = False, include_write_only: bool = False
    ) -> list[str]:
        """The LDAP attributes to request so that `to_scim` and `resource_id` have their input."""
        names: dict[str, str] = {}

        def add(name: str) -> None:
            names.setdefault(name.lower(), name)

        if self.search.id_mapping is not None:
            add(self.search.id_mapping.ldap_attribute)
        for attribute in self._selected(include_read_only, include_write_only):
            if attribute.derivation is not None:
                for name in LDAP_ATTRIBUTES[attribute.derivation.kind]:
                    add(name)
            for mapping in compiler.mappings_of(attribute):
                add(mapping.ldap_attribute)
        return list(names.values())

    # --- LDAP -> SCIM -----------------------------------------------------------------------

    def resource_id(self, entry: Entry) -> str | None:
        """The resource's id as the SDK defines it: the resourceIDMapping value, else the DN.

        A stable source-side key (entryUUID in the default mapping); the SCIM server may still
        assign its own `id`, which the link store pairs with this.
        """
        id_mapping = self.search.id_mapping
        if id_mapping is None:
            dn = entry_dn(entry)
            return normalize_dn(dn) if dn else None
        wanted = id_mapping.ldap_attribute.lower()
        for key, values in entry.items():
            if key.lower() == wanted and values:
                value = values if isinstance(values, str | bytes) else values[0]
                transformation = id_mapping.transformation
                if type(value) is bytes and not (
                    transformation and transformation.accepts_bytes("string")
                ):
                    try:
                        value = value.decode()
                    except UnicodeDecodeError:  # octets (a GUID): base64 keeps ids distinct
                        value = base64.b64encode(value).decode("ascii")
                if transformation is not None:
                    return as_text(transformation.to_scim(value, "string"))
                return as_text(value)
        return None

    def _function(self, include_read_only: bool, include_write_only: bool) -> ResourceFunction:
        key = ("to_scim", include_read_only, include_write_only)
        function = self._cache.get(key)
        if function is None:
            selected = self._selected(include_read_only, include_write_only)
            function = compiler.resource_function(selected, self.schema, _refused)
            self._cache[key] = function
        return function

    def to_scim(
        self,
        entry: Entry,
        resolver: Resolver | None = None,
        *,
        on_unresolved: OnUnresolved | None = None,
        include_read_only: bool = False,
        include_write_only: bool = False,
    ) -> dict[str, Any]:
        """The SCIM 2.0 resource (no `id`, no `meta`) that an LDAP entry should become.

        Read-only attributes (User.groups) and write-only ones (password: LDAP holds hashes,
        never a password to send) are left out unless asked for. DNs of derived attributes go
        through `resolver`; those it cannot resolve are left out and passed to `on_unresolved`.
        Raises MappingValueError (skippable) when a transformation rejects a value.
        """
        # entries read by the toolkit already have lower-case names: check, don't copy
        lowered = entry if entry.keys() <= self._lower_names else self._lowered(entry)
        function = self._function(include_read_only, include_write_only)
        return function(lowered, DerivedContext(resolver, on_unresolved))

    def _lowered(self, entry: Entry) -> Entry:
        """`entry` if its names are lower case (learning them: names repeat from entry to
        entry, so the next ones need only a subset test in C), else a lower-cased copy."""
        if all(map(str.islower, entry)):
            self._lower_names.update(entry)
            return entry
        return {key.lower(): values for key, values in entry.items()}

    def missing_required(self, scim_resource: Mapping[str, Any]) -> list[str]:
        """Required, writable, mapped attributes that have no value in `scim_resource`.

        A SCIM server would reject such a resource; the plan reports it before sending.
        """
        missing = []
        lowered = {key.lower(): value for key, value in scim_resource.items()}
        for attribute in self._selected(include_read_only=False, include_write_only=False):
            if not attribute.required:
                continue
            if attribute.schema == self.schema:
                present = lowered.get(attribute.name.lower())
                path = attribute.name
            else:
                extension = lowered.get(attribute.schema.lower()) or {}
                present = {k.lower(): v for k, v in extension.items()}.get(attribute.name.lower())
                path = f"{attribute.schema}:{attribute.name}"
            if present in (None, "", [], {}):
                missing.append(path)
        return missing

    # --- comparable form --------------------------------------------------------------------

    def _normalizers(self) -> tuple[list[_Normalizer], list[tuple[str, list[_Normalizer]]]]:
        """(core attribute normalizers, [(extension URN, its normalizers)])."""
        ops: tuple[list[_Normalizer], list[tuple[str, list[_Normalizer]]]] | None
        ops = self._cache.get("normalize")
        if ops is None:
            core: list[_Normalizer] = []
            extensions: dict[str, list[_Normalizer]] = {}
            selected = self._selected(include_read_only=False, include_write_only=False)
            for attribute in selected:
                container, key, name, function = compiler.normalize_op(attribute, self.schema)
                target = core if container is None else extensions.setdefault(container, [])
                target.append((key, name, function))
            ops = self._cache["normalize"] = (core, list(extensions.items()))
        return ops

    def referenced_dns(self, entry: Entry) -> list[str] | None:
        """Every DN `to_scim` resolves for this entry, in order: what other objects' links
        decide for it (the rest is the entry's own). None when the entry also holds references
        no resolver answers (a dynamic group's memberURL)."""
        lowered = entry if entry.keys() <= self._lower_names else self._lowered(entry)
        dns: list[str] = []
        for kind in self._derivations():
            if unresolvable(kind, lowered):
                return None
            dns += referenced_dns(kind, lowered)
        return dns

    def named_dns(self, entry: Entry) -> list[str]:
        """Every DN the entry names through this mapping's references, in order: those of
        `referenced_dns`, also for an entry that holds a memberURL as well."""
        lowered = entry if entry.keys() <= self._lower_names else self._lowered(entry)
        return [dn for kind in self._derivations() for dn in referenced_dns(kind, lowered)]

    def referencing_attributes(self) -> list[str]:
        """The LDAP attributes through which this mapping's entries name other entries by DN
        (a manager, a group's members, a user's groups): an entry naming a DN maps anew when
        the entry at that DN is added, deleted, renamed or moved."""
        return [
            name
            for kind in self._derivations()
            for name in LDAP_ATTRIBUTES[kind]
            if name not in URL_ATTRIBUTES
        ]

    def _derivations(self) -> list[DerivationKind]:
        found = self._cache.get("derivations")
        if found is None:
            found = self._cache["derivations"] = [
                attribute.derivation.kind
                for attribute in self._selected(False, False)
                if attribute.derivation is not None
            ]
        return found

    def mapped_view(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """`resource`'s schemas and mapped attributes as spelled by `to_scim`: the entry's
        resource, when the two are known to hold the same values."""
        keys = self._cache.get("view")
        if keys is None:
            names, _, subs = self._spellings()
            keys = self._cache["view"] = frozenset({*names, *subs, "schemas"})
        view = dict(resource)  # copied in C; then the few others (id, meta) dropped
        for key in resource.keys() - keys:
            del view[key]
        return view

    def fingerprint(self) -> str:
        """A digest of this mapping's definition (transformations by class and arguments)."""
        found = self._cache.get("fingerprint")
        if found is None:
            definition = repr((self.name, self.endpoint, self.schema, self.search, self.attributes))
            found = self._cache["fingerprint"] = hashlib.sha256(definition.encode()).hexdigest()
        return found

    def code_modules(self) -> set[str]:
        """The source files of the transformation classes this mapping uses (its code)."""
        files = set()
        for attribute in self.attributes:
            for mapping in compiler.mappings_of(attribute):
                files.add(inspect.getsourcefile(type(mapping.transformation)) or "")
        return files - {""}

    def reference_attributes(self) -> list[tuple[str | None, str]]:
        """(extension URN or None, name) of the attributes `to_scim` fills through the
        resolver (manager, members, groups): the only places a resolved reference can be."""
        found = self._cache.get("references")
        if found is None:
            found = self._cache["references"] = [
                (None if a.schema == self.schema else a.schema, a.name)
                for a in self._selected(include_read_only=False, include_write_only=False)
                if a.derivation is not None
            ]
        return found

    def _spellings(self) -> tuple[frozenset[str], frozenset[str], dict[str, _Names]]:
        """(core names as `to_scim` spells them, those and the URNs lower-cased, and for each
        extension URN its attribute names as spelled and lower-cased)."""
        found = self._cache.get("spellings")
        if found is None:
            core, extensions = self._normalizers()
            names = frozenset(name for _, name, _ in core)
            # the core URN too: core attributes may come under it as a container
            urns = [self.schema, *(urn for urn, _ in extensions)]
            lowered = frozenset(n.lower() for n in [*names, *urns])
            subs = {urn: _names(name for _, name, _ in ops) for urn, ops in extensions}
            found = self._cache["spellings"] = (names, lowered, subs)
        return found

    def same_values(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        """True when `a` and `b` hold equal values, as given, for every mapped attribute.

        Their comparable forms are then equal too (`normalize` is a function of those values
        alone), so a caller may skip computing them: after a sync, nearly every resource the
        server returns is spelled exactly as `to_scim` wrote it. Any other spelling of a mapped
        name (`UserName`, the core URN as a container) answers False, never a wrong True; the
        caller then compares the normalized forms.
        """
        names, lowered, subs = self._spellings()
        if not a.items() <= b.items():  # every value of `a` in `b` (in C): the usual case
            for key, value in a.items():
                if key in names:
                    if value != b.get(key):
                        return False
                elif key in subs:
                    theirs = b.get(key)
                    if value != theirs and not _same_extension(value, theirs, subs[key]):
                        return False
                elif key not in _UNMAPPED and key.lower() in lowered:
                    return False  # another spelling of a mapped name
        return self._only_unmapped(b.keys() - a.keys(), b)

    def _only_unmapped(self, keys: Iterable[str], resource: Mapping[str, Any]) -> bool:
        """True when these keys of `resource` hold no mapped value (what one side alone has)."""
        names, lowered, subs = self._spellings()
        for key in keys:
            if key in names:
                if resource[key] is not None:
                    return False
            elif key in subs:
                if not _same_extension(None, resource[key], subs[key]):
                    return False
            elif key not in _UNMAPPED and key.lower() in lowered:
                return False
        return True

    def normalize(
        self,
        scim_resource: Mapping[str, Any],
        like: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The canonical, comparable form of any SCIM resource, limited to the mapped attributes.

        Equal forms mean "no change": attribute-name case, canonical `type` case, multi-value
        order and duplicates, whitespace, time zones, phone formatting, boolean and integer
        spellings and `primary`/`display`/`$ref` extras never make two forms differ. Read-only
        and write-only attributes, `schemas`, `id` and `meta` are left out.

        `like` = (another resource, its form): an attribute whose value equals the other's,
        as given or as normalized, takes the other's normalized value instead of normalizing
        it again (a modified object differs from its target in an attribute or two, not in
        all; a target that is a remembered form holds normalized values, which normalize to
        themselves).
        """
        core, extensions = self._normalizers()
        top = self._spelled(scim_resource)
        other, other_form = (self._spelled(like[0]), like[1]) if like else ({}, {})
        out: dict[str, Any] = {}
        name = ""
        try:
            for _, name, function in core:
                raw = top.get(name)
                if raw is not None:
                    mine = other_form.get(name)
                    same = raw == other.get(name) or raw == mine
                    value = mine if same else function(raw)
                    if value is not None:
                        out[name] = value
            for urn, normalizers in extensions:
                extension = top.get(urn)
                if not isinstance(extension, Mapping):
                    continue
                extension = self._spelled_extension(urn, extension)
                theirs = other.get(urn)
                theirs = self._spelled_extension(urn, theirs) if isinstance(theirs, Mapping) else {}
                their_form = other_form.get(urn) or {}
                values = {}
                for _, name, function in normalizers:
                    raw = extension.get(name)
                    if raw is not None:
                        mine = their_form.get(name)
                        same = raw == theirs.get(name) or raw == mine
                        value = mine if same else function(raw)
                        if value is not None:
                            values[name] = value
                if values:
                    out[urn] = values
        except TransformationError as exc:
            where = scim_resource.get("id", "resource")
            raise MappingValueError(f"{where}: SCIM attribute {name}: {exc}") from exc
        return out

    def _respellings(self) -> tuple[frozenset[str], dict[str, str]]:
        """(top-level names as `to_scim` spells them, with the extension URNs and the never
        mapped ones; lower-cased mapped name or URN -> that spelling)."""
        found = self._cache.get("respellings")
        if found is None:
            names, _, subs = self._spellings()
            spelled = frozenset({*names, *subs, *_UNMAPPED})
            respell = {n.lower(): n for n in [*names, *subs]}
            respell[self.schema.lower()] = self.schema
            found = self._cache["respellings"] = (spelled, respell)
        return found

    def _spelled(self, scim_resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """Top-level values under the names `to_scim` uses (the resource itself when it spells
        them so, the usual case), core ones given under the core URN merged in."""
        spelled, respell = self._respellings()
        others = scim_resource.keys() - spelled
        if not any(key.lower() in respell for key in others):
            return scim_resource
        top: dict[str, Any] = {}
        for key, value in scim_resource.items():
            top.setdefault(respell.get(key.lower(), key), value)
        qualified = top.pop(self.schema, None)
        if isinstance(qualified, Mapping):
            for key, value in qualified.items():
                top.setdefault(respell.get(key.lower(), key), value)
        return top

    def _spelled_extension(self, urn: str, extension: Mapping[str, Any]) -> Mapping[str, Any]:
        """An extension's values under the names `to_scim` uses (itself, usually)."""
        spelled, lowered = self._spellings()[2][urn]
        others = extension.keys() - spelled
        if not any(key.lower() in lowered for key in others):
            return extension
        respell = {name.lower(): name for name in spelled}
        return {respell.get(key.lower(), key): value for key, value in extension.items()}


@dataclass(eq=False)
class ResourceMappings:
    """All resources of one scim-resources.xml, by resource name ("User", "Group")."""

    resources: dict[str, ResourceMapping]
    searches: dict[str, SearchParams]
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> ResourceMapping:
        found = self.resources.get(name) or next(
            (r for n, r in self.resources.items() if n.lower() == name.lower()), None
        )
        if found is None:
            known = ", ".join(self.resources) or "none"
            raise KeyError(f"{self.path}: no resource named {name!r} (resources: {known})")
        return found

    def __iter__(self) -> Iterator[ResourceMapping]:
        return iter(self.resources.values())

    def ldap_attribute_uses(self) -> list[LdapAttributeUse]:
        """Every LDAP attribute the file names in a mapping (read-only and write-only
        attributes too: a misspelt name is wrong wherever it is), in file order."""
        uses: dict[tuple[str, int], LdapAttributeUse] = {}
        for resource in self:
            id_mapping = resource.search.id_mapping
            if id_mapping is not None:
                line = id_mapping.line or resource.search.line
                use = LdapAttributeUse(
                    id_mapping.ldap_attribute, resource.name, "resourceIDMapping", line
                )
                uses.setdefault((use.ldap_attribute.lower(), line), use)
            for attribute in resource.attributes:
                sent = not compiler.is_write_only(attribute)  # password: never from LDAP
                for mapping, data_type in compiler.typed_mappings(attribute):
                    use = LdapAttributeUse(
                        mapping.ldap_attribute,
                        resource.name,
                        f"attribute {attribute.name!r}",
                        mapping.line,
                        sent and not mapping.transformation.accepts_bytes(data_type),
                    )
                    uses.setdefault((use.ldap_attribute.lower(), use.line), use)
        return sorted(uses.values(), key=lambda use: use.line)

    def by_endpoint(self, endpoint: str) -> ResourceMapping | None:
        wanted = endpoint.strip("/").lower()
        return next(
            (r for r in self.resources.values() if r.endpoint.strip("/").lower() == wanted), None
        )

    def match_entry(self, entry: Entry) -> ResourceMapping | None:
        """The first resource whose search filter names one of the entry's object classes."""
        classes: set[str] = set()
        for key, values in entry.items():
            if key.lower() == "objectclass":
                items = [values] if isinstance(values, str | bytes) else values
                classes = {as_text(v).lower() for v in items}
        for resource in self.resources.values():
            if any(oc.lower() in classes for oc in resource.search.object_classes):
                return resource
        return None


__all__ = ["Entry", "MappingValueError", "ResourceMapping", "ResourceMappings"]
