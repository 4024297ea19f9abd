"""Property definitions of the five configuration objects, in PingDataSync's names.

One table per object kind (and type) drives loading, validation, defaults, `dsconfig` and
`config show`: each property has a value kind, whether it is multi-valued, its default (as
written in YAML) and, for references, the section whose objects it names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from toolkit.config.dn import DNError, parse_dn
from toolkit.config.durations import DurationError, parse_duration
from toolkit.config.ldapfilter import FilterError, parse_filter
from toolkit.config.secrets import is_secret_property, parse_secret

EXTERNAL_SERVERS = "external-servers"
SYNC_SOURCES = "sync-sources"
SYNC_DESTINATIONS = "sync-destinations"
SYNC_PIPES = "sync-pipes"
SYNC_CLASSES = "sync-classes"
SECTIONS = (EXTERNAL_SERVERS, SYNC_SOURCES, SYNC_DESTINATIONS, SYNC_PIPES)

LDAP_SERVER_TYPES = (
    "ldap",
    "ping-identity-ds",
    "ping-identity-proxy-server",
    "active-directory",
    "opendj",
    "oracle-unified-directory",
    "389-ds",
    "openldap",
    "sun-ds",
    "nokia-ds",
    "nokia-proxy-server",
)
SCIM2 = "scim2"
SOURCE_TYPES = ("ldap", "ldif")
DESTINATION_TYPES = (SCIM2,)


@dataclass(frozen=True)
class DeleteLimit:
    """`max-deletes`: a count, or a percentage of the objects a pipe manages."""

    amount: float
    percent: bool

    def allowed(self, total: int) -> int:
        """How many deletes are allowed out of `total` managed objects."""
        if not self.percent:
            return int(self.amount)
        return int(total * self.amount / 100)

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else str(int(self.amount))


@dataclass(frozen=True)
class Prop:
    name: str
    kind: str  # see _CONVERTERS
    multi: bool = False
    default: object = None  # as written in YAML; None = no value
    choices: tuple[str, ...] = ()
    ref: str | None = None  # the section whose object names this property holds
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None

    @property
    def attr(self) -> str:
        """The model's field name for this property."""
        return self.name.replace("-", "_")

    @property
    def secret(self) -> bool:
        return self.kind == "secret"


# a userPrincipalName (name@domain), which Active Directory takes as a simple bind's name
_UPN = re.compile(r"[^@=,\s]+@[A-Za-z0-9.-]+")


def _p(name: str, kind: str, **kw: object) -> Prop:
    return Prop(name, kind, **kw)  # type: ignore[arg-type]


_TIMEOUTS_LDAP = (
    _p("connect-timeout", "duration", default="5 s"),
    _p("response-timeout", "duration", default="30 s"),
)
_TLS = (
    _p("trust-ca-file", "path"),
    _p("hostname-verification-method", "enum", choices=("strict", "allow-all"), default="strict"),
)

LDAP_SERVER_PROPS: tuple[Prop, ...] = (
    _p("type", "enum", choices=LDAP_SERVER_TYPES, required=True),
    _p("server-host-name", "host", required=True),
    _p("server-port", "int", minimum=1, maximum=65535),  # default: 636 with ssl, else 389
    _p("connection-security", "enum", choices=("none", "ssl", "starttls"), default="none"),
    _p("authentication-method", "enum", choices=("none", "simple"), default="simple"),
    _p("bind-dn", "bind-name"),  # a DN; on Active Directory also user@domain (UPN)
    _p("password", "secret"),
    *_TLS,
    *_TIMEOUTS_LDAP,
)

SCIM2_SERVER_PROPS: tuple[Prop, ...] = (
    _p("type", "enum", choices=(SCIM2,), required=True),
    _p("scim-service-url", "url", required=True),
    _p(
        "http-authorization-method",
        "enum",
        choices=("none", "basic", "bearer", "oauth2"),
        default="none",
    ),
    _p("user-name", "string"),
    _p("password", "secret"),
    _p("oauth-token", "secret"),
    _p("oauth-server-token-endpoint-url", "url"),
    _p("oauth-client-id", "string"),
    _p("oauth-client-secret", "secret"),
    *_TLS,
    _p("connect-timeout", "duration", default="5 s"),
    _p("response-timeout", "duration", default="10 s"),
    # no default: full reads ask for the server's advertised maximum (up to 1000), searches 100
    _p("page-size", "int", minimum=1),
)

