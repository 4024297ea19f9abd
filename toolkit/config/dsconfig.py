"""`scimsync dsconfig`: PingDataSync's dsconfig verbs, editing the YAML config in place.

Verbs `create-X`, `set-X-prop`, `get-X-prop`, `list-Xs` and `delete-X` for external-server
(`--server-name`), sync-source (`--source-name`), sync-destination (`--destination-name`),
sync-pipe (`--pipe-name`) and sync-class (`--pipe-name --class-name`), with `--type` and
`--set/--add/--remove/--reset prop:value`. `--batch-file` replays a PingDataSync batch file.

Importing a Ping configuration is the point, so what only makes sense inside PingDataSync
(key and trust manager providers, changelog batch requests, connection options of the
dsconfig tool itself, other tools' lines in a batch) is skipped with a warning instead of
failing, a SCIM 1.1 `--type scim` becomes `scim2`, and a literal password becomes an
`${env:NAME}` reference whose variable the warning names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from toolkit.config.document import (
    flow_list,
    load_document,
    new_document,
    object_path,
    save_document,
)
from toolkit.config.problems import ConfigError, Problem
from toolkit.config.properties import (
    EXTERNAL_SERVERS,
    LDAP_SERVER_TYPES,
    PING_ONLY,
    SCIM2,
    SECTIONS,
    SYNC_CLASSES,
    SYNC_DESTINATIONS,
    SYNC_PIPES,
    SYNC_SOURCES,
    Prop,
    all_property_names,
    closest,
    convert,
    find_prop,
    props_for,
    yaml_value,
)
from toolkit.config.secrets import env_name_for, is_secret_property, is_secret_reference
from toolkit.config.validate import check_document

# kind -> (section, the option naming an object)
KINDS: dict[str, tuple[str, str]] = {
    "external-server": (EXTERNAL_SERVERS, "--server-name"),
    "sync-source": (SYNC_SOURCES, "--source-name"),
    "sync-destination": (SYNC_DESTINATIONS, "--destination-name"),
    "sync-pipe": (SYNC_PIPES, "--pipe-name"),
    "sync-class": (SYNC_CLASSES, "--class-name"),
}
_PLURALS = {
    "external-servers": "external-server",
    "sync-sources": "sync-source",
    "sync-destinations": "sync-destination",
    "sync-pipes": "sync-pipe",
    "sync-classes": "sync-class",
}
_TITLES = {
    "external-server": "External Server",
    "sync-source": "Sync Source",
    "sync-destination": "Sync Destination",
    "sync-pipe": "Sync Pipe",
    "sync-class": "Sync Class",
}
VERBS = tuple(
    [f"{a}-{k}" for k in KINDS for a in ("create", "delete")]
    + [f"{a}-{k}-prop" for k in KINDS for a in ("get", "set")]
    + [f"list-{p}" for p in _PLURALS]
)

# PingDataSync object types scimsync does not have: their verbs are skipped with a warning.
_PING_OBJECTS = (
    "attribute-map",
    "attribute-mapping",
    "dn-map",
    "dn-mapping",
    "json-attribute-mapping-field",
    "backend",
    "plugin",
    "global-sync-configuration",
    "scim2-attribute-mapping",
    "scim2-endpoint-mapping",
    "log-publisher",
    "log-retention-policy",
    "log-rotation-policy",
    "key-manager-provider",
    "trust-manager-provider",
    "passphrase-provider",
    "connection-handler",
    "root-dn-user",
    "location",
    "sync-pipe-plugin",
    "sync-source-plugin",
    "sync-destination-plugin",
    "server-group",
    "topology-admin-user",
)
# Other tools of PingDataSync that appear in documented sequences and batch scripts.
_OTHER_TOOLS = {
    "prepare-endpoint-server": "run `scimsync prepare-endpoint-server`",
    "realtime-sync": "run `scimsync realtime-sync`",
    "resync": "run `scimsync resync` (or `scimsync dry-run`)",
    "create-sync-pipe-config": "run `scimsync create-sync-pipe-config`",
    "status": "run `scimsync status`",
    "manage-topology": "not needed",
    "start-server": "not needed",
    "stop-server": "not needed",
    "setup": "not needed",
}
# Options of the dsconfig tool that address a PingDataSync server: meaningless here.
_CONNECTION_OPTIONS_WITH_VALUE = {
    "--hostname", "-h", "--port", "-p", "--bindDN", "-D", "--bindPassword", "-w",
    "--bindPasswordFile", "-j", "--trustStorePath", "-P", "--trustStorePassword",
    "--trustStorePasswordFile", "-U", "--keyStorePath", "-K", "--keyStorePassword",
    "--keyStorePasswordFile", "-u", "--certNickname", "-N", "--applyChangeTo",
    "--serverGroup", "--propertiesFilePath", "--saslOption", "-o",
}  # fmt: skip
_CONNECTION_FLAGS = {
    "--useSSL",
    "-Z",
    "--useStartTLS",
    "-q",
    "--trustAll",
    "-X",
    "--noPropertiesFile",
}
_HARMLESS_FLAGS = {
    "--no-prompt",
    "-n",
    "--quiet",
    "-Q",
    "--script-friendly",
    "-s",
    "--advanced",
    "--verbose",
    "-v",
}
# SCIM 1.1 external server properties that have no SCIM 2.0 counterpart here.
_SCIM11_IGNORED = {
    "connection-security": "the scheme of scim-service-url (https) decides",
    "authentication-method": "see http-authorization-method",
}
_LDAP_SOURCE_TYPES = {
    "ldap", "generic-ldap", "ping-identity", "ping-identity-proxy-server", "ping-identity-ds",
    "active-directory", "opendj", "oracle-unified-directory", "sun-ds", "nokia-ds",
    "nokia-proxy-server", "389-ds", "openldap", "unboundid-ds",
}  # fmt: skip


@dataclass
class DsconfigResult:
    """What a dsconfig run printed, warned about, and whether it changed the file."""

    output: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changed: bool = False


@dataclass
class _Command:
    verb: str
    action: str  # create | delete | get | set | list
    kind: str
    names: dict[str, str] = field(default_factory=dict)
    type: str | None = None
    mods: list[tuple[str, str, str | None]] = field(default_factory=list)  # (op, prop, value)
    properties: list[str] = field(default_factory=list)  # get-X-prop --property


class DsconfigError(ConfigError):
    """A dsconfig command that cannot be applied (nothing was written)."""


# --- entry points ---------------------------------------------------------------------------


def run_dsconfig(config_path: Path | str, words: Sequence[str]) -> DsconfigResult:
    """Apply one dsconfig command (or `--batch-file FILE`) to the config at `config_path`."""
    words = list(words)
    if not words:
        raise DsconfigError("a dsconfig verb is needed, e.g. create-sync-pipe (see --help)")
    if "--batch-file" in words or any(w.startswith("--batch-file=") for w in words):
        return run_batch_file(config_path, _batch_file_of(words))
    path = Path(config_path)
    editor = Editor.open(path, creating=bool(words) and words[0].startswith("create-"))
    editor.apply(words)
    return editor.finish()


def run_batch_file(config_path: Path | str, batch_file: Path | str) -> DsconfigResult:
    """Apply every command of a PingDataSync batch file; the first error writes nothing."""
    batch_file = Path(batch_file)
    try:
        text = batch_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DsconfigError(
            f"{batch_file}: cannot read batch file: {exc.strerror or exc}"
        ) from None
    return run_batch(config_path, text, str(batch_file))


def run_batch(config_path: Path | str, text: str, source_name: str = "<batch>") -> DsconfigResult:
    editor = Editor.open(Path(config_path), creating=True)
    for line_no, words in batch_commands(text, source_name):
        editor.where = f"{source_name}:{line_no}: "
        if not words:
            continue
        tool = Path(words[0]).name
        if tool in ("dsconfig", "dsconfig.bat"):
            words = words[1:]
        elif tool in _OTHER_TOOLS:
            editor.warn(f"skipped {tool}: not a dsconfig command; {_OTHER_TOOLS[tool]}")
            continue
        if not words:
            continue
        editor.apply(words)
    editor.where = ""
    return editor.finish()


def batch_commands(text: str, source_name: str = "<batch>") -> list[tuple[int, list[str]]]:
    """(first line number, words) of each command: `#` comments, blank lines and `\\`
    continuation lines as in PingDataSync batch files."""
    commands: list[tuple[int, list[str]]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        commands.append((start, _split(" ".join(pending), source_name, start)))
        pending = []
    if pending:
        commands.append((start, _split(" ".join(pending), source_name, start)))
    return commands


def _split(command: str, source_name: str, line: int) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError as exc:
        raise DsconfigError(f"{source_name}:{line}: cannot read the command: {exc}") from None


def _batch_file_of(words: list[str]) -> Path:
    for i, word in enumerate(words):
        if word.startswith("--batch-file="):
            return Path(word.split("=", 1)[1])
        if word == "--batch-file":
            if i + 1 >= len(words):
                raise DsconfigError("--batch-file needs a file name")
            return Path(words[i + 1])
    raise AssertionError("no --batch-file")


# --- parsing one command --------------------------------------------------------------------


def _parse_verb(verb: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(create|delete|get|set)-(.+?)(-prop)?", verb)
    if match:
        action, kind, prop = match.groups()
        if kind in KINDS and bool(prop) == (action in ("get", "set")):
            return action, kind
        return None
    if verb.startswith("list-") and verb[5:] in _PLURALS:
        return "list", _PLURALS[verb[5:]]
    return None


def _is_ping_verb(verb: str) -> bool:
    match = re.fullmatch(r"(?:create|delete|get|set|list)-(.+?)(?:-prop)?", verb)
    if not match:
        return False
    obj = match.group(1)
    return any(
        obj == o or obj == o + "s" or obj.endswith("-" + o) or obj.endswith("-" + o + "s")
        for o in _PING_OBJECTS
    )


# --- the editor -----------------------------------------------------------------------------


class Editor:
    """A config document being edited by dsconfig commands; written once, at the end."""

    def __init__(self, doc: CommentedMap, path: Path, exists: bool):
        self.doc = doc
        self.path = path
        self.exists = exists
        self.result = DsconfigResult()
        self.where = ""  # "FILE:LINE: " of the batch command being applied
        self._connection_warned = False

    @classmethod
    def open(cls, path: Path, creating: bool) -> Editor:
        if path.exists():
            return cls(load_document(path), path, exists=True)
        if not creating:
            raise DsconfigError(f"{path}: config file not found")
        return cls(new_document(), path, exists=False)

    def warn(self, message: str) -> None:
        self.result.warnings.append(self.where + message)

    def fail(self, message: str) -> DsconfigError:
        return DsconfigError([Problem("", self.where + message)])

    def finish(self) -> DsconfigResult:
        """Write the file when something changed and report what is still not valid."""
        if self.result.changed:
            _, problems = check_document(self.doc, self.path.absolute())
            for problem in problems:
                self.result.warnings.append(
                    f"the config is not valid yet: {problem.located(self.path)}"
                )
            save_document(self.doc, self.path)
        return self.result

    # --- command parsing ------------------------------------------------------------------

    def apply(self, words: list[str]) -> None:
        if not words:
            raise self.fail("a dsconfig verb is needed, e.g. create-sync-pipe (see --help)")
        verb = words[0]
        if verb in ("--help", "-H", "help"):
            self.result.output += _usage()
            return
        parsed = _parse_verb(verb)
        if parsed is None:
            if _is_ping_verb(verb):
                self.warn(f"skipped {verb}: scimsync has no such PingDataSync objects")
                return
            raise self.fail(f"unknown dsconfig verb {verb!r}{closest(verb, list(VERBS))}")
        command = _Command(verb, parsed[0], parsed[1])
        self._parse_options(command, words[1:])
        getattr(self, f"_{command.action}")(command)

    def _parse_options(self, command: _Command, words: list[str]) -> None:
        i = 0
        while i < len(words):
            word = words[i]
            option, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
            takes_value = option in (
                "--type",
                "--set",
                "--add",
                "--remove",
                "--reset",
                "--property",
            )
            takes_value = takes_value or option in {o for _, o in KINDS.values()}
            if takes_value or option in _CONNECTION_OPTIONS_WITH_VALUE:
                if inline:
                    value = inline
                elif i + 1 < len(words):
                    value = words[i + 1]
                    i += 1
                else:
                    raise self.fail(f"{option} needs a value")
                if takes_value:
                    self._option(command, option, value)
                else:
                    self._connection_option(option)
            elif option in _CONNECTION_FLAGS:
                self._connection_option(option)
            elif option in _HARMLESS_FLAGS:
                pass
            elif option in ("--help", "-H"):
                self.result.output += _usage(command.kind)
                command.action = "help"
            else:
                raise self.fail(f"{command.verb}: unknown option {word!r}")
            i += 1

    def _connection_option(self, option: str) -> None:
        if not self._connection_warned:
            self._connection_warned = True
            self.warn(
                f"ignored {option} (and other connection options): scimsync edits {self.path}, not a server"
            )

    def _option(self, command: _Command, option: str, value: str) -> None:
        if option == "--type":
            command.type = value
        elif option == "--property":
            command.properties.append(value)
        elif option in ("--set", "--add", "--remove", "--reset"):
            prop, sep, val = value.partition(":")
            prop = prop.strip()
            if option != "--reset" and not sep:
                raise self.fail(f"{option} {value!r}: expected PROPERTY:VALUE")
            command.mods.append((option[2:], prop, val if option != "--reset" else None))
        else:
            command.names[option] = value

    def _name(self, command: _Command, option: str) -> str:
        name = command.names.get(option)
        if name is None or not name.strip():
            raise self.fail(f"{command.verb} needs {option}")
        return name

    # --- finding objects ------------------------------------------------------------------

    def _section(
        self, key: str, create: bool, parent: CommentedMap | None = None
    ) -> CommentedMap | None:
        parent = self.doc if parent is None else parent
        section = parent.get(key)
        if isinstance(section, CommentedMap):
            return section
        if not create:
            return None
        new = CommentedMap()
        if parent is self.doc and key in SECTIONS:
            after = [s for s in SECTIONS[: SECTIONS.index(key)] if s in parent]
            position = list(parent.keys()).index(after[-1]) + 1 if after else 0
            parent.insert(position, key, new)
        else:
            parent[key] = new
        return new

    def _container(self, command: _Command, create: bool) -> tuple[CommentedMap | None, str | None]:
        """The mapping holding objects of the command's kind (and the pipe for classes)."""
        if command.kind != "sync-class":
            return self._section(KINDS[command.kind][0], create), None
        pipe_name = self._name(command, "--pipe-name")
        pipes = self._section(SYNC_PIPES, False)
        if pipes is None or pipe_name not in pipes:
            raise self.fail(
                f"unknown sync pipe {pipe_name!r}{closest(pipe_name, list(pipes or []))}"
            )
        pipe = pipes[pipe_name]
        if pipe is None:
            pipe = pipes[pipe_name] = CommentedMap()
        return self._section(SYNC_CLASSES, create, pipe), pipe_name

    def _object(self, command: _Command) -> tuple[CommentedMap, str, str | None]:
        option = KINDS[command.kind][1]
        name = self._name(command, option)
        container, pipe = self._container(command, create=False)
        if container is None or name not in container:
            known = list(container or [])
            raise self.fail(
                f"unknown {_TITLES[command.kind].lower()} {name!r}{closest(name, known)}"
            )
        body = container[name]
        if body is None:
            body = container[name] = CommentedMap()
        return body, name, pipe

    # --- verbs ----------------------------------------------------------------------------

    def _help(self, command: _Command) -> None:
        """--help was given: usage is already in the output."""

    def _create(self, command: _Command) -> None:
        option = KINDS[command.kind][1]
        name = self._name(command, option)
        container, pipe = self._container(command, create=True)
        assert container is not None
        if name in container:
            raise self.fail(f"{_TITLES[command.kind].lower()} {name!r} already exists")
        body = CommentedMap()
        type_ = self._create_type(command)
        if type_ is not None:
            body["type"] = type_
        if any(op == "remove" for op, _, _ in command.mods):
            raise self.fail(f"--remove cannot be used with {command.verb}")
        self._modify(command, body, name, pipe, type_)
        container[name] = body
        if type_ == SCIM2 and command.kind == "external-server":
            self._scim_auth_default(body, name)
        if command.kind == "sync-destination" and "resource-mapping-file" not in body:
            self.warn(
                f"sync destination {name!r} has no resource-mapping-file: the built-in default "
                "mapping (SCIM 2.0 User with the enterprise extension, and Group) is used"
            )
        self.result.changed = True

    def _create_type(self, command: _Command) -> str | None:
        given = command.type
        if command.kind == "external-server":
            if given is None:
                raise self.fail(
                    f"{command.verb} needs --type (ldap, ping-identity-ds, ..., or scim2)"
                )
            if given in LDAP_SERVER_TYPES or given == SCIM2:
                return given
            if given == "scim":
                self.warn(
                    "--type scim (SCIM 1.1) became scim2: scimsync talks SCIM 2.0 to the service provider"
                )
                return SCIM2
            raise self.fail(
                f"external server type {given!r} is not supported (LDAP kinds or scim2){closest(given, [*LDAP_SERVER_TYPES, SCIM2])}"
            )
        if command.kind == "sync-source":
            if given is None or given in _LDAP_SOURCE_TYPES:
                return "ldap"
            if given == "ldif":
                return "ldif"
            raise self.fail(f"sync source type {given!r} is not supported (LDAP kinds or ldif)")
        if command.kind == "sync-destination":
            if given in (None, SCIM2):
                return SCIM2
            if given == "scim":
                self.warn(
                    "--type scim (SCIM 1.1) became scim2: scimsync talks SCIM 2.0 to the service provider"
                )
                return SCIM2
            raise self.fail(
                f"sync destination type {given!r} is not supported: scimsync synchronizes to scim2 only"
            )
        if given is not None:
            self.warn(f"ignored --type {given}: {_TITLES[command.kind].lower()}s have no type")
        return None

    def _scim_auth_default(self, body: CommentedMap, name: str) -> None:
        if "http-authorization-method" not in body and "user-name" in body and "password" in body:
            body["http-authorization-method"] = "basic"
            self.warn(
                f"external server {name!r}: http-authorization-method set to basic (user-name and password given)"
            )

    def _set(self, command: _Command) -> None:
        if command.type is not None:
            self.warn(f"ignored --type {command.type}: the type is chosen at creation")
        body, name, pipe = self._object(command)
        type_ = (
            body.get("type")
            if command.kind in ("external-server", "sync-source", "sync-destination")
            else None
        )
        if not command.mods:
            raise self.fail(f"{command.verb} needs --set, --add, --remove or --reset")
        self._modify(command, body, name, pipe, type_)
        self.result.changed = True

    def _delete(self, command: _Command) -> None:
        body, name, pipe = self._object(command)
        users = self._users_of(command.kind, name)
        if users:
            raise self.fail(
                f"cannot delete {_TITLES[command.kind].lower()} {name!r}: used by {', '.join(users)}"
            )
        container, _ = self._container(command, create=False)
        assert container is not None
        del container[name]
        self.result.changed = True

    def _users_of(self, kind: str, name: str) -> list[str]:
        """Dotted paths of the references to an object."""
        refs = {
            "external-server": ((SYNC_SOURCES, "server"), (SYNC_DESTINATIONS, "server")),
            "sync-source": ((SYNC_PIPES, "sync-source"),),
            "sync-destination": ((SYNC_PIPES, "sync-destination"),),
        }.get(kind, ())
        users = []
        for section, prop in refs:
            for other, body in (self.doc.get(section) or {}).items():
                value = (body or {}).get(prop)
                values = value if isinstance(value, list) else [value]
                if name in values:
                    users.append(f"{section}.{other}.{prop}")
        return users

    def _get(self, command: _Command) -> None:
        body, name, pipe = self._object(command)
        type_ = (
            body.get("type")
            if command.kind != "sync-pipe" and command.kind != "sync-class"
            else None
        )
        table = props_for(command.kind, type_)
        wanted = command.properties or [p.name for p in table]
        rows: list[tuple[str, str]] = []
        for prop_name in wanted:
            prop = next((p for p in table if p.name == prop_name), None)
            if prop is None:
                raise self.fail(
                    f"unknown property {prop_name!r}{closest(prop_name, [p.name for p in table])}"
                )
            rows.append((prop.name, _show_value(prop, body.get(prop.name))))
        self.result.output += _table(("Property", "Value(s)"), rows)

    def _list(self, command: _Command) -> None:
        container, _ = self._container(command, create=False)
        rows: list[tuple[str, ...]] = []
        for name, body in (container or {}).items():
            body = body or {}
            if command.kind == "sync-pipe":
                rows.append(
                    (
                        str(name),
                        str(body.get("sync-source", "-")),
                        str(body.get("sync-destination", "-")),
                    )
                )
            elif command.kind == "sync-class":
                rows.append((str(name), str(body.get("evaluation-order-index", 9999))))
            else:
                default = {"sync-source": "ldap", "sync-destination": SCIM2}.get(command.kind, "-")
                rows.append((str(name), str(body.get("type", default))))
        header: tuple[str, ...] = {
            "sync-pipe": (_TITLES["sync-pipe"], "Sync Source", "Sync Destination"),
            "sync-class": (_TITLES["sync-class"], "Evaluation Order Index"),
        }.get(command.kind, (_TITLES[command.kind], "Type"))
        self.result.output += _table(header, rows)

    # --- property modifications -----------------------------------------------------------

    def _modify(
        self, command: _Command, body: CommentedMap, name: str, pipe: str | None, type_: Any
    ) -> None:
        set_in_command: set[str] = set()
        for op, prop_name, value in command.mods:
            prop = self._prop(command.kind, type_, prop_name, name)
            if prop is None:
                continue
            if prop_name == "type":
                raise self.fail("the type cannot be changed: delete and create the object again")
            if op == "reset":
                body.pop(prop.name, None)
                continue
            assert value is not None
            stored = self._stored_value(command.kind, prop, value, name, pipe)
            if op == "set":
                first = prop.name not in set_in_command
                set_in_command.add(prop.name)
                if not prop.multi and not first:
                    raise self.fail(f"{prop.name} is single-valued but --set twice")
                if prop.multi and not first:
                    self._add_value(body, prop, stored)
                else:
                    body[prop.name] = (
                        _list_like(body.get(prop.name), [stored]) if prop.multi else stored
                    )
            elif op == "add":
                if not prop.multi:
                    raise self.fail(f"{prop.name} is single-valued: use --set")
                self._add_value(body, prop, stored)
            elif op == "remove":
                self._remove_value(body, prop, stored)

    def _prop(self, kind: str, type_: Any, prop_name: str, name: str) -> Prop | None:
        """The property to change, or None (with a warning) for one that scimsync ignores."""
        if type_ == SCIM2 and kind == "external-server" and prop_name in _SCIM11_IGNORED:
            self.warn(
                f"ignored {prop_name} of external server {name!r}: {_SCIM11_IGNORED[prop_name]}"
            )
            return None
        prop = find_prop(kind, type_, prop_name)
        if prop is not None:
            return prop
        hint = PING_ONLY.get(kind, {}).get(prop_name)
        if hint:
            self.warn(
                f"ignored {prop_name} of {_TITLES[kind].lower()} {name!r}: only meaningful inside PingDataSync ({hint})"
            )
            return None
        if prop_name in all_property_names(kind):
            raise self.fail(f"{prop_name} is not a property of a {type_} {kind}")
        own = [p.name for p in props_for(kind, type_)]
        raise self.fail(
            f"unknown property {prop_name!r} for {_TITLES[kind].lower()} {name!r}{closest(prop_name, own)}"
        )

    def _stored_value(self, kind: str, prop: Prop, value: str, name: str, pipe: str | None) -> Any:
        """The YAML value for `value`: validated, references checked, literal secrets replaced."""
        path = object_path(kind, name, pipe) + "." + prop.name
        if (prop.secret or is_secret_property(prop.name)) and not is_secret_reference(value):
            variable = env_name_for(pipe or "", name, prop.name)
            self.warn(
                f"{path}: the literal value is not stored; it now reads ${{env:{variable}}}: "
                f"set the environment variable {variable} (or change it to ${{file:PATH}})"
            )
            return f"${{env:{variable}}}"
        stored = yaml_value(prop, value)
        try:
            convert(prop, stored, self.path.parent, path)
        except ValueError as exc:
            raise self.fail(f"{path}: {exc}") from None
        if prop.ref is not None:
            known = self.doc.get(prop.ref) or {}
            if value not in known:
                what = {
                    EXTERNAL_SERVERS: "external server",
                    SYNC_SOURCES: "sync source",
                    SYNC_DESTINATIONS: "sync destination",
                }[prop.ref]
                raise self.fail(f"{path}: unknown {what} {value!r}{closest(value, list(known))}")
        return stored

    def _add_value(self, body: CommentedMap, prop: Prop, value: Any) -> None:
        current = body.get(prop.name)
        values = (
            list(current) if isinstance(current, list) else ([] if current is None else [current])
        )
        if value in values:
            self.warn(f"{prop.name} already has the value {value!r}")
            return
        body[prop.name] = _list_like(current, [*values, value])

    def _remove_value(self, body: CommentedMap, prop: Prop, value: Any) -> None:
        current = body.get(prop.name)
        values = (
            list(current) if isinstance(current, list) else ([] if current is None else [current])
        )
        if value not in values:
            raise self.fail(f"{prop.name} does not have the value {value!r}")
        values.remove(value)
        if not values:
            body.pop(prop.name)
        elif prop.multi:
            body[prop.name] = _list_like(current, values)
        else:
            body[prop.name] = values[0]


