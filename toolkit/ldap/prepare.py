"""prepare-endpoint-server for LDAP sources: check (and optionally set up) what a sync needs.

The checks, in order: the server answers; with admin credentials and `create_sync_user`,
the sync user is created with read-only rights (389-DS: ACIs on each base DN and on
cn=changelog; OpenLDAP: olcAccess rules through cn=config, or the exact slapd.conf lines to
add when cn=config is not writable); the sync user binds; each base DN is readable, unique
ids included; the change feed is enabled and readable by the sync user; and it is retained
long enough. Each check is a CheckResult with the fix for a failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import replace

import ldap3
from ldap3.core import exceptions as lexc

from toolkit.checks import CheckResult
from toolkit.config.dn import DNError, dn_key, is_within, parse_dn
from toolkit.config.durations import format_duration
from toolkit.ldap.accesslog import LOG_BASE, WRITE_FILTER
from toolkit.ldap.changelog import ChangelogDetector
from toolkit.ldap.connection import close, connect
from toolkit.ldap.detect import probe_feed
from toolkit.ldap.dirsync import REPLICATING_CHANGES, RIGHT, DirSyncDetector
from toolkit.ldap.errors import (
    ChangeFeedError,
    LdapBindError,
    LdapConnectError,
    LdapError,
    LdapTlsError,
)
from toolkit.ldap.spec import LdapServerSpec
from toolkit.ldap.usnchanged import UsnChangedDetector

RETRO_CHANGELOG = "cn=Retro Changelog Plugin,cn=plugins,cn=config"
MIN_RETENTION_SECONDS = 24 * 3600
_389_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# --- rules and entries for the sync user ------------------------------------------------------


def aci_for_data(sync_dn: str) -> str:
    """389-DS ACI: read, search and compare on everything but passwords, operational attributes included."""
    return (
        f'(targetattr != "userPassword")(version 3.0; acl "scimsync read-only {sync_dn}"; '
        f'allow (read, search, compare) userdn = "ldap:///{sync_dn}";)'
    )


def aci_for_changelog(sync_dn: str) -> str:
    return (
        f'(targetattr = "*")(version 3.0; acl "scimsync changelog read {sync_dn}"; '
        f'allow (read, search, compare) userdn = "ldap:///{sync_dn}";)'
    )


def olc_access_for_data(sync_dn: str) -> list[str]:
    """OpenLDAP rules for a data database: no passwords, read everything else; others unaffected."""
    return [
        f'to attrs=userPassword by dn.exact="{sync_dn}" none by * break',
        f'to * by dn.exact="{sync_dn}" read by * break',
    ]


def olc_access_for_log(sync_dn: str) -> list[str]:
    return [f'to * by dn.exact="{sync_dn}" read by * break']


def ssha(password: str) -> str:
    """An {SSHA} userPassword value (both OpenLDAP and 389-DS verify it)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def sync_user_entry(
    sync_dn: str, password: str, flavor: str
) -> tuple[list[str], dict[str, list[str]]]:
    """Object classes and attributes for a sync user entry, chosen by its RDN attribute."""
    rdn_attr, rdn_value = parse_dn(sync_dn)[0][0]
    secret = password if flavor == "389" else ssha(password)  # 389-DS hashes clear text itself
    if rdn_attr.lower() == "uid":
        classes = ["top", "account", "simpleSecurityObject"]
        attrs = {"uid": [rdn_value], "userPassword": [secret]}
    else:
        classes = ["top", "applicationProcess", "simpleSecurityObject"]
        attrs = {"cn": [rdn_value], "userPassword": [secret]}
        if rdn_attr.lower() != "cn":
            raise ValueError(f"the sync user's DN {sync_dn} must start with cn= or uid=")
    attrs["description"] = ["scimsync read-only sync user"]
    return classes, attrs


# --- the checks -------------------------------------------------------------------------------


