"""Syntax and schema check of a scim-resources.xml file (PingDataSync's resource-mapping-file).

This module only answers "is the file well-formed and valid against the XSD?": config loading
needs that answer and may not import `toolkit.mapping`, which builds the mapping model from the
same file (and calls `read_mapping_tree` so that a file is parsed once).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

#: The UnboundID/Ping SCIM SDK schema (resource/resources.xsd), copied unmodified.
XSD_PATH = Path(__file__).with_name("scim-resources.xsd")

#: The namespace of the root element; the XSD leaves children unqualified.
NAMESPACE = "http://www.unboundid.com/scim-ldap"


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH), _parser()))


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD or network fetches: a mapping file is data, never a loader.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False
    )


def read_mapping_tree(path: str | Path) -> tuple[etree._ElementTree | None, list[str]]:
    """Parse and validate `path`; return the tree (None if unreadable or malformed) and errors.

    Errors read "FILE:LINE: message". A tree is returned with schema errors too, so that
    callers may decide; `toolkit.mapping` refuses any file with errors.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [f"{name}: cannot read the resource mapping file: {exc.strerror or exc}"]
    try:
        root = etree.fromstring(data, _parser(), base_url=name)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else 1
        message = exc.msg or str(exc)
        # lxml appends "(FILE, line N)" to some messages; the prefix says it already.
        message = message.split(f" ({name}, line")[0].strip()
        return None, [f"{name}:{line}: malformed XML: {message}"]
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        # entities stay unexpanded (and the XSD check cannot read their references): refused
        line = data[: max(data.find(b"<!DOCTYPE"), 0)].count(b"\n") + 1
        return None, [
            f"{name}:{line}: a DOCTYPE (DTD or entity declarations) is not allowed in a resource "
            "mapping file; remove it and write the values in place of entity references"
        ]
    schema = _schema()
    try:
        valid = schema.validate(tree)
    except etree.XMLSchemaValidateError as exc:  # libxml2 gave up on the document
        return None, [f"{name}:1: cannot check the file against the schema: {exc}"]
    if valid:
        return tree, []
    errors = [f"{name}:{entry.line}: {_clean(entry.message)}" for entry in schema.error_log]
    return tree, errors


def _clean(message: str) -> str:
    # libxml2 names elements as "{namespace}tag" only for the root; children are bare.
    return message.replace(f"{{{NAMESPACE}}}", "scim-ldap:")


def validate_mapping_file(path: str | Path) -> list[str]:
    """All syntax and XSD errors of a scim-resources.xml file, as "FILE:LINE: message"."""
    return read_mapping_tree(path)[1]
