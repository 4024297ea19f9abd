"""Active Directory's data as it is: objectGUID, extended DNs, ranged values, DirSync's control.

- objectGUID is 16 bytes (little-endian fields); entries carry it in its canonical string form
  (`5e1f...-...`, lower case), the form `<GUID=...>` DNs and externalIds use. Filters need the
  bytes again (`\\04\\3d...`): `filter_value`.
- An extended DN (`<GUID=...>;<SID=...>;CN=...`) is parsed by `parse_extended_dn`.
- AD returns at most MaxValRange (1500) values of an attribute per read, named
  `member;range=0-1499`; `complete_ranges` reads the rest (`member;range=1500-*`, ...).
- DirSync's request control is built here with its flags as a 4-byte INTEGER: ldap3 encodes
  them from a C long (8 bytes on Linux), which Windows AD refuses (ldap3 issue 642).
"""

from __future__ import annotations

import ctypes
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ldap3.protocol.controls import build_control
from ldap3.protocol.microsoft import DirSyncControlRequestValue

GUID_ATTRIBUTE = "objectGUID"
# supportedCapabilities of an Active Directory (or Samba AD) domain controller
AD_CAPABILITY = "1.2.840.113556.1.4.800"
DIRSYNC_OID = "1.2.840.113556.1.4.841"
DIRSYNC_ANCESTORS_FIRST = 0x00000800
DIRSYNC_INCREMENTAL_VALUES = 0x80000000
DIRSYNC_OBJECT_SECURITY = 0x00000001
# userAccountControl: ACCOUNTDISABLE
UAC_DISABLED = 0x2

_RANGED = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
_EXTENDED = re.compile(r"<(?P<kind>GUID|SID|WKGUID)=(?P<value>[^>]*)>;?", re.IGNORECASE)


def guid_text(value: bytes | str) -> str:
    """An objectGUID as read (16 bytes; a str when those bytes happened to be UTF-8) in its
    canonical string form. A value already in string form is returned in lower case."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    if len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    text = raw.decode("ascii", "replace").strip("{}").lower()
    return str(uuid.UUID(text))  # ValueError: not a GUID


def guid_bytes(text: str) -> bytes:
    """The objectGUID bytes of a GUID in string form (with or without braces)."""
    return uuid.UUID(text.strip().strip("{}")).bytes_le


def filter_value(attribute: str, value: str) -> str | None:
    """The filter assertion for `attribute` = `value` when it must be sent as bytes (objectGUID:
    `\\04\\3d...`), else None (the caller escapes the text as usual)."""
    if attribute.lower() != "objectguid":
        return None
    return "".join(f"\\{b:02x}" for b in guid_bytes(value))


def normalize_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry read from AD with objectGUID in string form (in place; others untouched)."""
    values = entry.get("objectguid")
    if values:
        try:
            entry["objectguid"] = [guid_text(v) for v in values]
        except ValueError:
            pass  # not AD's 16-byte GUID: left as read
    return entry


@dataclass(frozen=True)
class ExtendedDn:
    dn: str
    guid: str | None = None
    sid: str | None = None


def parse_extended_dn(text: str) -> ExtendedDn:
    """`<GUID=...>;<SID=...>;CN=x,DC=...` (parts optional, any order) as its DN, GUID and SID.
    A plain DN comes back as it is."""
    guid = sid = None
    pos = 0
    while True:
        match = _EXTENDED.match(text, pos)
        if match is None:
            break
        kind, value = match["kind"].upper(), match["value"]
        if kind == "GUID":
            guid = guid_text(bytes.fromhex(value)) if len(value) == 32 else value.lower()
        elif kind == "SID":
            sid = value
        pos = match.end()
    return ExtendedDn(text[pos:], guid, sid)


def ranged_name(name: str) -> tuple[str, int, int | None] | None:
    """`member;range=0-1499` -> ("member", 0, 1499); `...;range=1500-*` -> (.., 1500, None);
    None for a name without a range."""
    match = _RANGED.match(name)
    if match is None:
        return None
    high = match["high"]
    return match["name"].lower(), int(match["low"]), None if high == "*" else int(high)


# reads one attribute of one entry: (dn, attribute request such as "member;range=1500-*")
# -> {attribute name as returned: values}
ReadRange = Callable[[str, str], dict[str, list[Any]]]


def complete_ranges(entry: dict[str, Any], read: ReadRange) -> dict[str, Any]:
    """The entry with every ranged attribute (`member;range=0-1499`) read to its end and
    stored under its plain name (in place). Raises ValueError when a range does not go on
    where the last one ended (the values would be incomplete)."""
    for name in [n for n in entry if ";" in n]:
        ranged = ranged_name(name)
        if ranged is None:
            continue
        base, _, high = ranged
        values = list(entry.pop(name))
        while high is not None:
            got = read(entry["dn"], f"{base};range={high + 1}-*")
            part = next(
                ((r, v) for n, v in got.items() if (r := ranged_name(n)) and r[0] == base), None
            )
            if part is None and got.get(base):  # a reader that follows ranges itself
                part = ((base, high + 1, None), got[base])  # (ldap3's auto_range): the rest
            if part is None:
                raise ValueError(
                    f"{entry['dn']}: {base} values after {high} could not be read (no range returned)"
                )
            (_, low, high), more = part
            if low != len(values):
                raise ValueError(f"{entry['dn']}: {base} range starts at {low}, not {len(values)}")
            values.extend(more)
        entry[base] = entry.get(base, []) + values
    return entry


def dirsync_control(cookie: bytes | None, flags: int, max_bytes: int = 1 << 30) -> tuple:
    """The DirSync request control (critical), its flags a 4-byte INTEGER as AD requires."""
    value = DirSyncControlRequestValue()
    value["Flags"] = ctypes.c_int32(flags).value  # 0x80000800 -> a negative 32-bit int
    value["MaxBytes"] = max_bytes
    value["Cookie"] = cookie or b""
    return build_control(DIRSYNC_OID, True, value)


def is_disabled(user_account_control: int | str) -> bool:
    return bool(int(user_account_control) & UAC_DISABLED)
