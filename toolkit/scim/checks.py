"""prepare-endpoint-server for a SCIM target: is it ready for what the mapping writes?

Reads /ServiceProviderConfig, /ResourceTypes and /Schemas and returns a checklist: each
line passes or fails, and a failure says how to fix it. Never raises for a server
problem (that is a failed line); only programming errors escape.
"""

from __future__ import annotations

from collections.abc import Mapping

from toolkit.checks import CheckResult
from toolkit.scim.client import ScimClient
from toolkit.scim.discovery import AttributeInfo, Discovery
from toolkit.scim.errors import AuthenticationError, ScimError


def check_scim_server(
    client: ScimClient,
    mapping_written_attributes: Mapping[str, list[str]],
    *,
    update_method: str | None = None,
) -> list[CheckResult]:
    """Check the server behind `client` against the attributes the mapping writes.

    `mapping_written_attributes`: resource type name (or endpoint) -> attribute paths the
    mapping writes, e.g. {"User": ["userName", "name.givenName", "urn:...:User:department"]}.
    `update_method` ("patch" or "put"), when given, is checked against the server's PATCH
    support.
    """
    base = client.endpoint.base_url
    try:
        found = client.discover(refresh=True)
    except ScimError as exc:
        return [_discovery_failure(base, exc)]
    results = [_spc_result(base, found), *_listing_results(base, found)]
    if update_method and update_method.lower() == "patch" and not found.capabilities.patch:
        results.append(
            CheckResult(
                "PATCH support",
                False,
                "update-method is patch but the server does not advertise PATCH",
                "set update-method: put on the sync destination, or override patch: true "
                "if the server's discovery is wrong",
            )
        )
    for resource_type, paths in mapping_written_attributes.items():
        results.extend(_resource_type_results(client, found, resource_type, paths))
    return results


def _discovery_failure(base: str, exc: ScimError) -> CheckResult:
    if isinstance(exc, AuthenticationError):
        fix = "check http-authorization-method and its credentials for this SCIM server"
    else:
        fix = "check scim-service-url (the SCIM base URL, e.g. https://host/scim/v2) and that the server is up"
    return CheckResult("SCIM discovery", False, f"{base}: {exc}", fix)


def _spc_result(base: str, found: Discovery) -> CheckResult:
    if "/ServiceProviderConfig" in found.missing:
        return CheckResult(
            "/ServiceProviderConfig",
            False,
            f"{base}/ServiceProviderConfig is missing; capabilities are assumed",
            "set overrides (patch, bulk, etag, cursor) for this server so nothing is guessed",
        )
    caps = found.capabilities
    flags = {
        "patch": caps.patch,
        "bulk": caps.bulk,
        "etag": caps.etag,
        "filter": caps.filter,
        "sort": caps.sort,
        "cursor": caps.cursor,
    }
    detail = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items())
    if caps.bulk:
        detail += f" (bulk max {caps.bulk_max_operations} ops, {caps.bulk_max_payload_size} bytes)"
    return CheckResult("/ServiceProviderConfig", True, detail)


def _listing_results(base: str, found: Discovery) -> list[CheckResult]:
    out = []
    for path, fix in (
        ("/ResourceTypes", "set the resource_types override (e.g. User: /Users) for this server"),
        (
            "/Schemas",
            "attributes cannot be verified; confirm the mapping against the vendor's docs",
        ),
    ):
        if path in found.missing:
            out.append(CheckResult(path, False, f"{base}{path} is missing", fix))
        else:
            count = len(found.resource_types) if path == "/ResourceTypes" else len(found.schemas)
            out.append(CheckResult(path, True, f"{count} served"))
    return out


def _resource_type_results(
    client: ScimClient, found: Discovery, resource_type: str, paths: list[str]
) -> list[CheckResult]:
    info = found.resource_type(resource_type)
    if info is None:
        known = ", ".join(sorted(found.resource_types)) or "none"
        return [
            CheckResult(
                f"resource type {resource_type}",
                False,
                f"the server has no resource type {resource_type!r} (it has: {known})",
                "fix the resource name in the mapping, or add a resource_types override",
            )
        ]
    results = [_read_access(client, resource_type, info.endpoint)]
    if "/Schemas" in found.missing:
        return results
    for path in paths:
        results.append(_attribute_result(found, info.name, path))
    return results


def _read_access(client: ScimClient, resource_type: str, endpoint: str) -> CheckResult:
    name = f"resource type {resource_type} at {endpoint}"
    try:
        client.search(resource_type, count=1)
    except AuthenticationError as exc:
        return CheckResult(name, False, str(exc), "give the sync account read and write rights")
    except ScimError as exc:
        return CheckResult(name, False, str(exc), "check the endpoint of this resource type")
    return CheckResult(name, True, "listing works")


def _attribute_result(found: Discovery, resource_type: str, path: str) -> CheckResult:
    name = f"{resource_type} attribute {path}"
    attr = found.attribute(resource_type, path)
    if attr is None:
        return CheckResult(
            name,
            False,
            f"/Schemas has no attribute {path!r} on {resource_type}",
            "remove or rename it in the resource mapping file, or use the server's schema name",
        )
    if attr.writable or _settable_in_parent(found, resource_type, path, attr):
        return CheckResult(name, True, f"{attr.type}, {attr.mutability}")
    return CheckResult(
        name,
        False,
        f"{path!r} on {resource_type} is {attr.mutability}: the server will not accept writes",
        "stop mapping it (or map it for reads only)",
    )


def _settable_in_parent(
    found: Discovery, resource_type: str, path: str, attr: AttributeInfo
) -> bool:
    """An immutable sub-attribute (Group members.value) is written with its writable parent."""
    head, dot, _ = path.rpartition(".")
    if not dot or attr.mutability != "immutable":
        return False
    parent = found.attribute(resource_type, head)
    return parent is not None and parent.writable
