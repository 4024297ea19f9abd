"""The `ldif` sync source: an LDIF export read as a directory snapshot.

Analysts can plan a migration from an export (slapcat, ldapsearch, a vendor tool) without
access to the live directory. It offers the same `iter_entries` as the LDAP source, filtering
by base DN (subtree) and an RFC 4515 filter in memory; it has no change feed, so it serves
dry-run and resync, not realtime sync.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from toolkit.config.dn import DNError, dn_key
from toolkit.entry import Entry
from toolkit.ldap.errors import LdapOperationError, LdifError
from toolkit.ldap.ldif import read_records
from toolkit.ldap.match import compile_filter

ALL_USER = "*"
ALL_OPERATIONAL = "+"


class LdifSource:
    """Entries of one LDIF file (plain or gzip) below the given base DNs."""

    def __init__(self, path: Path | str, base_dns: Sequence[str] = ()):
        self.path = Path(path)
        self.base_dns = list(base_dns)
        if not self.path.is_file():
            raise LdifError(f"LDIF file {self.path} does not exist")

    def iter_entries(
        self,
        base_dn: str,
        search_filter: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
        page_size: int | None = None,
        split: bool = False,  # one file: never split
        ids: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Entries at or below `base_dn` that match `search_filter`, in file order.

        `attributes` limits the attributes returned; `*` (or none given) returns every
        attribute of the export, operational ones such as entryUUID included. Raises
        LdapOperationError when nothing in the file lies at or below `base_dn`, as a directory
        would for a missing base, so that a wrong base DN never reads as an empty directory.
        """
        predicate = compile_filter(search_filter)
        try:
            base = dn_key(base_dn)
        except DNError as exc:
            raise LdapOperationError(f"invalid base DN {base_dn!r}: {exc}") from None
        keep = _projection(attributes)
        base_text = _squash(base_dn)
        found_base = False
        for record in read_records(self.path):
            try:
                inside = _quick_below(record.dn, base_text) or _below(record.dn, base)
            except DNError as exc:
                raise LdifError(
                    f"{self.path}:{record.line}: invalid DN {record.dn!r}: {exc}"
                ) from None
            if not inside:
                continue
            found_base = True
            entry = record.as_entry()
            if predicate(entry):
                yield (
                    entry
                    if keep is None
                    else {k: v for k, v in entry.items() if k == "dn" or k in keep}
                )
        if not found_base:
            raise LdapOperationError(f"no entry at or below {base_dn} in {self.path}", 32)

    def iter_all(
        self, search_filter: str = "(objectClass=*)", attributes: Sequence[str] | None = None
    ) -> Iterator[Entry]:
        for base_dn in self.base_dns:
            yield from self.iter_entries(base_dn, search_filter, attributes)

    def get_entry(self, dn: str, attributes: Sequence[str] | None = None) -> Entry | None:
        """The entry at `dn` in the file, or None."""
        wanted = dn_key(dn)
        keep = _projection(attributes)
        for record in read_records(self.path):
            if dn_key(record.dn) == wanted:
                entry = record.as_entry()
                return (
                    entry
                    if keep is None
                    else {k: v for k, v in entry.items() if k == "dn" or k in keep}
                )
        return None

    def close(self) -> None:
        """Nothing to release: the file is opened per read."""


def _projection(attributes: Sequence[str] | None) -> set[str] | None:
    if not attributes:
        return None
    wanted = {a.lower() for a in attributes}
    if ALL_USER in wanted or ALL_OPERATIONAL in wanted:
        return None
    return wanted


def _squash(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


def _quick_below(dn: str, base_text: str) -> bool:
    """A cheap sure "yes" for the usual case (same spelling); False means "check properly"."""
    text = _squash(dn)
    if text == base_text:
        return True
    if not text.endswith("," + base_text):
        return False
    cut = len(text) - len(base_text) - 1
    backslashes = len(text[:cut]) - len(text[:cut].rstrip("\\"))
    return backslashes % 2 == 0


def _below(dn: str, base: tuple) -> bool:
    child = dn_key(dn)
    return len(child) >= len(base) and child[len(child) - len(base) :] == base