def prepare_ldap_server(
    server: LdapServerSpec,
    base_dns: Sequence[str],
    *,
    change_detector: str = "auto",
    admin_dn: str | None = None,
    admin_password: str | None = None,
    create_sync_user: bool = False,
    unique_id_attribute: str = "entryUUID",
) -> list[CheckResult]:
    """Check `server` for use as a sync source; see the module docstring for the checks."""
    results: list[CheckResult] = []
    anonymous = replace(server, bind_dn=None, password=None)
    try:
        probe = connect(anonymous)
        flavor = _flavor(probe)
        close(probe)
        results.append(
            CheckResult("server answers", True, f"{server.label} ({_flavor_name(flavor)})")
        )
    except LdapBindError:  # anonymous binds refused: the server answers all the same
        flavor = "unknown"
        results.append(
            CheckResult("server answers", True, f"{server.label} (anonymous bind refused)")
        )
    except (LdapConnectError, LdapTlsError) as exc:
        results.append(
            CheckResult(
                "server answers",
                False,
                str(exc),
                "check server-host-name, server-port and connection-security, that the server runs, "
                "and for TLS that trust-ca-file holds the CA that signed the server's certificate",
            )
        )
        return results
    sync_dn = server.bind_dn
    if create_sync_user:
        results.extend(_create_sync_user(server, base_dns, admin_dn, admin_password, flavor))
    try:
        conn = connect(server)
    except LdapError as exc:
        fix = (
            "check bind-dn and password of the external server, or create the user: "
            "prepare-endpoint-server --create-sync-user --admin-bind-dn DN --admin-password-file FILE"
        )
        results.append(CheckResult("sync user binds", False, str(exc), fix))
        return results
    try:
        results.append(CheckResult("sync user binds", True, f"bound as {sync_dn or 'anonymous'}"))
        for base_dn in base_dns:
            results.append(_check_base(conn, server, base_dn, unique_id_attribute, flavor))
    finally:
        close(conn)
    feed = _check_feed(server, change_detector, flavor)
    results.extend(feed)
    if feed and feed[0].ok:
        results.append(_check_retention(server, admin_dn, admin_password, flavor, feed[0].detail))
    return results


def _flavor(conn: ldap3.Connection) -> str:
    """389, openldap or unknown, from the root DSE."""
    try:
        conn.search("", "(objectClass=*)", ldap3.BASE, attributes=["vendorName", "objectClass"])
    except lexc.LDAPException:
        return "unknown"
    for item in conn.response or ():
        attrs = {
            k.lower(): [v.decode(errors="replace") for v in vs]
            for k, vs in item["raw_attributes"].items()
        }
        if any("389" in v for v in attrs.get("vendorname", [])):
            return "389"
        if "openldaprootdse" in {v.lower() for v in attrs.get("objectclass", [])}:
            return "openldap"
    return "unknown"


def _flavor_name(flavor: str) -> str:
    return {"389": "389 Directory Server", "openldap": "OpenLDAP"}.get(flavor, "LDAP server")


def _read_fix(flavor: str, sync_dn: str | None, base_dn: str) -> str:
    who = sync_dn or "anonymous"
    if flavor == "389":
        return f"add to {base_dn}: aci: {aci_for_data(who)}"
    if flavor == "openldap":
        rules = " and ".join(f"'access {r}'" for r in olc_access_for_data(who))
        return (
            f"in the database of {base_dn}, before its other access rules, add {rules} "
            "(slapd.conf), or the same as olcAccess: {0}... values (cn=config)"
        )
    return f"grant {who} read, search and compare on {base_dn}"


def _check_base(
    conn: ldap3.Connection, server: LdapServerSpec, base_dn: str, unique_id: str, flavor: str
) -> CheckResult:
    name = f"read {base_dn}"
    try:
        conn.search(
            base_dn,
            "(objectClass=*)",
            ldap3.SUBTREE,
            attributes=["objectClass", unique_id],
            paged_size=100,
        )
    except lexc.LDAPNoSuchObjectResult:
        return CheckResult(
            name,
            False,
            f"{base_dn} does not exist on {server.label} or {server.bind_dn or 'anonymous'} cannot see it",
            _read_fix(flavor, server.bind_dn, base_dn) + "; check the base-dn spelling too",
        )
    except lexc.LDAPException as exc:
        return CheckResult(
            name,
            False,
            f"search of {base_dn} failed: {exc}",
            _read_fix(flavor, server.bind_dn, base_dn),
        )
    entries = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
    _abandon_paged(conn, base_dn)
    with_id = sum(
        1
        for r in entries
        if any(k.lower() == unique_id.lower() and v for k, v in r["raw_attributes"].items())
    )
    if not entries:
        return CheckResult(
            name,
            False,
            f"{base_dn} returned no entries",
            _read_fix(flavor, server.bind_dn, base_dn),
        )
    if not with_id:
        return CheckResult(
            name,
            False,
            f"{len(entries)} entries in the first page, but none shows {unique_id}",
            _read_fix(flavor, server.bind_dn, base_dn)
            + f" (the rule must cover the operational attribute {unique_id})",
        )
    return CheckResult(
        name, True, f"{len(entries)} entries in the first page of 100, {unique_id} readable"
    )


