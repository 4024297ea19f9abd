"""A pipe's mapping checked against its source directory, before anything is read or sent.

An LDAP attribute the mapping names but the directory's schema does not define reads as "no
value" on every entry, so a plan would remove the SCIM attribute from every object: every run
(dry-run, resync, realtime), `config validate` and `prepare-endpoint-server` refuse it, naming
the mapping file, its line, the resource and the attribute. `config validate` also loads each
mapping as a run does, so that it refuses what a run would (an unknown transformation class).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.checks import CheckResult
from toolkit.config import Config, LdapServer, Problem, SyncPipe, load_config, validate_file
from toolkit.config.document import line_of
from toolkit.errors import FatalError, ScimsyncError
from toolkit.ldap.fromconfig import open_source, server_spec, source_spec
from toolkit.ldap.ldifsource import LdifSource
from toolkit.ldap.schema import (
    BINARY_SYNTAXES,
    DirectorySchema,
    SchemaUnavailable,
    base_type,
    read_schema,
)
from toolkit.ldap.source import LdapSource
from toolkit.mapping import DEFAULT_MAPPING_PATH, load_mapping
from toolkit.mapping.loader import mapping_problems
from toolkit.mapping.resource import ResourceMappings
from toolkit.mapping.transformations import BASE64_TRANSFORMATION
from toolkit.plan.scope import class_resource, reads_entries

log = logging.getLogger(__name__)

#: Names the toolkit reads whether or not a server's published schema lists them (the DN, the
#: unique ids and time stamps some servers leave out of what they publish).
ALWAYS_DEFINED = frozenset(
    {
        "dn",
        "entrydn",
        "entryuuid",
        "nsuniqueid",
        "objectclass",
        "createtimestamp",
        "modifytimestamp",
    }
)


class MappingSchemaError(FatalError):
    """The mapping names LDAP attributes the directory does not have; one line per attribute."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = (
            "the mapping names LDAP attributes the directory's schema does not define "
            "(their values would read as absent and the SCIM attributes be removed):"
        )
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


def unknown_attributes(mappings: ResourceMappings, schema: DirectorySchema) -> list[str]:
    """ "FILE:LINE: resource, attribute: ..." for each LDAP attribute `schema` does not define.

    Attribute options (`member;range=0-1499`, `userCertificate;binary`) are not part of the
    name; any NAME of a type and its OID count, in any case.
    """
    file = mappings.path or DEFAULT_MAPPING_PATH
    problems = []
    known: list[str] | None = None
    for use in mappings.ldap_attribute_uses():
        name = base_type(use.ldap_attribute)
        if name.lower() in ALWAYS_DEFINED or schema.defines(name):
            continue
        if known is None:
            known = [n for t in schema.types for n in t.names]
        problems.append(
            f"{file}:{use.line}: resource {use.resource!r}, {use.what}: LDAP attribute "
            f"{use.ldap_attribute!r} is not defined in the directory's schema "
            f"({schema.where}){_closest(name, known)}"
        )
    return problems


def binary_as_text(mappings: ResourceMappings, schema: DirectorySchema) -> list[str]:
    """Warnings for attributes of a binary syntax (a photo, a certificate) that the mapping
    sends as text: each entry holding a value that is not UTF-8 will be refused."""
    file = mappings.path or DEFAULT_MAPPING_PATH
    warnings = []
    for use in mappings.ldap_attribute_uses():
        syntax = schema.syntax_of(use.ldap_attribute)
        if use.as_text and syntax in BINARY_SYNTAXES:
            warnings.append(
                f"{file}:{use.line}: resource {use.resource!r}, {use.what}: LDAP attribute "
                f"{use.ldap_attribute!r} has the {BINARY_SYNTAXES[syntax]} syntax, mapped as text: "
                "entries holding a value that is not UTF-8 will not be sent; declare "
                f'transform="{BASE64_TRANSFORMATION}" to send its values as base64'
            )
    return warnings


def _closest(name: str, known: list[str]) -> str:
    by_lower = {n.lower(): n for n in known}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean {by_lower[match[0]]}?)" if match else ""


def require_in_schema(mappings: ResourceMappings, source: LdapSource | LdifSource) -> None:
    """Raise MappingSchemaError when the source's schema lacks an attribute of `mappings`.

    A schema this user cannot read is logged as a warning and the run goes on (the reads
    themselves may still be allowed); an LDIF snapshot has no schema to check against.
    """
    if not isinstance(source, LdapSource):
        return
    try:
        schema = read_schema(source.spec.servers)
    except SchemaUnavailable as exc:
        log.warning("the mapping was not checked against the directory's schema: %s", exc)
        return
    problems = unknown_attributes(mappings, schema)
    if problems:
        raise MappingSchemaError(problems)


