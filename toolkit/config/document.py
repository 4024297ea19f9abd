"""The YAML file itself, read and written with ruamel.yaml in round-trip mode so that edits
(dsconfig, create-sync-pipe-config) keep the admin's comments, key order and quoting.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from toolkit.config.problems import ConfigError, Problem
from toolkit.config.properties import SECTIONS, SYNC_CLASSES, SYNC_PIPES
from toolkit.config.secrets import is_secret_property, is_secret_reference


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long DNs or filters
    return yaml


def new_document() -> CommentedMap:
    """An empty config with the four sections in their usual order."""
    doc = CommentedMap()
    for section in SECTIONS:
        doc[section] = CommentedMap()
    return doc


def parse_document(text: str, file: Path | str = "<config>") -> CommentedMap:
    """The round-trip document in `text`; ConfigError with the line of a YAML syntax error."""
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"invalid YAML: {exc.problem or exc.context}"
        raise ConfigError([Problem("", message, line)], file) from None
    except YAMLError as exc:
        raise ConfigError([Problem("", f"invalid YAML: {exc}")], file) from None
    if data is None:
        return new_document()
    if not isinstance(data, CommentedMap):
        raise ConfigError([Problem("", "the config must be a YAML mapping of sections", 1)], file)
    return data


def load_document(path: Path | str) -> CommentedMap:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    return parse_document(text, path)


def dump_document(doc: Any) -> str:
    buffer = io.StringIO()
    _yaml().dump(doc, buffer)
    return buffer.getvalue()


def literal_secrets(doc: Any) -> list[Problem]:
    """Secret properties whose value is not a ${env:...}/${file:...} reference."""
    found: list[Problem] = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, dict):
                walk(value, sub)
            elif isinstance(key, str) and is_secret_property(key) and value is not None:
                values = value if isinstance(value, list) else [value]
                if not all(is_secret_reference(v) for v in values):
                    found.append(
                        Problem(
                            sub,
                            "a literal secret is not written to the config file: use ${env:NAME} or ${file:PATH}",
                            line_of(node, key),
                        )
                    )

    walk(doc, "")
    return found


def save_document(doc: Any, path: Path | str) -> None:
    """Write `doc` atomically; a literal secret anywhere refuses the whole write."""
    path = Path(path)
    secrets = literal_secrets(doc)
    if secrets:
        raise ConfigError(secrets, path)
    text = dump_document(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def line_of(mapping: Any, key: Any) -> int | None:
    """1-based line of `key` in a round-trip mapping, when ruamel recorded it."""
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def flow_list(values: list[Any]) -> CommentedSeq:
    """A YAML list written inline, as in `base-dn: [dc=example,dc=com]`."""
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def object_path(kind: str, name: str, pipe: str | None = None) -> str:
    if kind == "sync-class":
        return f"{SYNC_PIPES}.{pipe}.{SYNC_CLASSES}.{name}"
    section = {
        "external-server": "external-servers",
        "sync-source": "sync-sources",
        "sync-destination": "sync-destinations",
        "sync-pipe": "sync-pipes",
    }[kind]
    return f"{section}.{name}"