def _abandon_paged(conn: ldap3.Connection, base_dn: str) -> None:
    control = (conn.result.get("controls") or {}).get("1.2.840.113556.1.4.319")
    cookie = control["value"]["cookie"] if control else None
    if cookie:
        try:
            conn.search(
                base_dn,
                "(objectClass=*)",
                ldap3.SUBTREE,
                attributes=["1.1"],
                paged_size=0,
                paged_cookie=cookie,
            )
        except lexc.LDAPOperationResult:  # Samba refuses a page of size 0: the search ends anyway
            pass


def _feed_fix(flavor: str, sync_dn: str | None) -> str:
    who = sync_dn or "anonymous"
    if flavor == "389":
        return (
            "enable the retro changelog (dsconf INSTANCE plugin retro-changelog enable; "
            "dsconf INSTANCE plugin retro-changelog set --attribute nsuniqueid:targetUniqueId --max-age 7d; "
            f"restart), then add to cn=changelog: aci: {aci_for_changelog(who)}"
        )
    if flavor == "openldap":
        return (
            "load slapo-accesslog with a cn=accesslog database (logops writes, logsuccess TRUE, "
            f"logpurge 07+00:00 01+00:00), and in that database add 'access {olc_access_for_log(who)[0]}' "
            "before its other access rules (slapd.conf) or olcAccess: {0}"
            + olc_access_for_log(who)[0]
            + " (cn=config)"
        )
    return "enable the server's change log (cn=changelog) and let the sync user read it and the root DSE"


def _check_feed(server: LdapServerSpec, configured: str, flavor: str) -> list[CheckResult]:
    try:
        kind, base, reason = probe_feed([server])
    except ChangeFeedError as exc:
        return [
            CheckResult("change feed enabled", False, str(exc), _feed_fix(flavor, server.bind_dn))
        ]
    except LdapError as exc:
        return [
            CheckResult("change feed enabled", False, str(exc), _feed_fix(flavor, server.bind_dn))
        ]
    if configured == "usnchanged" and kind == "dirsync":  # AD polled without DirSync's right
        kind, reason = "usnchanged", reason.replace("DirSync", "uSNChanged polling")
    results = [CheckResult("change feed enabled", True, f"{kind}: {reason}")]
    if configured not in ("auto", kind):
        results.append(
            CheckResult(
                "change detector matches",
                False,
                f"the source is configured with change-detector: {configured}, but {server.label} offers {kind}",
                f"set change-detector: {kind} (or auto) on the sync source",
            )
        )
    results.append(_check_feed_readable(server, kind, base, flavor))
    return results


def _check_feed_readable(server: LdapServerSpec, kind: str, base: str, flavor: str) -> CheckResult:
    name = "change feed readable"
    try:
        conn = connect(server)
    except LdapError as exc:
        return CheckResult(name, False, str(exc), None)
    try:
        if kind == "dirsync":
            return _check_dirsync(server, base)
        if kind == "usnchanged":
            return _check_usnchanged(server, base)
        if kind == "changelog":
            detector = ChangelogDetector([server])
            try:
                first, last = detector.bounds()
            finally:
                detector.close()
            if last == 0:
                return CheckResult(name, True, f"{base} is empty so far (no change recorded yet)")
            low = max(first, last - 9)
            conn.search(
                base, f"(&(changeNumber>={low})(changeNumber<={last}))", attributes=["changeNumber"]
            )
            seen = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
            if not seen:
                return CheckResult(
                    name,
                    False,
                    f"the root DSE shows changes {first} to {last}, but {server.bind_dn or 'anonymous'} sees none of "
                    f"changes {low} to {last} in {base}",
                    _feed_fix(flavor, server.bind_dn),
                )
            return CheckResult(
                name, True, f"changes {first} to {last}; read {len(seen)} of the latest"
            )
        conn.search(base, WRITE_FILTER, attributes=["reqStart"], paged_size=5)
        seen = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
        _abandon_paged_filter(conn, base, WRITE_FILTER)
        detail = f"{base} readable" + (
            f", {len(seen)} write records in the first page" if seen else " (no writes logged yet)"
        )
        return CheckResult(name, True, detail)
    except (lexc.LDAPException, LdapError) as exc:
        return CheckResult(
            name, False, f"reading {base} failed: {exc}", _feed_fix(flavor, server.bind_dn)
        )
    finally:
        close(conn)


