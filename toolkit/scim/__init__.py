"""SCIM 2.0 client on httpx: discovery, CRUD, PATCH from differences, filters, paging,
ETags, Bulk, auth (none, basic, bearer, OAuth2 client credentials), retries, rate limit.

Layering: imports only toolkit.errors; the config layer builds a ScimEndpoint.
"""

from __future__ import annotations

from toolkit.scim.bulk import BulkOperation, BulkResult
from toolkit.scim.checks import CheckResult, check_scim_server
from toolkit.scim.client import ScimClient
from toolkit.scim.discovery import AttributeInfo, Capabilities, Discovery, ResourceTypeInfo
from toolkit.scim.endpoint import (
    Auth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
    ScimEndpoint,
)
from toolkit.scim.errors import (
    AuthenticationError,
    ConfigurationError,
    Conflict,
    InvalidFilter,
    InvalidResponse,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    RequestInfo,
    ResponseInfo,
    ResponseTimeout,
    ScimError,
    ServerBusy,
    ServerError,
    TransportError,
    Unavailable,
    Unsupported,
)
from toolkit.scim.filters import (
    Filter,
    and_,
    co,
    eq,
    ew,
    ge,
    gt,
    le,
    lt,
    ne,
    not_,
    or_,
    pr,
    sw,
    value_path,
)
from toolkit.scim.patch import member_patches, patch_document
from toolkit.scim.protocol import ApiCall, Page

__all__ = [
    "ApiCall",
    "AttributeInfo",
    "Auth",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "BulkOperation",
    "BulkResult",
    "Capabilities",
    "CheckResult",
    "ConfigurationError",
    "Conflict",
    "Discovery",
    "Filter",
    "InvalidFilter",
    "InvalidResponse",
    "InvalidValue",
    "NoAuth",
    "NotFound",
    "OAuth2ClientCredentials",
    "Page",
    "PreconditionFailed",
    "RequestInfo",
    "ResourceTypeInfo",
    "ResponseInfo",
    "ResponseTimeout",
    "ScimClient",
    "ScimEndpoint",
    "ScimError",
    "ServerBusy",
    "ServerError",
    "TransportError",
    "Unavailable",
    "Unsupported",
    "and_",
    "check_scim_server",
    "co",
    "eq",
    "ew",
    "ge",
    "gt",
    "le",
    "lt",
    "member_patches",
    "ne",
    "not_",
    "or_",
    "patch_document",
    "pr",
    "sw",
    "value_path",
]
