"""`scimsync demo` (what `make demo` runs): the main job on the embedded default, end to end.

It starts the lab, shows that both endpoints answer, and always stops the lab again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from toolkit.lab import lab


def run(users: int = 2000, groups: int = 50, say: Callable[[str], None] = print) -> None:
    with tempfile.TemporaryDirectory(prefix="scimsync-demo-") as tmp:
        folder = Path(tmp) / "lab"
        started = time.monotonic()
        state = lab.up(folder, users=users, groups=groups)
        try:
            say(
                f"1. lab up ({time.monotonic() - started:.1f} s): slapd at {state.ldap_url}, SCIM at {state.scim_url}"
            )
            say(f"   config folder {state.config} (secrets as files, mode 0600)")
            counts = lab.ldap_counts(state)
            say(
                f"2. LDAP answers: {counts['users']} entries in class users, {counts['groups']} in class groups"
            )
            spc = lab.scim_service_provider_config(state)
            features = ", ".join(
                f"{name} {'yes' if spc.get(name, {}).get('supported') else 'no'}"
                for name in ("patch", "bulk", "filter", "etag", "sort")
            )
            say(f"3. SCIM answers: ServiceProviderConfig says {features}")
        finally:
            lab.down(folder)
            say("4. lab down: both servers stopped")