def _list_like(current: Any, values: list[Any]) -> CommentedSeq:
    """A new list in the style (inline or block) of the one it replaces; inline by default."""
    if isinstance(current, CommentedSeq) and not current.fa.flow_style():
        return CommentedSeq(values)
    return flow_list(values)


def _show_value(prop: Prop, value: Any) -> str:
    if value is None:
        if prop.default is None or prop.default == []:
            return "-" if prop.name != "server-port" else "389 (636 with ssl)"
        value = prop.default
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return str(value).lower()
    if prop.secret and not is_secret_reference(value):
        return "<redacted>"
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Ping's two-column layout: `name : value` with aligned colons."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return " : ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-:-".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def _usage(kind: str | None = None) -> list[str]:
    kinds = [kind] if kind else list(KINDS)
    lines = [
        "usage: scimsync dsconfig VERB [--NAME-OPTION NAME] [--type TYPE] [--set|--add|--remove PROP:VALUE] [--reset PROP]",
        "       scimsync dsconfig --batch-file FILE",
        "",
    ]
    for k in kinds:
        option = KINDS[k][1] if k != "sync-class" else "--pipe-name PIPE --class-name"
        plural = next(p for p, s in _PLURALS.items() if s == k)
        lines.append(
            f"  create-{k} | set-{k}-prop | get-{k}-prop | delete-{k} {option} NAME;  list-{plural}"
        )
        types = {
            "external-server": f"types: {', '.join(LDAP_SERVER_TYPES)}, scim2",
            "sync-source": "types: ldap, ldif",
            "sync-destination": "types: scim2",
        }.get(k)
        if types:
            lines.append(f"      {types}")
        names = " ".join(sorted({p for p in all_property_names(k) if p != "type"}))
        lines.append(f"      properties: {names}")
    return lines