def dirsync_fix(sync_dn: str | None, base: str) -> str:
    """How to give the sync user the right DirSync needs, in Windows' and Samba's words."""
    who = sync_dn or "the sync user"
    return (
        f'grant {who} the "{RIGHT}" extended right (DS-Replication-Get-Changes, '
        f"{REPLICATING_CHANGES}) on the domain root {base}, this object only: in Active "
        f"Directory Users and Computers, {base} > Properties > Security > Advanced > Add; or "
        f'dsacl "{base}" /G "DOMAIN\\user:CA;{RIGHT}"; on Samba, samba-tool dsacl set '
        f'--objectdn="{base}" --sddl="(OA;;CR;{REPLICATING_CHANGES};;SID of the user)". '
        "Without it, set change-detector: usnchanged on the sync source (polls uSNChanged: "
        "read access is enough)"
    )


def _check_usnchanged(server: LdapServerSpec, base: str) -> CheckResult:
    """uSNChanged polling needs the recent objects and, for deletes, the tombstones in
    CN=Deleted Objects, which AD shows only to administrators unless granted."""
    name = "change feed readable"
    usn = UsnChangedDetector([server], base=base)
    try:
        readable = usn.deleted_objects_readable()
        # the last thousand USNs: enough to show the objects are readable
        changes, _ = usn.poll(usn._cursor(max(usn._highest() - 1000, 0)))
    finally:
        usn.close()
    if not readable:
        deleted = f"CN=Deleted Objects,{usn.base}"
        who = server.bind_dn or "the sync user"
        return CheckResult(
            name,
            False,
            f"{who} cannot read {deleted}: deletes would go unseen",
            f'grant {who} List Contents and Read Property on {deleted}: dsacls "{deleted}" '
            f'/takeownership, then dsacls "{deleted}" /G "DOMAIN\\user:LCRP"; on Samba, '
            f'samba-tool dsacl set --objectdn="{deleted}" --sddl="(A;;LCRP;;;SID of the user)"; '
            f"or use change-detector: dirsync with the {RIGHT} right",
        )
    return CheckResult(name, True, f"uSNChanged readable: {len(changes)} recent users and groups")


def _check_dirsync(server: LdapServerSpec, base: str) -> CheckResult:
    """A DirSync from nothing (object GUIDs only): refused without Replicating Directory
    Changes."""
    name = "change feed readable"
    detector = DirSyncDetector([server], base=base)
    try:
        detector.cursor_at_end()
    except LdapError as exc:
        insufficient = getattr(exc, "result_code", None) == 50 or "insufficient" in str(exc)
        return CheckResult(
            name,
            False,
            f"DirSync on {base or 'the domain'} as {server.bind_dn or 'anonymous'} failed: {exc}",
            dirsync_fix(server.bind_dn, detector.base or base)
            if insufficient
            else "check that the sync user can bind and read the domain",
        )
    finally:
        detector.close()
    return CheckResult(name, True, f"DirSync on {detector.base} answers with a cookie")


def _abandon_paged_filter(conn: ldap3.Connection, base: str, search_filter: str) -> None:
    control = (conn.result.get("controls") or {}).get("1.2.840.113556.1.4.319")
    cookie = control["value"]["cookie"] if control else None
    if cookie:
        conn.search(
            base,
            search_filter,
            ldap3.SUBTREE,
            attributes=["1.1"],
            paged_size=0,
            paged_cookie=cookie,
        )