LDAP_SOURCE_PROPS: tuple[Prop, ...] = (
    _p("type", "enum", choices=SOURCE_TYPES, default="ldap"),
    _p("base-dn", "dn", multi=True, required=True),
    _p("server", "ref", multi=True, ref=EXTERNAL_SERVERS, required=True),
    _p(
        "change-detector",
        "enum",
        choices=("auto", "changelog", "accesslog", "dirsync", "usnchanged"),
        default="auto",
    ),
    _p("ignore-changes-by-dn", "dn", multi=True, default=[]),
    _p("page-size", "int", minimum=1, default=1000),
    _p("read-connections", "int", minimum=1, default=1),
    _p("unique-id-attribute", "attribute", default="entryUUID"),
)

LDIF_SOURCE_PROPS: tuple[Prop, ...] = (
    _p("type", "enum", choices=SOURCE_TYPES, default="ldap"),
    _p("ldif-file", "path", required=True),
    _p("base-dn", "dn", multi=True, default=[]),
    _p("unique-id-attribute", "attribute", default="entryUUID"),
)

DESTINATION_PROPS: tuple[Prop, ...] = (
    _p("type", "enum", choices=DESTINATION_TYPES, default=SCIM2),
    _p("server", "ref", multi=True, ref=EXTERNAL_SERVERS, required=True),
    _p("resource-mapping-file", "path"),
    _p("update-method", "enum", choices=("patch", "put"), default="patch"),
)

PIPE_PROPS: tuple[Prop, ...] = (
    _p("sync-source", "ref", ref=SYNC_SOURCES, required=True),
    _p("sync-destination", "ref", ref=SYNC_DESTINATIONS, required=True),
    _p("started", "bool", default=False),
    _p("change-detection-polling-interval", "duration", default="500 ms"),
    _p("num-worker-threads", "int", minimum=1, default=4),
    _p("max-rate-per-second", "int", minimum=0, default=0),
    _p("max-operation-attempts", "int", minimum=1, default=5),
    # realtime retries a failed change in the background after the delay, doubled after
    # each retry that fails (1, 2, 4, 8, 16 min by default), then leaves it to a resync
    _p("max-failed-op-background-retries", "int", minimum=0, default=5),
    _p("failed-op-background-retry-delay", "duration", default="1 min"),
    _p("max-deletes", "count-or-percent", default="10%"),
    _p("delete-guard-window", "duration", default="1 h"),
    # dry-run and resync read only what changed since the last read, and fully at least this often
    _p("full-read-interval", "duration", default="24 h"),
    _p("delete-policy", "enum", choices=("delete", "deactivate"), default="delete"),
    _p("member-chunk-size", "int", minimum=1, default=100),
)

CLASS_PROPS: tuple[Prop, ...] = (
    _p("evaluation-order-index", "int", minimum=0, default=9999),
    _p("include-base-dn", "dn", multi=True, default=[]),
    _p("include-filter", "filter", multi=True, default=[]),
    _p("synchronize-creates", "bool", default=True),
    _p("synchronize-modifies", "bool", default=True),
    _p("synchronize-deletes", "bool", default=True),
    _p("destination-correlation-attributes", "correlation", multi=True, default=[]),
    _p("resource", "string"),
)

