"""Secrets never sit in the config file: only `${env:NAME}` or `${file:PATH}` references do.

A reference is resolved at use time (`resolve_secret`), so loading or printing a config never
touches the secret itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.config.problems import ConfigError

SECRET_PROPERTIES = frozenset({"password", "oauth-token", "oauth-client-secret"})
_REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "<redacted>"


def is_secret_property(name: str) -> bool:
    """password, oauth-token, oauth-client-secret, and any name ending -password/-secret/-token."""
    return name in SECRET_PROPERTIES or name.endswith(("-password", "-secret", "-token"))


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret; printing it shows the reference, never the secret."""

    kind: str  # "env" or "file"
    target: str  # variable name or path (relative paths are relative to base_dir)
    base_dir: Path = Path(".")
    name: str = "secret"  # the property (dotted path) it belongs to, for error messages

    @property
    def reference(self) -> str:
        return f"${{{self.kind}:{self.target}}}"

    def __str__(self) -> str:
        return self.reference

    def __repr__(self) -> str:
        return f"SecretRef({self.reference!r})"

    def resolve(self) -> str:
        """The secret itself (a file's content without its trailing newline).

        An empty secret is refused: an empty password is an anonymous LDAP bind, an empty
        token a header no server takes; a control character (a second line) cannot travel
        in a header either. The error names where the secret is, never what it holds."""
        if self.kind == "env":
            value = os.environ.get(self.target)
            if value is None:
                raise ConfigError(f"{self.name}: environment variable {self.target} is not set")
            return self._checked(value, f"environment variable {self.target}")
        path = Path(os.path.expanduser(self.target))
        if not path.is_absolute():
            path = self.base_dir / path
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.name}: secret file {path} does not exist") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"{self.name}: secret file {path} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(
                f"{self.name}: cannot read secret file {path}: {exc.strerror}"
            ) from exc
        return self._checked(value, f"secret file {path}")

    def problem(self) -> str | None:
        """What a run would refuse in a secret file that exists (empty, not one line,
        unreadable), for `config validate`; None otherwise. A missing file or unset variable
        is not judged: validation may run where the secrets are not (CI, another machine)."""
        if self.kind != "file":
            return None
        path = Path(os.path.expanduser(self.target))
        if not (path if path.is_absolute() else self.base_dir / path).exists():
            return None
        try:
            self.resolve()
        except ConfigError as exc:
            return str(exc).removeprefix(f"{self.name}: ")
        return None

    def _checked(self, value: str, where: str) -> str:
        if not value.strip():
            raise ConfigError(f"{self.name}: {where} is empty")
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value):
            raise ConfigError(
                f"{self.name}: {where} holds a line break or another control character; "
                "a secret is one line"
            )
        return value


def parse_secret(value: object, base_dir: Path = Path("."), name: str = "secret") -> SecretRef:
    """The reference in `value`; ValueError (without echoing the value) for anything else."""
    if not isinstance(value, str):
        raise ValueError("expected a ${env:NAME} or ${file:PATH} reference")
    match = _REFERENCE.match(value.strip())
    if not match:
        if value.strip().startswith("${"):
            raise ValueError("malformed secret reference: use ${env:NAME} or ${file:PATH}")
        raise ValueError(
            "a literal secret is not allowed in the config file: use ${env:NAME} or ${file:PATH}"
        )
    kind, target = match.group(1), match.group(2).strip()
    if kind == "env" and not _ENV_NAME.match(target):
        raise ValueError(f"invalid environment variable name {target!r}")
    return SecretRef(kind, target, base_dir, name)


def is_secret_reference(value: object) -> bool:
    return isinstance(value, str) and bool(_REFERENCE.match(value.strip()))


def resolve_secret(value: str | SecretRef, base_dir: Path | str = ".", name: str = "secret") -> str:
    """Resolve `${env:NAME}` or `${file:PATH}`; ConfigError names the property and what is missing."""
    if isinstance(value, SecretRef):
        return value.resolve()
    try:
        ref = parse_secret(value, Path(base_dir), name)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return ref.resolve()


def redact(value: object) -> object:
    """What may be shown of a secret property's value: a reference as is, anything else hidden."""
    if value is None:
        return None
    if isinstance(value, SecretRef):
        return value.reference
    if isinstance(value, str) and is_secret_reference(value):
        return value.strip()
    return REDACTED


def env_name_for(*parts: str) -> str:
    """An environment variable name built from object and property names: SCIMSYNC_SOURCE_DS_PASSWORD."""
    words = [re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_").upper() for part in parts]
    return "SCIMSYNC_" + "_".join(w for w in words if w)
