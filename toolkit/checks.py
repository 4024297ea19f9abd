"""One line of a checklist (prepare-endpoint-server and the connection checks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None  # what to do about a failure
