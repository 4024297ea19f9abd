"""The quick check: an object found unchanged is not mapped and compared again while nothing
its verdict depends on has changed (rsync's quick check, made exact).

A key digests every input of that verdict: the code and the mapping definition, the sync
class, the entry as read (every attribute value, in order), the target's id and version
(RFC 7643 §3.1: a resource's version changes whenever the resource does), and the references
resolved for the entry now (manager, members: ids that other objects' links decide). Equal
keys mean equal inputs, so the full comparison would find the object unchanged again. A
target without a version gets no key and is always compared; `--full-compare` compares all.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import toolkit.mapping
from toolkit.config.model import SyncClass
from toolkit.mapping.resource import ResourceMapping

#: The modules whose code decides what an entry maps to and whether it is unchanged.
_PACKAGE = Path(toolkit.mapping.__file__).parent
_ENGINE = Path(__file__).with_name("engine.py")


@cache
def _source_digest(files: frozenset[str]) -> bytes:
    digest = hashlib.sha256()
    for name in sorted(files):
        path = Path(name)  # by content: the same code installed elsewhere keeps its keys
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def code_digest(mapping: ResourceMapping) -> bytes:
    """The mapping package, the plan engine and any custom transformation's module."""
    files = {str(p) for p in _PACKAGE.glob("*.py")} | {str(_ENGINE)} | mapping.code_modules()
    return _source_digest(frozenset(files))


def _dumps(value: Any) -> bytes:
    """Values as bytes, by value only: no memo, so shared objects encode like copies."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=5)
    pickler.fast = True
    pickler.dump(value)
    return out.getvalue()


def _references_text(references: list[Any]) -> str:
    """The references as text, equal for equal values: self-delimiting pieces, the shapes
    derived attributes produce (a manager {"value": id}, members {"value": id, "type": t})
    written quickly and without regard to key order."""
    return ",".join(_text(value) for value in references)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if type(value) is list:
        return "L[" + ",".join(map(_text, value)) + "]"
    if type(value) is dict and "value" in value:
        if len(value) == 1:
            return "v" + repr(value["value"])
        if len(value) == 2 and "type" in value:
            return "m" + repr(value["value"]) + repr(value["type"])
    return "r" + repr(_canonical(value))


def _canonical(value: Any) -> Any:
    """Equal values, equal repr, whatever the order of dict keys."""
    kind = type(value)
    if kind is dict:
        return sorted([(k, v if type(v) is str else _canonical(v)) for k, v in value.items()])
    if kind is list:
        return [v if type(v) is str else _canonical(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Verdict:
    """The inputs of an unchanged verdict on one linked object."""

    context: bytes  # QuickCheck.context(): the code, the mapping and the sync class
    entry: Mapping[str, Any]
    target: Mapping[str, Any]
    references: list[Any]  # the values to_scim gives the derived attributes now


class QuickCheck:
    """Keys of objects found unchanged by earlier plans (entry key -> key), and new ones."""

    def __init__(self, verified: Mapping[str, bytes]):
        self.verified = verified
        self.found: dict[str, bytes] = {}  # keys of objects this plan found unchanged
        self.skipped = 0  # objects found unchanged by their key alone

    @staticmethod
    def context(sync_class: SyncClass, mapping: ResourceMapping) -> bytes:
        """What a class's verdicts share: the code, the mapping definition, the class."""
        definition = repr(sync_class) + mapping.fingerprint()
        return code_digest(mapping) + hashlib.sha256(definition.encode()).digest()

    @staticmethod
    def key(verdict: Verdict) -> bytes | None:
        """The key of an unchanged verdict on these inputs; None without a target version."""
        target = verdict.target
        version = (target.get("meta") or {}).get("version")
        if not isinstance(version, str) or not version:
            return None
        entry = verdict.entry
        data = b"".join(
            (
                verdict.context,
                f"{target.get('id')}\0{version}\0".encode(),
                # the LDAP reader's digest of the entry's bytes, else the entry's values
                getattr(entry, "digest", None) or _dumps(entry),
                _references_text(verdict.references).encode(),
            )
        )
        return hashlib.blake2b(data, digest_size=16).digest()

    def known(self, entry_key: str, verdict: Verdict) -> bool:
        """True when an earlier plan found this object unchanged on the same inputs."""
        key = self.verified.get(entry_key)
        return key is not None and key == self.key(verdict)

    def remember(self, entry_key: str, verdict: Verdict) -> None:
        """This plan found the object unchanged: its key, for the plans after it."""
        key = self.key(verdict)
        if key is not None and self.verified.get(entry_key) != key:
            self.found[entry_key] = key
