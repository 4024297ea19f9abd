"""What a SCIM server says it supports: /ServiceProviderConfig, /ResourceTypes, /Schemas.

Pure data built from the three raw discovery documents (fetched by the client) plus
manual overrides, for targets whose discovery is missing or wrong (GitLab and vCenter have
no SPC, AWS announces PATCH features it lacks...). It answers the questions the sync
engine asks: may I PATCH, use Bulk, send If-Match, page by cursor; where do Users live;
does attribute X exist on resource type Y and may I write it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Used when a server has no /ResourceTypes: the RFC 7643 defaults.
DEFAULT_RESOURCE_TYPES = {
    "User": ("/Users", "urn:ietf:params:scim:schemas:core:2.0:User"),
    "Group": ("/Groups", "urn:ietf:params:scim:schemas:core:2.0:Group"),
}
WRITABLE = frozenset({"readWrite", "writeOnly"})
# RFC 7643 §3.1 common attributes: on every resource, yet not listed in /Schemas.
COMMON_ATTRIBUTES: tuple[dict[str, Any], ...] = (
    {"name": "id", "mutability": "readOnly", "caseExact": True, "uniqueness": "server"},
    {"name": "externalId", "mutability": "readWrite", "caseExact": True},
    {
        "name": "meta",
        "type": "complex",
        "mutability": "readOnly",
        "subAttributes": [
            {"name": n, "mutability": "readOnly"}
            for n in ("resourceType", "created", "lastModified", "location", "version")
        ],
    },
)
# a value filter, whose quoted values may hold "]" and escaped quotes: members[value eq "a]b"]
VALUE_FILTER = re.compile(r'\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\]')


@dataclass(frozen=True)
class Capabilities:
    """The features of the ServiceProviderConfig the client acts on (defaults: no SPC)."""

    patch: bool = True
    bulk: bool = False
    bulk_max_operations: int = 1000
    bulk_max_payload_size: int = 1_048_576
    filter: bool = True
    filter_max_results: int | None = None
    sort: bool = False
    etag: bool = False
    change_password: bool = False
    cursor: bool = False
    index: bool = True
    default_page_size: int | None = None
    max_page_size: int | None = None

    @classmethod
    def from_spc(cls, spc: Mapping[str, Any] | None) -> Capabilities:
        if not spc:
            return cls()

        def feature(name: str) -> Mapping[str, Any]:
            value = _get(spc, name)
            return value if isinstance(value, Mapping) else {}

        def supported(name: str, default: bool) -> bool:
            flag = _get(feature(name), "supported")
            return default if flag is None else bool(flag)

        bulk, filt, pagination = feature("bulk"), feature("filter"), feature("pagination")
        return cls(
            patch=supported("patch", True),
            bulk=supported("bulk", False),
            bulk_max_operations=int(_get(bulk, "maxOperations") or 1000),
            bulk_max_payload_size=int(_get(bulk, "maxPayloadSize") or 1_048_576),
            filter=supported("filter", True),
            filter_max_results=_get(filt, "maxResults"),
            sort=supported("sort", False),
            etag=supported("etag", False),
            change_password=supported("changePassword", False),
            cursor=bool(_get(pagination, "cursor")),
            index=_get(pagination, "index") is not False,
            default_page_size=_get(pagination, "defaultPageSize"),
            max_page_size=_get(pagination, "maxPageSize"),
        )


@dataclass(frozen=True)
class ResourceTypeInfo:
    name: str
    endpoint: str
    schema: str
    extensions: tuple[str, ...] = ()
    required_extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributeInfo:
    """One attribute (or sub-attribute) of a schema, as /Schemas describes it."""

    name: str
    schema: str
    type: str = "string"
    multi_valued: bool = False
    mutability: str = "readWrite"
    required: bool = False
    returned: str = "default"
    uniqueness: str = "none"
    case_exact: bool = False
    sub_attributes: tuple[AttributeInfo, ...] = ()

    @property
    def writable(self) -> bool:
        """readWrite or writeOnly: the client may set it on create and on update."""
        return self.mutability in WRITABLE

    def sub_attribute(self, name: str) -> AttributeInfo | None:
        lname = name.lower()
        return next((a for a in self.sub_attributes if a.name.lower() == lname), None)

    @classmethod
    def from_schema(cls, raw: Mapping[str, Any], schema: str) -> AttributeInfo:
        return cls(
            name=str(raw.get("name", "")),
            schema=schema,
            type=str(raw.get("type", "string")),
            multi_valued=bool(raw.get("multiValued", False)),
            mutability=str(raw.get("mutability", "readWrite")),
            required=bool(raw.get("required", False)),
            returned=str(raw.get("returned", "default")),
            uniqueness=str(raw.get("uniqueness", "none")),
            case_exact=bool(raw.get("caseExact", False)),
            sub_attributes=tuple(
                cls.from_schema(sub, schema) for sub in raw.get("subAttributes") or ()
            ),
        )


@dataclass(frozen=True)
class Discovery:
    """The discovered (and overridden) view of one SCIM server."""

    capabilities: Capabilities = field(default_factory=Capabilities)
    resource_types: Mapping[str, ResourceTypeInfo] = field(default_factory=dict)
    schemas: Mapping[str, tuple[AttributeInfo, ...]] = field(default_factory=dict)
    # Discovery endpoints the server did not serve, e.g. ("/ServiceProviderConfig",).
    missing: tuple[str, ...] = ()
    spc: Mapping[str, Any] | None = None

    @classmethod
    def build(
        cls,
        spc: Mapping[str, Any] | None,
        resource_types: list[Mapping[str, Any]] | None,
        schemas: list[Mapping[str, Any]] | None,
        overrides: Mapping[str, Any] | None = None,
        missing: tuple[str, ...] = (),
    ) -> Discovery:
        caps = Capabilities.from_spc(spc)
        types = _resource_types(resource_types)
        parsed = {
            str(s["id"]): tuple(
                AttributeInfo.from_schema(a, str(s["id"])) for a in s.get("attributes") or ()
            )
            for s in schemas or ()
            if isinstance(s, Mapping) and s.get("id")
        }
        found = cls(caps, types, parsed, missing, spc)
        return found.with_overrides(overrides or {})

    def with_overrides(self, overrides: Mapping[str, Any]) -> Discovery:
        """Apply manual overrides; unknown keys raise ValueError naming them."""
        norm = {k.replace("-", "_"): v for k, v in overrides.items()}
        types = dict(self.resource_types)
        for name, endpoint in (norm.pop("resource_types", None) or {}).items():
            old = types.get(name)
            schema = old.schema if old else DEFAULT_RESOURCE_TYPES.get(name, ("", ""))[1]
            types[name] = ResourceTypeInfo(
                name, "/" + str(endpoint).strip("/"), schema, old.extensions if old else ()
            )
        known = {f.name for f in fields(Capabilities)}
        unknown = sorted(set(norm) - known)
        if unknown:
            raise ValueError(f"unknown SCIM discovery override(s): {', '.join(unknown)}")
        return replace(self, capabilities=replace(self.capabilities, **norm), resource_types=types)

    # --- questions -----------------------------------------------------------------------

    def resource_type(self, name_or_endpoint: str) -> ResourceTypeInfo | None:
        """By name ("User") or endpoint ("Users", "/Users"), case-insensitively."""
        key = name_or_endpoint.strip("/").lower()
        for info in self.resource_types.values():
            if info.name.lower() == key or info.endpoint.strip("/").lower() == key:
                return info
        return None

    def attribute(self, resource_type: str, path: str) -> AttributeInfo | None:
        """The attribute a path names on a resource type, or None if /Schemas has no such thing.

        Paths: "userName", "name.givenName", "emails", "emails[type eq \\"work\\"].value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", or an
        extension URN alone (the whole extension, as a complex attribute).
        """
        info = self.resource_type(resource_type)
        if info is None:
            return None
        path = VALUE_FILTER.sub("", path)
        for urn in sorted((info.schema, *info.extensions), key=len, reverse=True):
            if path.lower() == urn.lower() and urn in self.schemas:
                return AttributeInfo(urn, urn, "complex", sub_attributes=self.schemas[urn])
            if path.lower().startswith(urn.lower() + ":"):
                return self._lookup(urn, path[len(urn) + 1 :], urn == info.schema)
        return self._lookup(info.schema, path, True)

    def is_writable(self, resource_type: str, path: str) -> bool:
        found = self.attribute(resource_type, path)
        return found is not None and found.writable

    def _lookup(self, schema: str, path: str, core: bool) -> AttributeInfo | None:
        top, _, sub = path.partition(".")
        ltop = top.lower()
        attr = next((a for a in self.schemas.get(schema, ()) if a.name.lower() == ltop), None)
        if attr is None and core:
            raw = next((c for c in COMMON_ATTRIBUTES if c["name"].lower() == ltop), None)
            attr = AttributeInfo.from_schema(raw, schema) if raw else None
        if attr is None or not sub:
            return attr
        return attr.sub_attribute(sub)


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    """A key, case-insensitively (SCIM attribute names are case-insensitive)."""
    if name in mapping:
        return mapping[name]
    lname = name.lower()
    return next((v for k, v in mapping.items() if k.lower() == lname), None)


def _resource_types(raw: list[Mapping[str, Any]] | None) -> dict[str, ResourceTypeInfo]:
    if not raw:
        return {
            name: ResourceTypeInfo(name, endpoint, schema)
            for name, (endpoint, schema) in DEFAULT_RESOURCE_TYPES.items()
        }
    types = {}
    for item in raw:
        name = str(item.get("name") or item.get("id") or "")
        if not name:
            continue
        exts = item.get("schemaExtensions") or []
        types[name] = ResourceTypeInfo(
            name=name,
            endpoint="/" + str(item.get("endpoint", name)).strip("/"),
            schema=str(item.get("schema", "")),
            extensions=tuple(str(e.get("schema")) for e in exts if e.get("schema")),
            required_extensions=tuple(str(e.get("schema")) for e in exts if e.get("required")),
        )
    return types