# PingDataSync properties that only make sense inside PingDataSync: dsconfig ignores them
# with a warning, and a config file naming one gets this hint instead of "unknown property".
_PROVIDERS = "scimsync verifies TLS with the system trust store or trust-ca-file"
PING_ONLY: dict[str, dict[str, str]] = {
    "external-server": {
        "key-manager-provider": "client certificates are not supported",
        "trust-manager-provider": _PROVIDERS,
        "ssl-cert-nickname": "client certificates are not supported",
        "passphrase-provider": "set password to ${env:NAME} or ${file:PATH}",
        "oauth-client-secret-passphrase-provider": "set oauth-client-secret to ${env:NAME} or ${file:PATH}",
        "location": "failover follows the order of the server list",
        "health-check-connect-timeout": "not used",
        "initial-connections": "connection pooling is internal",
        "max-connections": "connection pooling is internal",
        "max-connection-age": "connection pooling is internal",
        "defunct-connection-result-code": "not used",
        "abandon-on-timeout": "not used",
        "max-response-size": "not used",
        "use-administrative-operation-control": "not used",
        "verify-credentials-method": "not used",
        "http-proxy-external-server": "use the HTTPS_PROXY environment variable",
        "client-reconnect-interval": "not used",
        "oauth-token-type": "not used",
        "credentials-submission-method": "not used",
        "maximum-token-lifetime": "tokens are refreshed on expiry and on 401",
        "description": "not stored",
    },
    "sync-source": {
        "use-changelog-batch-request": "the change detector reads cn=changelog with plain searches",
        "proxy-server": "not used",
        "response-timeout": "set response-timeout on the external server",
        "max-failover-error-code-frequency": "not used",
        "plugin": "Server SDK plugins are not supported",
        "sync-backlog-alert-threshold": "not used",
        "max-backtrack-replication-latency": "not used",
        "changelog-search-type": "not used",
        "failover-changelog-replay-duration": "not used",
        "realtime-sync-polling-offset": "not used",
        "description": "not stored",
    },
    "sync-destination": {
        "rename-policy": "SCIM 2.0 resources keep their id across renames",
        "endpoint-mapping": "the mapping comes from resource-mapping-file",
        "query-method": "not used",
        "plugin": "Server SDK plugins are not supported",
        "response-timeout": "set response-timeout on the external server",
        "description": "not stored",
    },
    "sync-pipe": {
        "synchronization-mode": "SCIM pipes run in standard mode only",
        "changes-queue-size": "not used",
        "retry-backoff-initial-wait": "not used",
        "retry-backoff-max-wait": "not used",
        "retry-backoff-increase-by": "not used",
        "retry-backoff-percentage-increase": "not used",
        "include-changes-for-unchanged-attributes": "not used",
        "plugin": "Server SDK plugins are not supported",
        "shared-mutex-name": "not used",
        "filter-changes-by-user": "notification mode only",
        "description": "not stored",
    },
    "sync-class": {
        "auto-mapped-source-attribute": "the mapping comes from the destination's resource-mapping-file",
        "excluded-auto-mapped-source-attributes": "the mapping comes from the resource-mapping-file",
        "excluded-auto-mapped-source-attribute-regex": "the mapping comes from the resource-mapping-file",
        "attribute-map": "keep all mapping in the resource-mapping-file",
        "dn-map": "keep all mapping in the resource-mapping-file",
        "creates-as-modifies": "not supported",
        "modifies-as-creates": "not supported",
        "replace-all-attr-values": "LDAP destinations only",
        "destination-create-only-attribute": "not supported",
        "allow-destination-renames": "not supported",
        "destination-correlation-attributes-on-delete": "not supported",
        "description": "not stored",
    },
}

# --- value conversion ---------------------------------------------------------------------

_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]+$")
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*$")
_SCIM_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_.:$-]*$")


def _string(value: object) -> str:
    if isinstance(value, bool) or isinstance(value, list | dict):
        raise ValueError(f"expected a string, got {_describe(value)}")
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    return repr(value)


def convert(prop: Prop, value: object, base_dir: Path, path: str) -> object:
    """The typed value of one (single) value; ValueError with a message naming what is wrong."""
    kind = prop.kind
    if kind == "secret":
        return parse_secret(value, base_dir, path)
    if kind == "int":
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_describe(value)}")
        if prop.minimum is not None and value < prop.minimum:
            raise ValueError(f"must be at least {prop.minimum}, got {value}")
        if prop.maximum is not None and value > prop.maximum:
            raise ValueError(f"must be at most {prop.maximum}, got {value}")
        return value
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_describe(value)}")
        return value
    if kind == "duration":
        try:
            return parse_duration(value)  # type: ignore[arg-type]
        except DurationError as exc:
            raise ValueError(str(exc)) from None
    if kind == "count-or-percent":
        return _count_or_percent(value)
    text = _string(value)
    if kind == "enum":
        if text not in prop.choices:
            hint = _closest(text, prop.choices)
            choices = " | ".join(prop.choices)
            raise ValueError(f"invalid value {text!r}: expected {choices}{hint}")
        return text
    if kind == "bind-name" and _UPN.fullmatch(text):
        return text  # Active Directory binds by userPrincipalName too
    if kind in ("dn", "bind-name"):
        try:
            parse_dn(text)
        except DNError as exc:
            raise ValueError(f"invalid DN: {exc}") from None
        return text
    if kind == "filter":
        try:
            parse_filter(text)
        except FilterError as exc:
            raise ValueError(str(exc)) from None
        return text
    if kind == "url":
        return _url(text)
    if kind == "host":
        if not _HOST.match(text):
            raise ValueError(f"invalid host name {text!r}")
        return text
    if kind == "path":
        if not text.strip():
            raise ValueError("empty path")
        return Path(text)
    if kind == "attribute":
        if not _ATTRIBUTE.match(text):
            raise ValueError(f"invalid attribute name {text!r}")
        return text
    if kind == "correlation":
        names = tuple(part.strip() for part in text.split(","))
        bad = [n for n in names if not _SCIM_PATH.match(n)]
        if bad or not names:
            raise ValueError(
                f"invalid correlation attribute list {text!r}: expected names separated by ','"
            )
        return names
    if kind in ("string", "ref"):
        if not text.strip():
            raise ValueError("empty value")
        return text
    raise AssertionError(f"unknown property kind {kind}")