def open_checked_source(
    config: Config, pipe: SyncPipe, mappings: ResourceMappings
) -> LdapSource | LdifSource:
    """The pipe's sync source, once its schema has every attribute `mappings` names."""
    source = open_source(config, config.source_of(pipe))
    try:
        require_in_schema(mappings, source)
    except BaseException:
        source.close()
        raise
    return source


# --- config validate ---------------------------------------------------------------------------


@dataclass
class Validation:
    """What `config validate` found: problems (refused), and what it could not check."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # pipes not checked against a schema


def validate_config(path: Path | str, *, offline: bool = False) -> Validation:
    """The config's problems, its mappings loaded as a run loads them, and (unless `offline`)
    each mapping checked against the schema of its pipe's LDAP source."""
    path = Path(path).absolute()
    result = Validation()
    problems = validate_file(path, mapping_problems)
    if problems:
        result.problems = [p.located(path) for p in problems]
        return result
    config = load_config(path)
    schemas: dict[str, DirectorySchema | str] = {}  # source name -> schema, or why none
    for pipe in config.sync_pipes.values():
        mappings = load_mapping(config.mapping_file_of(config.destination_of(pipe)))
        result.warnings += [w for w in mappings.warnings if w not in result.warnings]
        result.problems += _class_resources(config, pipe, mappings)
        source = config.source_of(pipe)
        if source.type != "ldap":
            continue
        if offline:
            result.unchecked.append(
                f"pipe {pipe.name}: the mapping was not checked against the schema of sync "
                f"source {source.name} (--offline)"
            )
            continue
        if source.name not in schemas:
            try:
                schemas[source.name] = read_schema(source_spec(config, source).servers)
            except ScimsyncError as exc:
                schemas[source.name] = str(exc)
        schema = schemas[source.name]
        if isinstance(schema, str):
            result.unchecked.append(
                f"pipe {pipe.name}: the mapping was not checked against the schema of sync "
                f"source {source.name}: {schema}"
            )
            continue
        result.problems += [
            p for p in unknown_attributes(mappings, schema) if p not in result.problems
        ]
        result.warnings += [w for w in binary_as_text(mappings, schema) if w not in result.warnings]
    return result


def _class_resources(config: Config, pipe: SyncPipe, mappings: ResourceMappings) -> list[str]:
    """Each sync class's resource, found in the mapping as a run finds it (or the problem)."""
    problems = []
    raw = ((config.document or {}).get("sync-pipes") or {}).get(pipe.name) or {}
    raw_classes = raw.get("sync-classes") or {}
    for sync_class in pipe.classes_in_order():
        if not reads_entries(sync_class):
            continue  # Ping's DEFAULT class: no run maps its entries
        try:
            class_resource(sync_class, mappings)
        except FatalError as exc:
            body = raw_classes.get(sync_class.name)
            key = "resource" if sync_class.resource else "include-filter"
            problem = Problem(
                f"sync-pipes.{pipe.name}.sync-classes.{sync_class.name}.{key}",
                str(exc).split(": ", 1)[-1],
                line_of(body, key) if isinstance(body, dict) else None,
            )
            problems.append(problem.located(config.path))
    return problems


# --- prepare-endpoint-server -------------------------------------------------------------------


def schema_check(config: Config, server_name: str) -> CheckResult | None:
    """prepare-endpoint-server's check that the LDAP server's schema has every attribute the
    mappings of the pipes reading from it name (None when no pipe reads from it)."""
    server = config.external_servers.get(server_name)
    if not isinstance(server, LdapServer):
        return None
    files: dict[Path | None, ResourceMappings] = {}
    for pipe in config.sync_pipes.values():
        source = config.sync_sources.get(pipe.sync_source or "")
        if source is None or source.type != "ldap" or server_name not in source.server:
            continue
        file = config.mapping_file_of(config.destination_of(pipe))
        if file not in files:
            files[file] = load_mapping(file)
    if not files:
        return None
    name = "mapped attributes in the schema"
    try:
        schema = read_schema([server_spec(server)])
    except ScimsyncError as exc:
        return CheckResult(
            name,
            False,
            f"cannot read the schema: {exc}",
            "let the sync user read the root DSE and the subschema subentry it names "
            "(cn=Subschema on OpenLDAP, cn=schema on 389-DS)",
        )
    problems = [p for mappings in files.values() for p in unknown_attributes(mappings, schema)]
    if problems:
        return CheckResult(
            name,
            False,
            "; ".join(problems),
            "correct the ldapAttribute in the mapping file, or add the attribute to the schema",
        )
    count = len({u.ldap_attribute.lower() for m in files.values() for u in m.ldap_attribute_uses()})
    return CheckResult(name, True, f"all {count} LDAP attributes the mapping names are defined")
