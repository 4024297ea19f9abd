"""`scimsync create-sync-pipe-config`: a one-way LDAP-to-SCIM sync pipe in one go.

Follows PingDataSync's wizard (source endpoint type, base DNs, security, servers, sync user,
then the destination, the pipe name and the classes) either through prompts or from flags.
It writes the config with Ping's three classes (`users`, `groups` and a `DEFAULT` exclusion
class), a copy of the default scim-resources.xml when no mapping file is given, and
references for every secret (`${file:...}` or `${env:...}`), never the secret itself.

Connections are tested before anything is written, by the `check_connections` function the
caller passes in (None: offline).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from toolkit.config.document import flow_list, new_document, save_document
from toolkit.config.model import Config
from toolkit.config.private import open_private, private_dir
from toolkit.config.problems import ConfigError
from toolkit.config.properties import LDAP_SERVER_TYPES
from toolkit.config.validate import check_document
from toolkit.errors import ScimsyncError

MAPPING_FILE_NAME = "scim-resources.xml"
AD_SOURCE_TYPE = "active-directory"  # its own mapping, classes and change detector (dirsync)
PING_SYNC_USER = "cn=Sync User,cn=Root DNs,cn=config"

CheckConnections = Callable[[Config], list[str]]


class ConnectionCheckError(ScimsyncError):
    """A connection test failed; nothing was written."""

    def __init__(self, failures: list[str]):
        self.failures = failures
        lines = "\n".join(f"  {f}" for f in failures)
        super().__init__(
            f"connection test failed (nothing written; --offline skips the test):\n{lines}"
        )


@dataclass
class PipeConfigAnswers:
    """Everything create-sync-pipe-config needs. Secrets are ${env:}/${file:} references."""

    source_base_dns: list[str]
    scim_url: str
    pipe_name: str = "ldap-to-scim"
    source_type: str = "ldap"  # an LDAP external server type
    source_servers: list[tuple[str, int | None]] = field(
        default_factory=lambda: [("localhost", None)]
    )
    source_security: str = "none"  # none | ssl | starttls
    source_bind_dn: str | None = None
    source_bind_password: str | None = None
    change_detector: str = "auto"
    scim_auth: str = "none"  # none | basic | bearer | oauth2
    scim_token: str | None = None
    scim_user: str | None = None
    scim_password: str | None = None
    scim_token_url: str | None = None
    scim_client_id: str | None = None
    scim_client_secret: str | None = None
    resource_mapping_file: Path | None = None  # None: a copy of the default mapping
    trust_ca_file: Path | None = None
    # secrets typed at a prompt: written (mode 0600) under .scimsync/secrets/ beside the config
    typed_secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class PipeConfigResult:
    path: Path
    mapping_file: Path
    mapping_written: bool
    warnings: list[str] = field(default_factory=list)


def file_reference(secret_file: Path | str, config_dir: Path) -> str:
    """`${file:...}` for a secret file, relative to the config folder when it lies inside it."""
    absolute = Path(secret_file).expanduser().absolute()
    try:
        target = absolute.relative_to(config_dir.absolute())
    except ValueError:
        target = absolute
    return f"${{file:{target}}}"


def secret_file_reference(secret_file: Path | None, config_path: Path, flag: str) -> str | None:
    """`${file:...}` for a secret file named by a flag; ConfigError when it does not exist."""
    if secret_file is None:
        return None
    if not Path(secret_file).expanduser().is_file():
        raise ConfigError(f"{flag} {secret_file}: file does not exist")
    return file_reference(secret_file, Path(config_path).absolute().parent)


def build_document(answers: PipeConfigAnswers, mapping_ref: str) -> CommentedMap:
    """The config document for `answers`; `mapping_ref` is the resource-mapping-file value."""
    first_base = answers.source_base_dns[0]
    doc = new_document()
    doc.yaml_set_start_comment(
        "scimsync sync configuration, written by create-sync-pipe-config.\n"
        "Edit with `scimsync dsconfig ...` or by hand; check with `scimsync config validate`."
    )
    servers = doc["external-servers"]
    names = []
    for i, (host, port) in enumerate(answers.source_servers):
        name = "source-ds" if i == 0 else f"source-ds-{i + 1}"
        names.append(name)
        server = CommentedMap()
        server["type"] = answers.source_type
        server["server-host-name"] = host
        server["server-port"] = port or (636 if answers.source_security == "ssl" else 389)
        server["connection-security"] = answers.source_security
        if answers.source_bind_dn:
            server["bind-dn"] = answers.source_bind_dn
            server["password"] = answers.source_bind_password
        else:
            server["authentication-method"] = "none"
        if answers.trust_ca_file is not None:
            server["trust-ca-file"] = str(answers.trust_ca_file)
        servers[name] = server
    if len(names) > 1:
        servers.yaml_set_comment_before_after_key(
            names[1], before="failover servers, lower priority", indent=2
        )
    scim = CommentedMap()
    scim["type"] = "scim2"
    scim["scim-service-url"] = answers.scim_url
    scim["http-authorization-method"] = answers.scim_auth
    if answers.scim_auth == "basic":
        scim["user-name"] = answers.scim_user
        scim["password"] = answers.scim_password
    elif answers.scim_auth == "bearer":
        scim["oauth-token"] = answers.scim_token
    elif answers.scim_auth == "oauth2":
        scim["oauth-server-token-endpoint-url"] = answers.scim_token_url
        scim["oauth-client-id"] = answers.scim_client_id
        scim["oauth-client-secret"] = answers.scim_client_secret
    servers["scim"] = scim

    source = CommentedMap()
    source["type"] = "ldap"
    source["base-dn"] = flow_list(list(answers.source_base_dns))
    source["server"] = flow_list(names)
    source["change-detector"] = answers.change_detector
    doc["sync-sources"]["source"] = source

    destination = CommentedMap()
    destination["type"] = "scim2"
    destination["server"] = flow_list(["scim"])
    destination["resource-mapping-file"] = mapping_ref
    destination["update-method"] = "patch"
    doc["sync-destinations"]["scim"] = destination

    pipe = CommentedMap()
    pipe["sync-source"] = "source"
    pipe["sync-destination"] = "scim"
    pipe["started"] = False
    pipe["change-detection-polling-interval"] = "500 ms"
    pipe["sync-classes"] = _classes(first_base, answers.source_type == AD_SOURCE_TYPE)
    doc["sync-pipes"][answers.pipe_name] = pipe
    return doc


def _classes(first_base: str, active_directory: bool = False) -> CommentedMap:
    """Ping's users, groups and DEFAULT classes; on Active Directory its user and group
    objects (computers are users too: left out)."""
    classes = CommentedMap()
    users = CommentedMap()
    users["evaluation-order-index"] = 100
    users["include-base-dn"] = flow_list([f"ou=people,{first_base}"])
    users["include-filter"] = flow_list(
        ["(&(objectClass=user)(!(objectClass=computer)))"]
        if active_directory
        else ["(objectClass=inetOrgPerson)"]
    )
    users["destination-correlation-attributes"] = flow_list(["externalId", "userName"])
    users["resource"] = "User"
    classes["users"] = users
    groups = CommentedMap()
    groups["evaluation-order-index"] = 200
    groups["include-base-dn"] = flow_list([f"ou=groups,{first_base}"])
    groups["include-filter"] = flow_list(
        ["(objectClass=group)"]
        if active_directory
        else ["(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"]
    )
    groups["destination-correlation-attributes"] = flow_list(["externalId", "displayName"])
    groups["resource"] = "Group"
    classes["groups"] = groups
    default = CommentedMap()
    default["evaluation-order-index"] = 99999
    default["synchronize-creates"] = False
    default["synchronize-modifies"] = False
    default["synchronize-deletes"] = False
    classes["DEFAULT"] = default
    classes.yaml_set_comment_before_after_key(
        "DEFAULT", before="everything no other class matched: synchronize nothing", indent=6
    )
    return classes


def write_pipe_config(
    path: Path | str,
    answers: PipeConfigAnswers,
    *,
    default_mapping: Callable[[str, str], str],
    force: bool = False,
    check_connections: CheckConnections | None = None,
) -> PipeConfigResult:
    """Validate, test the connections (unless None), then write the config and, when no
    mapping file is given, `default_mapping(suffix)`: the built-in mapping's text with its
    base DNs under the source's first base, for its source type (toolkit.mapping.default_mapping_text, which the
    caller hands in: config does not reach into the mapping package)."""
    path = Path(path).absolute()
    config_dir = path.parent
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: use --force to overwrite it")
    _check_answers(answers)
    warnings: list[str] = []
    created: list[Path] = []
    try:
        if answers.resource_mapping_file is not None:
            mapping = Path(answers.resource_mapping_file).expanduser().absolute()
            mapping_written = False
        else:
            mapping = config_dir / MAPPING_FILE_NAME
            mapping_written = not mapping.exists() or force
            if mapping_written:
                config_dir.mkdir(parents=True, exist_ok=True)
                if not mapping.exists():
                    created.append(mapping)
                mapping.write_text(
                    default_mapping(answers.source_base_dns[0], answers.source_type),
                    encoding="utf-8",
                )
            else:
                warnings.append(
                    f"kept the existing {mapping} (--force replaces it with the default mapping)"
                )
        created += _write_typed_secrets(config_dir, answers.typed_secrets)
        doc = build_document(answers, _relative_to(mapping, config_dir))
        config, problems = check_document(doc, path)
        if problems or config is None:
            raise ConfigError(problems, path)
        if check_connections is not None:
            failures = check_connections(config)
            if failures:
                raise ConnectionCheckError(failures)
        save_document(doc, path)
    except BaseException:
        for file in created:
            file.unlink(missing_ok=True)
        raise
    return PipeConfigResult(path, mapping, mapping_written, warnings)


def answers_config(
    path: Path | str, answers: PipeConfigAnswers, default_mapping: Callable[[str], str]
) -> Config:
    """The config the answers describe, written nowhere: what the setup form's Test connection
    buttons test before anything is written. Without a mapping file of its own it names a
    temporary copy of the default mapping (a connection test does not read it)."""
    _check_answers(answers)
    path = Path(path).absolute()
    with tempfile.TemporaryDirectory(prefix="scimsync-answers-") as folder:
        mapping = answers.resource_mapping_file
        if mapping is None:
            mapping = Path(folder) / MAPPING_FILE_NAME
            mapping.write_text(default_mapping(answers.source_base_dns[0]), encoding="utf-8")
        doc = build_document(answers, str(Path(mapping).expanduser().absolute()))
        config, problems = check_document(doc, path)
    if problems or config is None:
        raise ConfigError(problems, path)
    return config


def _relative_to(file: Path, folder: Path) -> str:
    try:
        return str(file.relative_to(folder.absolute()))
    except ValueError:
        return str(file)


def _write_typed_secrets(config_dir: Path, secrets: dict[str, str]) -> list[Path]:
    written = []
    for relative, value in secrets.items():
        file = config_dir / relative
        for folder in reversed(Path(relative).parents[:-1]):  # .scimsync, .scimsync/secrets
            private_dir(config_dir / folder)
        existed = file.exists()
        with open_private(file) as handle:
            handle.write(value + "\n")
        if not existed:
            written.append(file)
    return written


def _check_answers(answers: PipeConfigAnswers) -> None:
    problems = []
    if not answers.source_base_dns:
        problems.append("at least one source base DN is needed (--source-base-dn)")
    if not answers.scim_url:
        problems.append("the SCIM service URL is needed (--scim-url)")
    if answers.source_bind_dn and not answers.source_bind_password:
        problems.append("a bind DN needs its password (--source-bind-password-file)")
    needs = {
        "basic": (("scim_user", "--scim-user"), ("scim_password", "--scim-password-file")),
        "bearer": (("scim_token", "--scim-token-file"),),
        "oauth2": (
            ("scim_token_url", "--scim-token-url"),
            ("scim_client_id", "--scim-client-id"),
            ("scim_client_secret", "--scim-client-secret-file"),
        ),
    }.get(answers.scim_auth, ())
    for attr, flag in needs:
        if not getattr(answers, attr):
            problems.append(f"--scim-auth {answers.scim_auth} needs {flag}")
    if problems:
        raise ConfigError("create-sync-pipe-config: " + "; ".join(problems))


# --- what the wizards share (toolkit.wizard on a terminal, the setup widget) ---------------

Ask = Callable[[str], str]
Say = Callable[[str], None]

SOURCE_TYPES: list[tuple[str, str]] = [
    ("PingDirectory", "ping-identity-ds"),
    ("PingDirectoryProxy", "ping-identity-proxy-server"),
    ("Microsoft Active Directory", "active-directory"),
    ("Sun/Oracle Directory Server Enterprise Edition", "sun-ds"),
    ("Oracle Unified Directory", "oracle-unified-directory"),
    ("OpenDJ", "opendj"),
    ("OpenLDAP", "openldap"),
    ("389 Directory Server", "389-ds"),
    ("Generic LDAP directory", "ldap"),
]
assert all(t in LDAP_SERVER_TYPES for _, t in SOURCE_TYPES)


def summary(answers: PipeConfigAnswers) -> list[str]:
    """The configuration summary shown before writing (references only, never secrets)."""
    hosts = ", ".join(
        f"{h}:{p or (636 if answers.source_security == 'ssl' else 389)}"
        for h, p in answers.source_servers
    )
    lines = [
        "",
        "Configuration summary",
        f"  Sync pipe             {answers.pipe_name}  (standard mode, one-way)",
        f"  Source                {answers.source_type} at {hosts}  security {answers.source_security}",
        f"  Base DNs              {'; '.join(answers.source_base_dns)}",
        f"  Sync user             {answers.source_bind_dn or '(anonymous)'}  password {answers.source_bind_password or '-'}",
        f"  Change detection      {answers.change_detector}",
        f"  Destination           SCIM 2.0 at {answers.scim_url}  auth {answers.scim_auth}",
        f"  Resource mapping      {answers.resource_mapping_file or 'a copy of the default scim-resources.xml'}",
        "  Sync classes          users (100), groups (200), DEFAULT (99999, excludes everything else)",
    ]
    return lines
