"""The quick check: an object found unchanged is not mapped and compared again while nothing
its verdict depends on has changed (rsync's quick check, made exact).

A key digests every input of that verdict: the code and the mapping definition, the sync
class, the entry as read (every attribute value, in order), the target's id and version
(RFC 7643 §3.1: a resource's version changes whenever the resource does), and what the
references of the entry resolve to now (the DNs of manager and members: their resource types
and ids, which other objects' links decide). Equal keys mean equal inputs, so the full
comparison would find the object unchanged again. A target without a version gets no key
and is always compared; `--full-compare` compares all.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Mapping
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


class QuickCheck:
    """Keys of objects found unchanged by earlier plans (entry key -> key), and new ones."""

    def __init__(self, keys: Mapping[str, bytes]):
        self.keys = keys
        self.found: dict[str, bytes] = {}  # keys of objects this plan found unchanged
        self.quick_checked = 0  # objects found unchanged by their key alone

    @staticmethod
    def context(sync_class: SyncClass, mapping: ResourceMapping) -> bytes:
        """What a class's verdicts share: the code, the mapping definition, the class."""
        definition = repr(sync_class) + mapping.fingerprint()
        return code_digest(mapping) + hashlib.sha256(definition.encode()).digest()

    @staticmethod
    def key(
        context: bytes, entry: Mapping[str, Any], target: Mapping[str, Any], references: str
    ) -> bytes | None:
        """The key of an unchanged verdict on these inputs; None without a target version.
        `context` is context()'s; `references` says what the resolver answers now for each
        DN the entry references (the engine's _Resolver.outcome)."""
        version = (target.get("meta") or {}).get("version")
        if not isinstance(version, str) or not version:
            return None
        data = b"".join(
            (
                context,
                f"{target.get('id')}\0{version}\0".encode(),
                # the LDAP reader's digest of the entry's bytes, else the entry's values
                getattr(entry, "digest", None) or _dumps(entry),
                references.encode(),
            )
        )
        return hashlib.blake2b(data, digest_size=16).digest()

    def known(self, entry_key: str, key: bytes | None) -> bool:
        """True when an earlier plan found this object unchanged on the inputs of `key`."""
        return key is not None and self.keys.get(entry_key) == key

    def remember(self, entry_key: str, key: bytes | None) -> None:
        """This plan found the object unchanged on the inputs of `key`: for the plans after."""
        if key is not None and self.keys.get(entry_key) != key:
            self.found[entry_key] = key