def parse_389_age(text: str) -> int | None:
    """nsslapd-changelogmaxage ('7d', '12h', '30m', '2w', '3600') in seconds; None if unreadable."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdwSMHDW]?)\s*", text or "")
    if not match:
        return None
    return int(match.group(1)) * _389_UNITS[(match.group(2) or "s").lower()]


def parse_logpurge_age(text: str) -> int | None:
    """The age part of olcAccessLogPurge / logpurge ('07+00:00 01+00:00' or '1:00') in seconds."""
    age = (text or "").split()[0] if text and text.split() else ""
    match = re.fullmatch(r"(?:(\d+)\+)?(\d+):(\d+)(?::(\d+))?", age)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_retention(
    server: LdapServerSpec,
    admin_dn: str | None,
    admin_password: str | None,
    flavor: str,
    feed_detail: str,
) -> CheckResult:
    name = "change feed retained"
    spec = (
        replace(server, bind_dn=admin_dn, password=admin_password)
        if admin_dn and admin_password
        else server
    )
    try:
        conn = connect(spec)
    except LdapError as exc:
        return CheckResult(
            name, False, f"cannot check: {exc}", "check the admin bind DN and password"
        )
    try:
        if feed_detail.startswith("changelog") and flavor in ("389", "unknown"):
            return _retention_389(conn, spec, name)
        if feed_detail.startswith("accesslog"):
            return _retention_openldap(conn, spec, name)
        if feed_detail.startswith(("dirsync", "usnchanged")):
            return CheckResult(
                name,
                True,
                "DirSync reports deletes while their tombstones last (tombstoneLifetime, 180 days "
                "by default): a sync stopped longer than that misses deletes; resync then",
            )
        return CheckResult(
            name, True, "retention not checked for this server type; keep at least 1 day of changes"
        )
    finally:
        close(conn)


def _retention_389(conn: ldap3.Connection, spec: LdapServerSpec, name: str) -> CheckResult:
    fix = "dsconf INSTANCE plugin retro-changelog set --max-age 7d (nsslapd-changelogmaxage: 7d), then restart"
    try:
        conn.search(
            RETRO_CHANGELOG,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["nsslapd-pluginEnabled", "nsslapd-changelogmaxage"],
        )
    except (lexc.LDAPNoSuchObjectResult, lexc.LDAPInsufficientAccessRightsResult):
        return CheckResult(
            name,
            True,
            f"{RETRO_CHANGELOG} is not visible to {spec.bind_dn}: not verified (give --admin-bind-dn to check)",
        )
    items = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
    if not items:
        return CheckResult(
            name, True, f"{RETRO_CHANGELOG} is not visible to {spec.bind_dn}: not verified"
        )
    attrs = {k.lower(): [v.decode() for v in vs] for k, vs in items[0]["raw_attributes"].items()}
    if (attrs.get("nsslapd-pluginenabled") or ["off"])[0].lower() != "on":
        return CheckResult(
            name,
            False,
            "the Retro Changelog plugin is disabled",
            "dsconf INSTANCE plugin retro-changelog enable; restart",
        )
    age_text = (attrs.get("nsslapd-changelogmaxage") or [""])[0]
    if not age_text:
        return CheckResult(
            name,
            True,
            "no nsslapd-changelogmaxage: changes are kept until trimmed by count, if ever",
        )
    age = parse_389_age(age_text)
    if age is None or age < MIN_RETENTION_SECONDS:
        return CheckResult(
            name,
            False,
            f"nsslapd-changelogmaxage is {age_text}: a sync stopped longer than that loses changes",
            fix,
        )
    return CheckResult(name, True, f"nsslapd-changelogmaxage: {age_text} ({format_duration(age)})")


def _retention_openldap(conn: ldap3.Connection, spec: LdapServerSpec, name: str) -> CheckResult:
    fix = "set logpurge 07+00:00 01+00:00 (olcAccessLogPurge) on the accesslog overlay"
    try:
        conn.search(
            "cn=config",
            "(objectClass=olcAccessLogConfig)",
            ldap3.SUBTREE,
            attributes=["olcAccessLogPurge", "olcAccessLogDB"],
        )
        items = [r for r in conn.response or () if r.get("type") == "searchResEntry"]
    except lexc.LDAPException:
        items = []
    if not items:
        return CheckResult(
            name,
            True,
            f"cn=config is not readable by {spec.bind_dn or 'anonymous'}: logpurge not verified "
            "(keep at least 1 day: logpurge 07+00:00 01+00:00)",
        )
    attrs = {k.lower(): [v.decode() for v in vs] for k, vs in items[0]["raw_attributes"].items()}
    purge = (attrs.get("olcaccesslogpurge") or [""])[0]
    if not purge:
        return CheckResult(
            name,
            True,
            "no olcAccessLogPurge: the access log is never purged (it grows without bound)",
        )
    age = parse_logpurge_age(purge)
    if age is None or age < MIN_RETENTION_SECONDS:
        return CheckResult(
            name,
            False,
            f"olcAccessLogPurge is {purge}: a sync stopped longer than that loses changes",
            fix,
        )
    return CheckResult(
        name, True, f"olcAccessLogPurge: {purge} (changes kept {format_duration(age)})"
    )


# --- creating the sync user --------------------------------------------------------------------


def _create_sync_user(
    server: LdapServerSpec,
    base_dns: Sequence[str],
    admin_dn: str | None,
    admin_password: str | None,
    flavor: str,
) -> list[CheckResult]:
    sync_dn, password = server.bind_dn, server.password
    if not admin_dn or admin_password is None:
        return [
            CheckResult(
                "create sync user",
                False,
                "creating the sync user needs administrator credentials",
                "give --admin-bind-dn DN and --admin-password-file FILE",
            )
        ]
    if not sync_dn or not password:
        return [
            CheckResult(
                "create sync user",
                False,
                f"the external server {server.name or server.label} has no bind-dn and password to create",
                "set bind-dn and password on the external server first",
            )
        ]
    try:
        admin = connect(replace(server, bind_dn=admin_dn, password=admin_password))
    except LdapError as exc:
        return [
            CheckResult(
                "admin binds", False, str(exc), "check --admin-bind-dn and the password file"
            )
        ]
    try:
        results = [CheckResult("admin binds", True, f"bound as {admin_dn}")]
        if flavor == "unknown":
            flavor = _flavor(admin)
        results.append(_ensure_entry(admin, sync_dn, password, flavor))
        if not results[-1].ok:
            return results
        if flavor == "389":
            results.extend(_grant_389(admin, sync_dn, base_dns))
        elif flavor == "openldap":
            results.extend(_grant_openldap(admin, sync_dn, base_dns))
        else:
            results.append(
                CheckResult(
                    "grant read-only rights",
                    False,
                    f"{server.label} is neither 389-DS nor OpenLDAP: rights not granted",
                    f"grant {sync_dn} read, search and compare on {', '.join(base_dns)} and on the change log",
                )
            )
        return results
    finally:
        close(admin)


def _ensure_entry(admin: ldap3.Connection, sync_dn: str, password: str, flavor: str) -> CheckResult:
    name = "sync user entry"
    try:
        admin.search(sync_dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
        if any(r.get("type") == "searchResEntry" for r in admin.response or ()):
            return CheckResult(name, True, f"{sync_dn} exists (its password was not changed)")
    except lexc.LDAPNoSuchObjectResult:
        pass
    except lexc.LDAPException as exc:
        return CheckResult(
            name, False, f"cannot look up {sync_dn}: {exc}", "check the admin's rights"
        )
    try:
        classes, attrs = sync_user_entry(sync_dn, password, flavor)
    except (ValueError, DNError) as exc:
        return CheckResult(
            name, False, str(exc), "use a bind-dn such as cn=scimsync,ou=services,dc=example,dc=com"
        )
    try:
        admin.add(sync_dn, classes, attrs)
    except lexc.LDAPException as exc:
        detail = getattr(exc, "description", None) or type(exc).__name__
        message = getattr(exc, "message", "") or ""
        return CheckResult(
            name,
            False,
            f"cannot add {sync_dn}: {detail} {message}".strip(),
            "make sure the parent entry exists and the admin may add entries there",
        )
    return CheckResult(name, True, f"created {sync_dn}")


def _add_value(
    admin: ldap3.Connection, dn: str, attribute: str, value: str, label: str
) -> CheckResult:
    try:
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
        current = [
            v.decode(errors="replace")
            for r in admin.response or ()
            if r.get("type") == "searchResEntry"
            for k, vs in r["raw_attributes"].items()
            if k.lower() == attribute.lower()
            for v in vs
        ]
        if value in current:
            return CheckResult(label, True, f"{attribute} on {dn} already present")
        admin.modify(dn, {attribute: [(ldap3.MODIFY_ADD, [value])]})
    except lexc.LDAPException as exc:
        return CheckResult(
            label,
            False,
            f"cannot add {attribute} to {dn}: {exc}",
            f"add to {dn}: {attribute}: {value}",
        )
    return CheckResult(label, True, f"added {attribute} to {dn}")


def _grant_389(admin: ldap3.Connection, sync_dn: str, base_dns: Sequence[str]) -> list[CheckResult]:
    results = [
        _add_value(admin, base, "aci", aci_for_data(sync_dn), f"read-only ACI on {base}")
        for base in base_dns
    ]
    results.append(
        _add_value(
            admin, "cn=changelog", "aci", aci_for_changelog(sync_dn), "read ACI on cn=changelog"
        )
    )
    return results


def _grant_openldap(
    admin: ldap3.Connection, sync_dn: str, base_dns: Sequence[str]
) -> list[CheckResult]:
    """olcAccess rules through cn=config; the exact slapd.conf lines when it is not writable."""
    databases = _config_databases(admin)
    if databases is None:
        lines = "; ".join(f"'access {r}'" for r in olc_access_for_data(sync_dn))
        log_line = f"'access {olc_access_for_log(sync_dn)[0]}'"
        return [
            CheckResult(
                "read-only access rules",
                False,
                "cn=config is not writable by the admin, so the access rules were not applied",
                f"in slapd.conf, add before the first access rule of the data database ({', '.join(base_dns)}): "
                f"{lines}; and before the first access rule of the {LOG_BASE} database: {log_line}; then restart "
                f"slapd (with cn=config: ldapmodify olcAccess: {{0}}... values on those olcDatabase entries)",
            )
        ]
    results: list[CheckResult] = []
    wanted: list[tuple[str, list[str], str]] = []
    for base in base_dns:
        db = _database_for(databases, base)
        if db is None:
            results.append(
                CheckResult(
                    f"access rules for {base}",
                    False,
                    f"no database in cn=config holds {base}",
                    None,
                )
            )
            continue
        wanted.append((db, olc_access_for_data(sync_dn), f"read-only access rules for {base}"))
    log_db = _database_for(databases, LOG_BASE)
    if log_db is not None:
        wanted.append((log_db, olc_access_for_log(sync_dn), f"read access rule for {LOG_BASE}"))
    done: set[str] = set()
    for db, rules, label in wanted:
        if db in done:
            continue
        done.add(db)
        results.append(_insert_olc_access(admin, db, databases[db][1], rules, sync_dn, label))
    return results


def _config_databases(admin: ldap3.Connection) -> dict[str, tuple[str, list[str]]] | None:
    """{database DN: (suffix, olcAccess values)} from cn=config, or None if not readable."""
    try:
        admin.search(
            "cn=config", "(olcSuffix=*)", ldap3.LEVEL, attributes=["olcSuffix", "olcAccess"]
        )
    except lexc.LDAPException:
        return None
    found: dict[str, tuple[str, list[str]]] = {}
    for item in admin.response or ():
        if item.get("type") != "searchResEntry":
            continue
        attrs = {
            k.lower(): [v.decode(errors="replace") for v in vs]
            for k, vs in item["raw_attributes"].items()
        }
        for suffix in attrs.get("olcsuffix", []):
            found[item["dn"]] = (suffix, attrs.get("olcaccess", []))
    return found or None


def _database_for(databases: dict[str, tuple[str, list[str]]], dn: str) -> str | None:
    best, best_len = None, -1
    for db, (suffix, _) in databases.items():
        try:
            if is_within(dn, suffix) and len(dn_key(suffix)) > best_len:
                best, best_len = db, len(dn_key(suffix))
        except DNError:
            continue
    return best


def _insert_olc_access(
    admin: ldap3.Connection, db: str, current: list[str], rules: list[str], sync_dn: str, label: str
) -> CheckResult:
    if any(f'dn.exact="{sync_dn}"'.lower() in rule.lower() for rule in current):
        return CheckResult(label, True, f"{db} already has rules for {sync_dn}")
    values = [f"{{{i}}}{rule}" for i, rule in enumerate(rules)]
    try:
        admin.modify(db, {"olcAccess": [(ldap3.MODIFY_ADD, values)]})
    except lexc.LDAPException as exc:
        return CheckResult(
            label,
            False,
            f"cannot add olcAccess to {db}: {exc}",
            f"ldapmodify {db}: add olcAccess: " + " / ".join(values),
        )
    return CheckResult(label, True, f"added olcAccess to {db}: " + " / ".join(values))
