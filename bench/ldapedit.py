"""LDAP writes the benches make, with Debian's ldapmodify (as an administrator would)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any


def modify_titles(slapd: Any, folder: Path, dns: list[str], tag: str) -> float:
    """`title: <tag> <i>` on these entries in one ldapmodify run (the LDAP password is in
    `folder`/ldap-password); returns the seconds it took."""
    ldif = folder / f"{tag.replace(' ', '-')}.ldif"
    with ldif.open("w") as out:
        for i, dn in enumerate(dns):
            out.write(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: {tag} {i}\n-\n\n")
    started = time.perf_counter()
    done = subprocess.run(
        ["ldapmodify", "-x", "-H", slapd.url, "-D", slapd.admin_dn, "-y", str(folder / "ldap-password"), "-f", str(ldif)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"ldapmodify failed: {done.stderr.strip()}")
    return time.perf_counter() - started
