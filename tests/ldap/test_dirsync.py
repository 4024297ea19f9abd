"""The dirsync change detector against a real Samba AD DC (and its control's encoding): the
cookie as the cursor, each kind of change as a Change keyed by objectGUID, start points."""

from __future__ import annotations

import uuid

import ldap3
import pytest
from pyasn1.codec.ber import decoder

from tests.support.ad_env import BASE, ELSEWHERE, GROUPS, PEOPLE
from toolkit.lab.samba import ENABLED
from toolkit.ldap import LdapServerSpec, make_detector
from toolkit.ldap.ad import dirsync_control
from toolkit.ldap.changes import describe_cursor
from toolkit.ldap.dirsync import FLAGS, DirSyncDetector
from toolkit.ldap.errors import CursorError


def test_the_control_sends_its_flags_as_a_4_byte_integer():
    control = dirsync_control(b"cookie", FLAGS)
    assert str(control["controlType"]) == "1.2.840.113556.1.4.841"
    assert bool(control["criticality"])
    value = bytes(control["controlValue"])
    # SEQUENCE { INTEGER flags, INTEGER maxBytes, OCTET STRING cookie }
    assert value[:2] == b"\x30" + bytes([len(value) - 2])
    assert value[2:8] == b"\x02\x04\x80\x00\x08\x00"  # 0x80000800 in 4 bytes, not ldap3's 5
    decoded, _ = decoder.decode(value)
    assert bytes(decoded[2]) == b"cookie"


def _detector(samba) -> DirSyncDetector:
    spec = LdapServerSpec(samba.host, 389, bind_dn=samba.admin_dn, password=samba.admin_password)
    detector, why = make_detector([spec])
    assert isinstance(detector, DirSyncDetector), why
    assert why.startswith("auto: dirsync") and BASE in why
    return detector


def _everything(detector, cursor):
    changes, after = detector.poll(cursor)
    return changes, after


@pytest.fixture
def dc(samba):
    conn = samba.connect()
    for ou in (PEOPLE, GROUPS, ELSEWHERE):
        conn.add(ou, ["top", "organizationalUnit"])
    for name in ("ann", "bob"):
        conn.add(
            f"CN={name},{PEOPLE}",
            ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": name, "mail": f"{name}@example.test", "userAccountControl": ENABLED},
        )
    conn.add(f"CN=team,{GROUPS}", ["top", "group"], {"member": [f"CN=ann,{PEOPLE}"]})
    yield samba, conn
    conn.unbind()


def test_beginning_is_a_full_dirsync_and_end_holds_nothing_yet(dc):
    samba, _ = dc
    with _detector(samba) as detector:
        start = detector.cursor_at_beginning()
        assert describe_cursor(start) == "the beginning: a full DirSync"
        changes, after = detector.poll(start)
        by_dn = {c.dn: c for c in changes}
        assert {f"CN=ann,{PEOPLE}", f"CN=bob,{PEOPLE}", f"CN=team,{GROUPS}"} <= set(by_dn)
        assert {by_dn[f"CN=ann,{PEOPLE}"].kind, by_dn[f"CN=team,{GROUPS}"].kind} == {"add"}
        assert all(c.cursor == start for c in changes[:-1]) and changes[-1].cursor == after
        assert detector.poll(after)[0] == []
        end = detector.cursor_at_end()
        assert describe_cursor(end) == "a DirSync cookie"
        assert detector.poll(end)[0] == []


def test_each_change_comes_keyed_by_objectguid(dc):
    samba, conn = dc
    with _detector(samba) as detector:
        cursor = detector.cursor_at_end()
        ann = f"CN=ann,{PEOPLE}"
        conn.search(ann, "(objectClass=*)", ldap3.BASE, attributes=["objectGUID"])
        guid = str(uuid.UUID(bytes_le=conn.response[0]["raw_attributes"]["objectGUID"][0]))

        conn.modify(ann, {"mail": [(ldap3.MODIFY_REPLACE, ["new@example.test"])]})
        (change,), cursor = detector.poll(cursor)
        assert (change.kind, change.dn, change.entry_uuid) == ("modify", ann, guid)
        assert change.unique_id_attribute == "objectGUID" and "mail" in change.changed_attributes

        conn.modify_dn(ann, "CN=anna", new_superior=ELSEWHERE)
        (change,), cursor = detector.poll(cursor)
        assert (change.kind, change.new_dn, change.entry_uuid) == (
            "modrdn",
            f"CN=anna,{ELSEWHERE}",
            guid,
        )

        conn.modify(f"CN=team,{GROUPS}", {"member": [(ldap3.MODIFY_ADD, [f"CN=bob,{PEOPLE}"])]})
        (change,), cursor = detector.poll(cursor)
        assert change.kind == "modify" and change.changed_attributes == ("member",)
        assert "member;range=1-1" in change.raw  # an incremental value: the one added

        conn.delete(f"CN=anna,{ELSEWHERE}")
        (change,), cursor = detector.poll(cursor)
        assert (change.kind, change.entry_uuid) == ("delete", guid)
        assert change.dn == f"CN=anna,{ELSEWHERE}"  # its DN before the delete, from the tombstone
        assert detector.poll(cursor)[0] == []


def test_a_time_or_a_rewind_is_refused_saying_why(dc):
    samba, _ = dc
    with _detector(samba) as detector:
        for start in (lambda: detector.cursor_rewound(3600), lambda: detector.cursor_at_time(None)):
            with pytest.raises(CursorError, match="DirSync cookie holds no time"):
                start()
        with pytest.raises(CursorError, match="not a change detector cursor|belongs to"):
            detector.poll('{"detector":"accesslog"}')
