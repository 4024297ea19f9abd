"""Choosing a change detector: `auto` looks at what the server offers and says why it chose.

An Active Directory domain controller (supportedCapabilities 1.2.840.113556.1.4.800) means
DirSync on its default naming context.

A root DSE naming a change log (`changelog`, `lastChangeNumber`) means draft-changelog
(389-DS, PingDirectory, DSEE, OUD); a naming context holding an `auditContainer` (or a
readable cn=accesslog) means OpenLDAP's slapo-accesslog.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ldap3
from ldap3.core import exceptions as lexc

from toolkit.ldap.accesslog import LOG_BASE, AccesslogDetector
from toolkit.ldap.ad import AD_CAPABILITY
from toolkit.ldap.changelog import ChangelogDetector
from toolkit.ldap.changes import ChangeDetector
from toolkit.ldap.connection import close, connect_first, result_error
from toolkit.ldap.dirsync import DirSyncDetector
from toolkit.ldap.errors import ChangeFeedError
from toolkit.ldap.spec import LdapServerSpec
from toolkit.ldap.usnchanged import UsnChangedDetector

DETECTORS = {
    "changelog": ChangelogDetector,
    "accesslog": AccesslogDetector,
    "dirsync": DirSyncDetector,
    "usnchanged": UsnChangedDetector,  # AD without the DirSync right: never chosen by auto
}


def _read(conn: ldap3.Connection, base: str, attributes: list[str]) -> dict[str, list[str]] | None:
    """The attributes of one entry (lower-case names), or None if it is absent or hidden."""
    try:
        conn.search(base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
    except (lexc.LDAPNoSuchObjectResult, lexc.LDAPInsufficientAccessRightsResult):
        return None
    for item in conn.response or ():
        if item.get("type") == "searchResEntry":
            return {
                k.lower(): [v.decode(errors="replace") for v in vs]
                for k, vs in item["raw_attributes"].items()
            }
    return None


def probe_feed(servers: Sequence[LdapServerSpec]) -> tuple[str, str, str]:
    """(detector name, its base DN, reason) for the first server that answers.

    Raises ChangeFeedError saying what was looked for when the server offers neither feed.
    """
    conn, spec = connect_first(servers)
    try:
        dse = (
            _read(
                conn,
                "",
                [
                    "changelog",
                    "firstChangeNumber",
                    "lastChangeNumber",
                    "namingContexts",
                    "supportedCapabilities",
                    "defaultNamingContext",
                ],
            )
            or {}
        )
        if AD_CAPABILITY in dse.get("supportedcapabilities", []):
            base = (dse.get("defaultnamingcontext") or [""])[0]
            return (
                "dirsync",
                base,
                f"{spec.label} is an Active Directory domain controller (DirSync on {base})",
            )
        if dse.get("changelog") or dse.get("lastchangenumber"):
            base = (dse.get("changelog") or ["cn=changelog"])[0]
            first = (dse.get("firstchangenumber") or ["?"])[0]
            last = (dse.get("lastchangenumber") or ["?"])[0]
            return (
                "changelog",
                base,
                f"the root DSE of {spec.label} names a change log ({base}, changes {first} to {last})",
            )
        contexts = dse.get("namingcontexts", [])
        for context in contexts:
            entry = _read(conn, context, ["objectClass"])
            if entry and "auditcontainer" in {v.lower() for v in entry.get("objectclass", [])}:
                return (
                    "accesslog",
                    context,
                    f"{context} on {spec.label} is an OpenLDAP access log (auditContainer)",
                )
        if (
            LOG_BASE not in {c.lower() for c in contexts}
            and _read(conn, LOG_BASE, ["objectClass"]) is not None
        ):
            return (
                "accesslog",
                LOG_BASE,
                f"{LOG_BASE} on {spec.label} is readable (OpenLDAP access log)",
            )
        who = spec.bind_dn or "anonymous"
        raise ChangeFeedError(
            f"{spec.label} offers no change feed to {who}: its root DSE names no change log "
            f"(changelog / lastChangeNumber) and no naming context readable by {who} is an access log "
            f"(looked at {', '.join(contexts) or 'no naming contexts'} and {LOG_BASE}); enable the retro "
            "changelog (389-DS) or slapo-accesslog (OpenLDAP) and grant the sync user read access"
        )
    except lexc.LDAPException as exc:
        raise result_error(exc, "reading the root DSE", spec) from None
    finally:
        close(conn)


def make_detector(
    servers: Sequence[LdapServerSpec], kind: str = "auto", ignore_changes_by_dn: Iterable[str] = ()
) -> tuple[ChangeDetector, str]:
    """A change detector for `servers` and a sentence saying which one and why."""
    if kind == "auto":
        kind, base, reason = probe_feed(servers)
        reason = f"auto: {kind}, because {reason}"
    elif kind in DETECTORS:
        base, reason = "", f"{kind}, as configured"
    else:
        raise ValueError(f"unknown change detector {kind!r}; expected auto, {', '.join(DETECTORS)}")
    detector: ChangeDetector
    if kind == "accesslog":
        detector = AccesslogDetector(servers, ignore_changes_by_dn, log_base=base or LOG_BASE)
    elif kind == "dirsync":  # base "": the default naming context, read at first use
        detector = DirSyncDetector(servers, ignore_changes_by_dn, base=base)
    elif kind == "usnchanged":
        detector = UsnChangedDetector(servers, ignore_changes_by_dn)
    else:
        detector = ChangelogDetector(servers, ignore_changes_by_dn)
        if base:
            detector.base = base
    return detector, reason
