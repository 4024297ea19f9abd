"""Configuration: the five PingDataSync objects as typed models, YAML load/save, validation,
`dsconfig` verbs and batch files, and `create-sync-pipe-config`.

    config = load_config("sync.yaml")
    pipe = config.pipe()
    source, destination = config.source_of(pipe), config.destination_of(pipe)
    for server in config.servers_of(source): ...
    password = server.password.resolve()      # only when connecting
"""

from __future__ import annotations

from toolkit.config.document import load_document, new_document, save_document
from toolkit.config.durations import format_duration, parse_duration
from toolkit.config.model import (
    Config,
    ExternalServer,
    LdapServer,
    Scim2Server,
    SyncClass,
    SyncDestination,
    SyncPipe,
    SyncSource,
)
from toolkit.config.problems import ConfigError, Problem
from toolkit.config.properties import DeleteLimit
from toolkit.config.secrets import SecretRef, is_secret_property, resolve_secret
from toolkit.config.validate import check_document, load_config, validate_file

__all__ = [
    "Config",
    "ConfigError",
    "DeleteLimit",
    "ExternalServer",
    "LdapServer",
    "Problem",
    "Scim2Server",
    "SecretRef",
    "SyncClass",
    "SyncDestination",
    "SyncPipe",
    "SyncSource",
    "check_document",
    "format_duration",
    "is_secret_property",
    "load_config",
    "load_document",
    "new_document",
    "parse_duration",
    "resolve_secret",
    "save_document",
    "validate_file",
]