def _count_or_percent(value: object) -> DeleteLimit:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return DeleteLimit(float(value), percent=False)
    if isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if match and float(match.group(1)) <= 100:
            return DeleteLimit(float(match.group(1)), percent=True)
        if text.isdigit():
            return DeleteLimit(float(text), percent=False)
    raise ValueError(
        f"expected a count (e.g. 500) or a percentage (e.g. 10%), got {_describe(value)}"
    )


def parse_delete_limit(value: str | int, name: str = "max-deletes") -> DeleteLimit:
    """A `max-deletes` value ("500" or "10%") given outside the config, e.g. on a command line;
    `name` is what errors call it ("--max-deletes" for the option)."""
    from toolkit.config.problems import ConfigError

    try:
        return _count_or_percent(yaml_value(_p("max-deletes", "count-or-percent"), str(value)))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def check_positive(value: float | int | None, name: str, integer: bool = False) -> None:
    """A number given outside the config (a command-line option such as --rate-per-second)
    must be finite and greater than 0 (a whole number with `integer`): 0 or -5 would
    otherwise read as "unlimited" or "nothing". ConfigError names the option."""
    import math

    from toolkit.config.problems import ConfigError

    if value is None:
        return
    whole = isinstance(value, int) and not isinstance(value, bool)
    if integer and not whole:
        raise ConfigError(f"{name} {value}: expected a whole number")
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        what = "a whole number of at least 1" if integer else "a number greater than 0"
        raise ConfigError(f"{name} {value:g}: expected {what}")


def check_filter(text: str | None, name: str) -> None:
    """An LDAP filter given outside the config (--source-search-filter), checked before any
    server is asked; ConfigError names the option and what is wrong."""
    from toolkit.config.problems import ConfigError

    if text is None:
        return
    try:
        parse_filter(text)
    except FilterError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {text!r}: expected http(s)://host[:port]/path")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"invalid port in URL {text!r}") from None
    return text


def _closest(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def closest(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    """' (did you mean X?)' for the closest candidate, or ''."""
    return _closest(word, candidates)


def yaml_value(prop: Prop, text: str) -> object:
    """How a dsconfig string value is stored in YAML: integers and booleans typed, others as text."""
    stripped = text.strip()
    if prop.kind == "int" and re.fullmatch(r"-?\d+", stripped):
        return int(stripped)
    if prop.kind == "bool" and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if prop.kind == "count-or-percent" and stripped.isdigit():
        return int(stripped)
    return text


# --- which table applies ------------------------------------------------------------------

OBJECT_KINDS = ("external-server", "sync-source", "sync-destination", "sync-pipe", "sync-class")


def props_for(kind: str, type_: str | None) -> tuple[Prop, ...]:
    """The property table of an object kind and type (the type decides for servers and sources)."""
    if kind == "external-server":
        return SCIM2_SERVER_PROPS if type_ == SCIM2 else LDAP_SERVER_PROPS
    if kind == "sync-source":
        return LDIF_SOURCE_PROPS if type_ == "ldif" else LDAP_SOURCE_PROPS
    if kind == "sync-destination":
        return DESTINATION_PROPS
    if kind == "sync-pipe":
        return PIPE_PROPS
    if kind == "sync-class":
        return CLASS_PROPS
    raise KeyError(kind)


def all_property_names(kind: str) -> list[str]:
    """Every property name any type of `kind` has (for suggestions)."""
    tables = {
        "external-server": (LDAP_SERVER_PROPS, SCIM2_SERVER_PROPS),
        "sync-source": (LDAP_SOURCE_PROPS, LDIF_SOURCE_PROPS),
        "sync-destination": (DESTINATION_PROPS,),
        "sync-pipe": (PIPE_PROPS,),
        "sync-class": (CLASS_PROPS,),
    }[kind]
    names: list[str] = []
    for table in tables:
        names += [p.name for p in table if p.name not in names]
    return names


def find_prop(kind: str, type_: str | None, name: str) -> Prop | None:
    return next((p for p in props_for(kind, type_) if p.name == name), None)


def is_secret(prop: Prop) -> bool:
    return prop.secret or is_secret_property(prop.name)


__all__ = [
    "DeleteLimit",
    "Prop",
    "convert",
    "find_prop",
    "is_secret",
    "parse_delete_limit",
    "props_for",
]
