"""The usnchanged change detector (AD without DirSync's right) against a real Samba AD DC,
read as a plain domain user: adds, modifies, moves and deletes by objectGUID, oldest first."""

from __future__ import annotations

import ldap3
import pytest

from tests.ldap.test_prepare_dirsync import PASSWORD, SYNC_DN, _sync_user
from tests.support.ad_env import BASE, ELSEWHERE, PEOPLE
from toolkit.lab.samba import ENABLED
from toolkit.ldap import LdapServerSpec, make_detector, prepare_ldap_server
from toolkit.ldap.changes import describe_cursor
from toolkit.ldap.errors import CursorError
from toolkit.ldap.usnchanged import UsnChangedDetector


def _user(conn, name: str, parent: str = PEOPLE) -> str:
    dn = f"CN={name},{parent}"
    conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": name, "userAccountControl": ENABLED},
    )
    return dn


def test_usnchanged_reports_each_object_without_the_dirsync_right(samba):
    sid = _sync_user(samba)  # no Replicating Directory Changes
    _grant_deleted_objects(samba, sid)
    admin = samba.connect()
    for ou in (PEOPLE, ELSEWHERE):
        admin.add(ou, ["top", "organizationalUnit"])
    ann = _user(admin, "ann")
    spec = LdapServerSpec(samba.host, 389, bind_dn=SYNC_DN, password=PASSWORD)
    detector, why = make_detector([spec], "usnchanged")
    assert isinstance(detector, UsnChangedDetector) and why == "usnchanged, as configured"
    with detector:
        start = detector.cursor_at_end()
        assert describe_cursor(start).startswith("changes after USN ")
        assert detector.poll(start) == ([], start)

        bob = _user(admin, "bob")
        admin.modify(ann, {"mail": [(ldap3.MODIFY_REPLACE, ["ann@example.test"])]})
        admin.modify_dn(ann, "CN=ann", new_superior=ELSEWHERE)
        admin.delete(bob)
        changes, after = detector.poll(start)
        kinds = [(c.kind, c.dn) for c in changes]
        assert kinds == [("modify", f"CN=ann,{ELSEWHERE}"), ("delete", bob)], kinds
        assert changes[0].unique_id_attribute == "objectGUID" and len(changes[0].entry_uuid) == 36
        assert changes[-1].cursor == after and detector.poll(after) == ([], after)

        carl = _user(admin, "carl")
        (change,), _ = detector.poll(after)
        assert (change.kind, change.dn) == ("add", carl)
        with pytest.raises(CursorError, match="hold no time"):
            detector.cursor_rewound(60)
    admin.unbind()


def _grant_deleted_objects(samba, sid: str) -> None:
    samba.grant_deleted_objects(sid)


def test_prepare_with_usnchanged_needs_the_deleted_objects_then_passes(samba):
    sid = _sync_user(samba)
    server = LdapServerSpec(samba.host, 389, bind_dn=SYNC_DN, password=PASSWORD)

    def feed():
        results = prepare_ldap_server(
            server, [BASE], change_detector="usnchanged", unique_id_attribute="objectGUID"
        )
        return {r.name: r for r in results}

    refused = feed()["change feed readable"]
    assert not refused.ok and "deletes would go unseen" in refused.detail
    assert f"CN=Deleted Objects,{BASE}" in refused.fix and "LCRP" in refused.fix
    _grant_deleted_objects(samba, sid)
    checks = feed()
    assert all(r.ok for r in checks.values()), [r for r in checks.values() if not r.ok]
    assert "uSNChanged readable" in checks["change feed readable"].detail
