"""Loading and validating a config: every problem at once, each with its dotted path.

`check_document` turns a YAML document into a `Config` and the list of problems; a Config is
only returned when there are none. `load_config` raises one ConfigError carrying them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from toolkit.config.dn import DNError, is_within, parse_dn
from toolkit.config.document import line_of, load_document
from toolkit.config.model import (
    Config,
    LdapServer,
    Scim2Server,
    SyncClass,
    SyncDestination,
    SyncPipe,
    SyncSource,
)
from toolkit.config.problems import ConfigError, Problem
from toolkit.config.properties import (
    EXTERNAL_SERVERS,
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
    props_for,
)
from toolkit.config.secrets import SecretRef

MappingValidator = Callable[[Path], list[str]]


def load_config(path: Path | str) -> Config:
    """Read and validate the config at `path`; ConfigError lists every problem found."""
    path = Path(path).absolute()
    doc = load_document(path)
    config, problems = check_document(doc, path)
    if problems or config is None:
        raise ConfigError(problems, path)
    return config


def validate_file(
    path: Path | str, mapping_validator: MappingValidator | None = None
) -> list[Problem]:
    """All problems of the config at `path` (a YAML syntax error is the only one then).

    A config that defines no sync pipe is a problem here (a run needs one), though not while
    a config is being built object by object (`check_document`, dsconfig). `mapping_validator`
    checks each resource-mapping-file (default: well-formed and valid against the XSD).
    """
    path = Path(path).absolute()
    try:
        doc = load_document(path)
    except ConfigError as exc:
        return exc.problems
    if all(key in SECTIONS and not doc[key] for key in doc):  # empty, or empty sections
        return [Problem("", "the config file configures nothing (no sync pipe, no server)", 1)]
    config, problems = check_document(doc, path, mapping_validator)
    if config is not None and not config.sync_pipes:
        problems.append(
            Problem(
                SYNC_PIPES,
                "no sync pipe is configured: a run needs one (create-sync-pipe-config writes one)",
                line_of(doc, SYNC_PIPES),
            )
        )
    if config is not None:
        problems += _secret_problems(config)
    return problems


def _secret_problems(config: Config) -> list[Problem]:
    """Secret files that exist but that a run would refuse (an empty token file)."""
    found = []
    for server in config.external_servers.values():
        for f in fields(server):
            ref = getattr(server, f.name)
            problem = ref.problem() if isinstance(ref, SecretRef) else None
            if problem:
                found.append(Problem(ref.name, problem))
    return found


def check_document(
    doc: Any, path: Path, mapping_validator: MappingValidator | None = None
) -> tuple[Config | None, list[Problem]]:
    """Validate a document read from (or to be written to) `path`."""
    checker = _Checker(Path(path).absolute(), mapping_validator or _default_mapping_validator)
    config = checker.run(doc)
    return (config if not checker.problems else None), checker.problems


def _default_mapping_validator(path: Path) -> list[str]:
    from toolkit.config.mappingfile import validate_mapping_file

    return validate_mapping_file(path)


class _Checker:
    def __init__(self, path: Path, mapping_validator: MappingValidator):
        self.path = path
        self.base_dir = path.parent
        self.mapping_validator = mapping_validator
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(path, message, line))

    # --- structure ------------------------------------------------------------------------

    def run(self, doc: Any) -> Config:
        if not isinstance(doc, dict):
            self.add("", "the config must be a YAML mapping of sections", 1)
            doc = {}
        for key in doc:
            if key not in SECTIONS:
                self.add(
                    str(key), f"unknown section{closest(str(key), SECTIONS)}", line_of(doc, key)
                )
        sections = {s: self._section(doc, s) for s in SECTIONS}
        servers = {n: self._server(n, raw) for n, raw in sections[EXTERNAL_SERVERS].items()}
        sources = {n: self._source(n, raw) for n, raw in sections[SYNC_SOURCES].items()}
        dests = {n: self._destination(n, raw) for n, raw in sections[SYNC_DESTINATIONS].items()}
        pipes = {n: self._pipe(n, raw) for n, raw in sections[SYNC_PIPES].items()}
        config = Config(
            path=self.path,
            external_servers={n: s for n, s in servers.items() if s is not None},
            sync_sources={n: s for n, s in sources.items() if s is not None},
            sync_destinations={n: d for n, d in dests.items() if d is not None},
            sync_pipes={n: p for n, p in pipes.items() if p is not None},
            document=doc,
        )
        self._cross_checks(config, sections)
        return config

    def _section(self, doc: Any, section: str) -> dict[str, Any]:
        raw = doc.get(section)
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.add(
                section,
                "expected a mapping of object names to their properties",
                line_of(doc, section),
            )
            return {}
        good: dict[str, Any] = {}
        for name, body in raw.items():
            if body is None:
                body = {}
            if not isinstance(body, dict):
                self.add(
                    f"{section}.{name}", "expected a mapping of properties", line_of(raw, name)
                )
                continue
            good[str(name)] = body
        return good

    def _properties(
        self,
        kind: str,
        path: str,
        raw: dict[str, Any],
        type_: str | None,
        skip: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Convert every property of one object; defaults for the missing ones."""
        table = props_for(kind, type_)
        known = {p.name: p for p in table}
        values: dict[str, Any] = {}
        for key in raw:
            if key in known or key in skip:
                continue
            self.add(f"{path}.{key}", self._unknown(kind, str(key), type_), line_of(raw, key))
        for prop in table:
            sub = f"{path}.{prop.name}"
            line = line_of(raw, prop.name)
            if prop.name not in raw or raw[prop.name] is None or raw[prop.name] == []:
                if prop.required:
                    self.add(sub, "required property is missing", line_of_object(raw))
                values[prop.attr] = self._default(prop, sub)
                continue
            values[prop.attr] = self._value(prop, raw[prop.name], sub, line)
        return values

    def _unknown(self, kind: str, key: str, type_: str | None) -> str:
        hint = PING_ONLY.get(kind, {}).get(key)
        if hint:
            return f"PingDataSync property not used by scimsync ({hint})"
        own = [p.name for p in props_for(kind, type_)]
        if key in all_property_names(kind):
            return f"not a property of a {type_} {kind}"
        return f"unknown property{closest(key, own)}"

    def _default(self, prop: Prop, path: str) -> Any:
        if prop.default is None:
            return () if prop.multi else None
        if prop.multi:
            return tuple(convert(prop, v, self.base_dir, path) for v in prop.default)  # type: ignore[attr-defined]
        return self._finish(prop, convert(prop, prop.default, self.base_dir, path))

    def _value(self, prop: Prop, raw: Any, path: str, line: int | None) -> Any:
        if prop.multi:
            items = list(raw) if isinstance(raw, list) else [raw]
            if prop.kind == "dn" and _split_by_flow_list(raw):
                joined = ",".join(str(i) for i in items)
                self.add(
                    path,
                    f"YAML splits an inline [...] list at commas, so this reads as {len(items)} DNs; "
                    f'quote each DN: ["{joined}"] or use a block list',
                    line,
                )
                return ()
            out = []
            for item in items:
                try:
                    out.append(self._finish(prop, convert(prop, item, self.base_dir, path)))
                except ValueError as exc:
                    self.add(path, str(exc), line)
            return tuple(out)
        if isinstance(raw, list) and not prop.secret:
            self.add(path, "expected a single value, got a list", line)
            return self._default(prop, path)
        try:
            return self._finish(prop, convert(prop, raw, self.base_dir, path))
        except ValueError as exc:
            self.add(path, str(exc), line)
            return self._default(prop, path)

    def _finish(self, prop: Prop, value: Any) -> Any:
        if prop.kind == "path" and isinstance(value, Path):
            return value if value.is_absolute() else self.base_dir / value
        return value

    @staticmethod
    def _type(raw: dict[str, Any], default: str | None) -> str | None:
        """The object's type as written (a non-string is reported by the property check)."""
        value = raw.get("type", default)
        return value if isinstance(value, str) else None

    # --- objects --------------------------------------------------------------------------

    def _server(self, name: str, raw: dict[str, Any]) -> LdapServer | Scim2Server | None:
        path = f"{EXTERNAL_SERVERS}.{name}"
        type_ = self._type(raw, None)
        v = self._properties("external-server", path, raw, type_)
        if type_ is None or v["type"] is None:
            return None
        if type_ == SCIM2:
            server: LdapServer | Scim2Server = Scim2Server(name=name, **v)
            self._check_scim_auth(path, raw, server)
        else:
            if v["server_port"] is None:
                v["server_port"] = 636 if v["connection_security"] == "ssl" else 389
            server = LdapServer(name=name, **v)
            if server.authentication_method == "simple":
                for prop in ("bind-dn", "password"):
                    if raw.get(prop) is None:
                        self.add(
                            f"{path}.{prop}",
                            "required for authentication-method simple",
                            line_of_object(raw),
                        )
        if server.trust_ca_file is not None and not server.trust_ca_file.is_file():
            self.add(
                f"{path}.trust-ca-file",
                f"file {server.trust_ca_file} does not exist",
                line_of(raw, "trust-ca-file"),
            )
        return server

    def _check_scim_auth(self, path: str, raw: dict[str, Any], server: Scim2Server) -> None:
        needs = {
            "basic": ("user-name", "password"),
            "bearer": ("oauth-token",),
            "oauth2": ("oauth-server-token-endpoint-url", "oauth-client-id", "oauth-client-secret"),
        }.get(server.http_authorization_method, ())
        for prop in needs:
            if raw.get(prop) is None:
                self.add(
                    f"{path}.{prop}",
                    f"required for http-authorization-method {server.http_authorization_method}",
                    line_of(raw, "http-authorization-method"),
                )

    def _source(self, name: str, raw: dict[str, Any]) -> SyncSource | None:
        path = f"{SYNC_SOURCES}.{name}"
        type_ = self._type(raw, "ldap")
        v = self._properties("sync-source", path, raw, type_)
        if v["type"] is None:
            return None
        source = SyncSource(name=name, **v)
        if source.ldif_file is not None and not source.ldif_file.is_file():
            self.add(
                f"{path}.ldif-file",
                f"file {source.ldif_file} does not exist",
                line_of(raw, "ldif-file"),
            )
        self._check_overlap(path, raw, source.base_dn)
        return source

    def _check_overlap(self, path: str, raw: dict[str, Any], base_dns: tuple[str, ...]) -> None:
        for i, first in enumerate(base_dns):
            for second in base_dns[i + 1 :]:
                try:
                    overlap = is_within(first, second) or is_within(second, first)
                except DNError:
                    continue
                if overlap:
                    self.add(
                        f"{path}.base-dn",
                        f"base DNs must not overlap: {first!r} and {second!r}",
                        line_of(raw, "base-dn"),
                    )

    def _destination(self, name: str, raw: dict[str, Any]) -> SyncDestination | None:
        path = f"{SYNC_DESTINATIONS}.{name}"
        v = self._properties("sync-destination", path, raw, "scim2")
        if v["type"] is None:
            return None
        destination = SyncDestination(name=name, **v)
        mapping = destination.resource_mapping_file
        if mapping is not None:
            self._check_mapping(
                f"{path}.resource-mapping-file", mapping, line_of(raw, "resource-mapping-file")
            )
        return destination

    def _check_mapping(self, path: str, mapping: Path, line: int | None) -> None:
        if not mapping.is_file():
            self.add(path, f"file {mapping} does not exist", line)
            return
        for message in self.mapping_validator(mapping):
            self.add(path, message, line)

    def _pipe(self, name: str, raw: dict[str, Any]) -> SyncPipe | None:
        path = f"{SYNC_PIPES}.{name}"
        v = self._properties("sync-pipe", path, raw, None, skip=(SYNC_CLASSES,))
        classes: dict[str, SyncClass] = {}
        raw_classes = raw.get(SYNC_CLASSES) or {}
        if not isinstance(raw_classes, dict):
            self.add(
                f"{path}.{SYNC_CLASSES}",
                "expected a mapping of class names to their properties",
                line_of(raw, SYNC_CLASSES),
            )
            raw_classes = {}
        for cname, body in raw_classes.items():
            cpath = f"{path}.{SYNC_CLASSES}.{cname}"
            if body is None:
                body = {}
            if not isinstance(body, dict):
                self.add(cpath, "expected a mapping of properties", line_of(raw_classes, cname))
                continue
            cv = self._properties("sync-class", cpath, body, None)
            classes[str(cname)] = SyncClass(name=str(cname), **cv)
        self._check_indexes(path, raw_classes, classes)
        return SyncPipe(name=name, sync_classes=classes, **v)

    def _check_indexes(self, path: str, raw: dict[str, Any], classes: dict[str, SyncClass]) -> None:
        seen: dict[int, str] = {}
        for cname, cls in classes.items():
            index = cls.evaluation_order_index
            if index in seen:
                body = raw.get(cname)
                line = line_of(body, "evaluation-order-index") if isinstance(body, dict) else None
                self.add(
                    f"{path}.{SYNC_CLASSES}.{cname}.evaluation-order-index",
                    f"duplicate evaluation-order-index {index}: also used by sync class {seen[index]!r}",
                    line or line_of(raw, cname),
                )
            else:
                seen[index] = cname

    # --- references between objects -------------------------------------------------------

    def _cross_checks(self, config: Config, sections: dict[str, dict[str, Any]]) -> None:
        servers = config.external_servers
        for name, source in config.sync_sources.items():
            raw = sections[SYNC_SOURCES][name]
            for server in source.server:
                self._reference(
                    f"{SYNC_SOURCES}.{name}.server",
                    raw,
                    server,
                    sections[EXTERNAL_SERVERS],
                    "external server",
                )
                if server in servers and servers[server].type == SCIM2:
                    self.add(
                        f"{SYNC_SOURCES}.{name}.server",
                        f"{server!r} is a scim2 server; a sync source reads LDAP servers",
                        line_of(raw, "server"),
                    )
        for name, dest in config.sync_destinations.items():
            raw = sections[SYNC_DESTINATIONS][name]
            for server in dest.server:
                self._reference(
                    f"{SYNC_DESTINATIONS}.{name}.server",
                    raw,
                    server,
                    sections[EXTERNAL_SERVERS],
                    "external server",
                )
                if server in servers and servers[server].type != SCIM2:
                    self.add(
                        f"{SYNC_DESTINATIONS}.{name}.server",
                        f"{server!r} is an LDAP server; a scim2 sync destination needs scim2 servers",
                        line_of(raw, "server"),
                    )
        for name, pipe in config.sync_pipes.items():
            raw = sections[SYNC_PIPES][name]
            path = f"{SYNC_PIPES}.{name}"
            if pipe.sync_source:
                self._reference(
                    f"{path}.sync-source",
                    raw,
                    pipe.sync_source,
                    sections[SYNC_SOURCES],
                    "sync source",
                )
            if pipe.sync_destination:
                self._reference(
                    f"{path}.sync-destination",
                    raw,
                    pipe.sync_destination,
                    sections[SYNC_DESTINATIONS],
                    "sync destination",
                )
            source = config.sync_sources.get(pipe.sync_source or "")
            if source is not None and source.base_dn:
                self._check_class_bases(path, raw, pipe, source)

    def _reference(
        self, path: str, raw: dict[str, Any], name: str, known: dict[str, Any], what: str
    ) -> None:
        if name not in known:
            key = path.rsplit(".", 1)[1]
            self.add(
                path, f"unknown {what} {name!r}{closest(name, list(known))}", line_of(raw, key)
            )

    def _check_class_bases(
        self, path: str, raw: dict[str, Any], pipe: SyncPipe, source: SyncSource
    ) -> None:
        raw_classes = raw.get(SYNC_CLASSES) or {}
        for cname, cls in pipe.sync_classes.items():
            for base in cls.include_base_dn:
                try:
                    inside = any(is_within(base, b) for b in source.base_dn)
                except DNError:
                    continue
                if not inside:
                    body = raw_classes.get(cname)
                    self.add(
                        f"{path}.{SYNC_CLASSES}.{cname}.include-base-dn",
                        f"{base!r} is outside the base DNs of sync source {source.name!r}",
                        line_of(body, "include-base-dn") if isinstance(body, dict) else None,
                    )


def _split_by_flow_list(raw: Any) -> bool:
    """An inline list of unquoted one-RDN values: almost surely one DN cut at its commas."""
    try:
        flow = bool(raw.fa.flow_style())
    except AttributeError:
        return False
    if not flow or len(raw) < 2:
        return False
    for item in raw:
        if type(item) is not str:  # quoted scalars come back as str subclasses
            return False
        try:
            if len(parse_dn(item)) != 1:
                return False
        except DNError:
            return False
    return True


def line_of_object(raw: Any) -> int | None:
    """The line of an object's first property (for problems about a missing property)."""
    try:
        return int(raw.lc.line) + 1
    except AttributeError:
        return None


__all__ = ["check_document", "load_config", "validate_file"]
