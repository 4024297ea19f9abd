"""prepare-endpoint-server on a real Samba AD DC: DirSync needs "Replicating Directory
Changes"; without it the check fails saying exactly what to grant, and passes once granted."""

from __future__ import annotations

from ldap3.protocol.formatters.formatters import format_sid

from toolkit.lab.samba import ENABLED
from toolkit.ldap import LdapServerSpec, prepare_ldap_server

BASE = "DC=example,DC=test"
SYNC_DN = f"CN=scimsync,CN=Users,{BASE}"
PASSWORD = "Sync-Passw0rd!"


def _sync_user(samba) -> str:
    """A plain domain user (no rights beyond reading): its SID."""
    conn = samba.connect()
    conn.add(
        SYNC_DN,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": "scimsync", "userAccountControl": ENABLED},
    )
    conn.extend.microsoft.modify_password(SYNC_DN, PASSWORD)
    conn.modify(SYNC_DN, {"userAccountControl": [("MODIFY_REPLACE", [512])]})
    conn.search(SYNC_DN, "(objectClass=*)", "BASE", attributes=["objectSid"])
    sid = format_sid(conn.response[0]["raw_attributes"]["objectSid"][0])
    conn.unbind()
    return sid


def _checks(samba) -> dict[str, object]:
    server = LdapServerSpec(samba.host, 389, bind_dn=SYNC_DN, password=PASSWORD)
    results = prepare_ldap_server(server, [BASE], unique_id_attribute="objectGUID")
    return {r.name: r for r in results}


def test_dirsync_right_missing_then_granted(samba):
    sid = _sync_user(samba)
    checks = _checks(samba)
    assert checks["sync user binds"].ok
    assert checks["change feed enabled"].ok and "dirsync" in checks["change feed enabled"].detail
    feed = checks["change feed readable"]
    assert not feed.ok
    assert "insufficient" in feed.detail.lower()
    assert "Replicating Directory Changes" in feed.fix
    assert "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2" in feed.fix and BASE in feed.fix

    samba.grant_replicating_changes(sid)
    checks = _checks(samba)
    assert checks["change feed readable"].ok, checks["change feed readable"]
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
