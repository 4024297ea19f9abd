"""LDIF (RFC 2849) reading: content records of an export, and LDIF fragments of change feeds.

Handles `version: 1`, comments, folded lines, base64 (`::`) values, `:<` file URLs, CRLF and
gzip. Change records (`changetype:`) are refused with the file and line, since an export of
entries is what a snapshot needs. `parse_changes` reads the `changes` attribute of a
cn=changelog entry, which is such an LDIF fragment (389-DS also folds it, base64-encodes
non-ASCII values and ends modify records with a NUL byte).
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from toolkit.ldap.errors import LdifError

Value = str | bytes

_GZIP_MAGIC = b"\x1f\x8b"
_MOD_OPS = ("add", "delete", "replace", "increment")


def value_of(raw: bytes) -> Value:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


@dataclass
class LdifRecord:
    """One entry of an LDIF file: its DN, attributes (lower-case names) and the line of `dn:`."""

    dn: str
    attributes: dict[str, list[Value]]
    line: int

    def as_entry(self) -> dict[str, object]:
        return {"dn": self.dn, **self.attributes}


@dataclass
class Modification:
    """One part of a change: `op` is add, delete, replace or increment."""

    op: str
    attribute: str
    values: list[Value] = field(default_factory=list)


def open_ldif(path: Path | str):
    """A binary file object for `path`, transparently gunzipped (by content, not by name)."""
    path = Path(path)
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


def _logical_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """Unfolded lines with the number of their first physical line; None ends a record.

    Comments (and their continuation lines) are dropped.
    """
    pending: bytes | None = None
    folded: list[bytes] = []  # continuation parts of `pending`, joined once (long base64 values)
    start = 0
    comment = False
    number = 0
    for number, raw in enumerate(lines, 1):
        if raw[:1] == b" ":
            if pending is None and not comment:
                raise ValueError(
                    f"{number}: a continuation line (starting with a space) follows nothing"
                )
            if not comment:
                folded.append(raw[1:].rstrip(b"\r\n"))
            continue
        if pending is not None:
            if folded:
                pending = pending + b"".join(folded)
                folded = []
            yield start, pending
            pending = None
        comment = raw[:1] == b"#"
        if comment:
            continue
        line = raw.rstrip(b"\r\n")
        if not line or line.isspace():
            yield number, None
            continue
        pending, start = line, number
    if pending is not None:
        yield start, pending + b"".join(folded)
    yield number + 1, None


def parse_line(line: bytes, base_dir: Path | None = None) -> tuple[str, Value]:
    """(attribute description, value) of one unfolded `attr: value` line; ValueError if invalid."""
    name, colon, rest = line.partition(b":")
    if not colon or not name:
        raise ValueError(f"expected 'attribute: value', got {line[:60].decode(errors='replace')!r}")
    attribute = name.decode(errors="replace").strip()
    if rest[:1] == b":":
        encoded = rest[1:].strip()
        try:
            return attribute, value_of(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError(f"invalid base64 value for {attribute}") from None
    if rest[:1] == b"<":
        return attribute, _read_url(rest[1:].strip().decode(errors="replace"), attribute, base_dir)
    return attribute, value_of(rest.lstrip(b" "))


def _read_url(url: str, attribute: str, base_dir: Path | None) -> bytes | str:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ValueError(f"only file:// URLs are supported for {attribute}, not {url!r}")
    path = Path(unquote(parsed.path))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return value_of(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read {url} for {attribute}: {exc.strerror}") from None


def read_records(path: Path | str) -> Iterator[LdifRecord]:
    """The content records of an LDIF file, in file order.

    Raises LdifError naming the file and line for anything that is not an entry: a change
    record, a line that is not `attribute: value`, bad base64, a record without `dn:`.
    """
    path = Path(path)
    try:
        handle = open_ldif(path)
    except OSError as exc:
        raise LdifError(f"cannot read LDIF file {path}: {exc.strerror}") from None
    with handle:
        try:
            yield from _records(handle, path)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise LdifError(f"cannot read LDIF file {path}: {exc}") from None


def _records(lines: Iterable[bytes], path: Path) -> Iterator[LdifRecord]:
    dn: str | None = None
    dn_line = 0
    attributes: dict[str, list[Value]] = {}
    first = True
    base_dir = path.parent
    names: dict[bytes, tuple[str, str]] = {}  # raw attribute -> (as written, lower case)
    logical = _logical_lines(lines)
    while True:
        try:
            number, line = next(logical)
        except StopIteration:
            return
        except ValueError as exc:
            raise LdifError(f"{path}:{exc}") from None
        if line is None:
            if dn is not None:
                yield LdifRecord(dn, attributes, dn_line)
            dn, attributes = None, {}
            continue
        name, colon, rest = line.partition(b":")
        known = names.get(name) if colon else None
        if known is not None and rest[:1] not in (b":", b"<"):  # the usual `attr: value` line
            attribute, key = known
            value = rest.lstrip(b" ")
            try:
                value = value.decode()
            except UnicodeDecodeError:
                pass
        else:
            try:
                attribute, value = parse_line(line, base_dir)
            except ValueError as exc:
                raise LdifError(f"{path}:{number}: {exc}") from None
            key = attribute.lower()
            if colon and name.strip() == name:
                names[name] = (attribute, key)
        if dn is None:
            if key == "version" and first:
                first = False
                if value != "1":
                    raise LdifError(f"{path}:{number}: unsupported LDIF version {value!r}")
                continue
            first = False
            if key != "dn":
                raise LdifError(
                    f"{path}:{number}: a record must start with 'dn:', found {attribute!r}"
                )
            if isinstance(value, bytes):
                raise LdifError(f"{path}:{number}: the DN is not UTF-8")
            dn, dn_line = value, number
            continue
        if key in ("changetype", "control"):
            kind = f" ({value})" if key == "changetype" else ""
            raise LdifError(
                f"{path}:{number}: change record{kind} for {dn!r}: only entry records (an export such as "
                "slapcat or ldapsearch output) can be read as a snapshot"
            )
        attributes.setdefault(key, []).append(value)


def parse_changes(raw: bytes | str, change_type: str) -> list[Modification]:
    """The modifications in a cn=changelog `changes` value of a change of `change_type`.

    Add records list `attr: value` lines; each attribute becomes one `add` modification. The
    others (modify, and the operational updates 389-DS records for modrdn) are `op: attr`,
    values, `-` blocks. Base64 values, folded lines, CRLF and 389-DS's trailing NUL are handled.
    ValueError names the line of the fragment that is wrong.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    lines = raw.replace(b"\x00", b"").split(b"\n")
    mods: list[Modification] = []
    if change_type.lower() == "add":
        by_attr: dict[str, Modification] = {}
        for number, line in _logical_lines(lines):
            if line is None:
                continue
            attribute, value = _parse_fragment_line(line, number)
            key = attribute.lower()
            if key not in by_attr:
                by_attr[key] = Modification("add", attribute)
                mods.append(by_attr[key])
            by_attr[key].values.append(value)
        return mods
    current: Modification | None = None
    for number, line in _logical_lines(lines):
        if line is None:
            continue
        if line.strip() == b"-":
            current = None
            continue
        attribute, value = _parse_fragment_line(line, number)
        if current is None:
            op = attribute.lower()
            if op not in _MOD_OPS or not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"changes line {number}: expected 'add:', 'delete:' or 'replace:', got {attribute!r}"
                )
            current = Modification(op, value.strip())
            mods.append(current)
        else:
            current.values.append(value)
    return mods


def _parse_fragment_line(line: bytes, number: int) -> tuple[str, Value]:
    try:
        return parse_line(line)
    except ValueError as exc:
        raise ValueError(f"changes line {number}: {exc}") from None
