"""Change detectors against the real feeds: slapd's cn=accesslog and 389-DS's cn=changelog."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import ldap3
import pytest

from toolkit.ldap import (
    AccesslogDetector,
    ChangeFeedError,
    ChangelogDetector,
    CursorError,
    LdapServerSpec,
    LdapSource,
    SourceSpec,
    make_detector,
)

PEOPLE = "ou=people,dc=example,dc=com"
JDOE = f"uid=jdoe,{PEOPLE}"


def spec_of(server) -> LdapServerSpec:
    return LdapServerSpec(
        server.host,
        server.port,
        bind_dn=server.admin_dn,
        password=server.admin_password,
        name="src",
    )


@pytest.fixture(params=["accesslog", "changelog"])
def feed(request):
    """(server, detector class) for each feed: slapd's access log and 389-DS's retro changelog."""
    if request.param == "accesslog":
        return request.getfixturevalue("slapd"), AccesslogDetector
    return request.getfixturevalue("dirsrv"), ChangelogDetector


def detector_for(server, cls, ignore=()):
    return cls([spec_of(server)], ignore)


def add_user(conn, uid: str = "jdoe", parent: str = PEOPLE, **attrs) -> str:
    dn = f"uid={uid},{parent}"
    conn.add(dn, ["inetOrgPerson"], {"uid": uid, "cn": f"{uid} Dœ", "sn": "Doe", **attrs})
    return dn


def drain(detector, cursor: str, limit: int = 100):
    """Every change after `cursor`, polling in batches of `limit`, and the final cursor."""
    changes = []
    while True:
        batch, new_cursor = detector.poll(cursor, limit)
        changes.extend(batch)
        if new_cursor == cursor:
            return changes, cursor
        cursor = new_cursor


def test_every_change_type_in_order(feed):
    server, cls = feed
    conn = server.connect()
    with detector_for(server, cls) as detector:
        start = detector.cursor_at_end()
        add_user(conn, mail="j@example.com", description="x" * 150)
        conn.modify(
            JDOE,
            {
                "mail": [(ldap3.MODIFY_REPLACE, ["john@example.com"])],
                "title": [(ldap3.MODIFY_ADD, ["Engineer"])],
            },
        )
        conn.modify_dn(JDOE, "uid=jdoe2")
        conn.add("ou=other,dc=example,dc=com", ["organizationalUnit"], {"ou": "other"})
        conn.modify_dn(
            f"uid=jdoe2,{PEOPLE}", "uid=jdoe2", new_superior="ou=other,dc=example,dc=com"
        )
        moved = "uid=jdoe2,ou=other,dc=example,dc=com"
        conn.search(moved, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID", "nsUniqueId"])
        ids = {k.lower(): v[0].decode() for k, v in conn.response[0]["raw_attributes"].items() if v}
        conn.delete(moved)
        changes, _ = drain(detector, start, limit=3)
    ours = [c for c in changes if c.dn.lower() != "ou=other,dc=example,dc=com"]
    assert [(c.kind, c.dn, c.new_dn) for c in ours] == [
        ("add", JDOE, None),
        ("modify", JDOE, None),
        ("modrdn", JDOE, f"uid=jdoe2,{PEOPLE}"),
        ("modrdn", f"uid=jdoe2,{PEOPLE}", moved),
        ("delete", moved, None),
    ]
    add, modify, rename, move, delete = ours
    assert {"cn", "mail", "description", "uid", "sn", "objectclass"} <= set(add.changed_attributes)
    assert modify.changed_attributes == ("mail", "title")
    assert [(m.op, m.attribute.lower(), m.values) for m in modify.modifications][:2] == [
        ("replace", "mail", ["john@example.com"]),
        ("add", "title", ["Engineer"]),
    ]
    assert (rename.new_rdn, rename.delete_old_rdn, rename.new_superior) == ("uid=jdoe2", True, None)
    assert move.new_superior == "ou=other,dc=example,dc=com"
    # one stable id across the whole life of the entry, and it names the entry
    assert len({c.unique_id for c in ours}) == 1
    assert ours[0].unique_id == ids[ours[0].unique_id_attribute]
    assert add.entry_uuid == ids["entryuuid"]
    assert add.modifier_dn.lower() == server.admin_dn.lower()
    numbers = [c.change_number or c.csn for c in ours]
    assert numbers == sorted(numbers)
    assert all(c.time and abs(c.time - datetime.now(UTC)) < timedelta(minutes=5) for c in ours)


def test_consumer_finds_the_entry_by_the_feeds_unique_id(feed):
    server, cls = feed
    conn = server.connect()
    with detector_for(server, cls) as detector:
        start = detector.cursor_at_end()
        add_user(conn)
        conn.modify(JDOE, {"title": [(ldap3.MODIFY_ADD, ["x"])]})
        changes, _ = detector.poll(start)
    change = changes[-1]
    source = LdapSource(SourceSpec([server.suffix], [spec_of(server)]))
    [entry] = source.find_entries(change.unique_id_attribute, change.unique_id)
    assert entry["dn"] == JDOE


def test_cursor_resumes_after_each_change_without_loss_or_repeat(feed):
    server, cls = feed
    conn = server.connect()
    with detector_for(server, cls) as detector:
        start = detector.cursor_at_end()
        for i in range(6):
            add_user(conn, f"u{i}")
        first_two, cursor = detector.poll(start, 2)
        rest, _ = drain(detector, cursor, 3)
        assert [c.dn for c in first_two + rest] == [f"uid=u{i},{PEOPLE}" for i in range(6)]
        # a consumer that recorded the third change resumes right after it
        from_third, _ = drain(detector, rest[0].cursor)
        assert [c.dn for c in from_third] == [f"uid=u{i},{PEOPLE}" for i in range(3, 6)]
        # the cursor is plain JSON: it survives a restart (a new detector)
    with detector_for(server, cls) as again:
        assert [c.dn for c in drain(again, rest[0].cursor)[0]] == [
            f"uid=u{i},{PEOPLE}" for i in range(3, 6)
        ]
    json.loads(rest[0].cursor)


def test_start_points_beginning_end_time_and_rewind(feed):
    server, cls = feed
    conn = server.connect()
    with detector_for(server, cls) as detector:
        add_user(conn, "before")
        time.sleep(1.1)  # the feeds record whole seconds
        between = datetime.now(UTC)
        time.sleep(1.1)
        add_user(conn, "after")
        end = detector.cursor_at_end()
        assert detector.poll(end)[0] == []
        from_beginning = [c.dn for c in drain(detector, detector.cursor_at_beginning())[0]]
        assert from_beginning[-2:] == [f"uid=before,{PEOPLE}", f"uid=after,{PEOPLE}"]
        from_time = [c.dn for c in drain(detector, detector.cursor_at_time(between))[0]]
        assert from_time == [f"uid=after,{PEOPLE}"]
        from_rewind = [
            c.dn for c in drain(detector, detector.cursor_rewound(timedelta(hours=1)))[0]
        ]
        assert from_rewind[-2:] == [f"uid=before,{PEOPLE}", f"uid=after,{PEOPLE}"]
        time.sleep(1.1)
        rewound_nothing = detector.cursor_rewound(0.0)  # seconds work as well as a timedelta
        assert drain(detector, rewound_nothing)[0] == []
        add_user(conn, "later")
        assert [c.dn for c in drain(detector, end)[0]] == [f"uid=later,{PEOPLE}"]
        assert [c.dn for c in drain(detector, rewound_nothing)[0]] == [f"uid=later,{PEOPLE}"]


def test_changelog_cursor_at_change_number(dirsrv):
    conn = dirsrv.connect()
    with detector_for(dirsrv, ChangelogDetector) as detector:
        start = detector.cursor_at_end()
        for i in range(3):
            add_user(conn, f"n{i}")
        changes, _ = detector.poll(start)
        second = changes[1].change_number
        at = detector.cursor_at_change_number(second)
        assert [c.change_number for c in drain(detector, at)[0]] == [second, second + 1]
        assert detector.poll(detector.cursor_at_change_number(10**9))[0] == []


def test_ignore_changes_by_dn(feed):
    server, cls = feed
    conn = server.connect()
    spelled_differently = server.admin_dn.upper().replace(",", ", ")
    with (
        detector_for(server, cls) as everyone,
        detector_for(server, cls, [spelled_differently]) as filtered,
    ):
        start = everyone.cursor_at_end()
        add_user(conn)
        conn.modify(JDOE, {"title": [(ldap3.MODIFY_ADD, ["x"])]})
        all_changes, end_all = drain(everyone, start)
        assert [c.kind for c in all_changes] == ["add", "modify"]
        ignored, end_filtered = drain(filtered, start)
        assert ignored == []
        assert end_filtered == end_all  # the cursor still moves past the ignored changes


def test_ignore_changes_by_dn_keeps_other_writers_389(dirsrv):
    conn = dirsrv.connect()
    writer = add_user(conn, "writer", userPassword="Writer-Pass-1")
    aci = f'(targetattr="*")(version 3.0; acl "writer {writer}"; allow (all) userdn="ldap:///{writer}";)'
    conn.modify(PEOPLE, {"aci": [(ldap3.MODIFY_ADD, [aci])]})
    other = dirsrv.connect(writer, "Writer-Pass-1")
    with detector_for(dirsrv, ChangelogDetector, [dirsrv.admin_dn]) as detector:
        start = detector.cursor_at_end()
        add_user(conn, "by-admin")
        add_user(other, "by-writer")
        changes, _ = drain(detector, start)
    assert [(c.dn, c.modifier_dn) for c in changes] == [(f"uid=by-writer,{PEOPLE}", writer)]
    conn.modify(PEOPLE, {"aci": [(ldap3.MODIFY_DELETE, [aci])]})


def test_auto_detection_says_which_and_why(slapd, dirsrv):
    detector, reason = make_detector([spec_of(slapd)])
    assert (
        isinstance(detector, AccesslogDetector)
        and "accesslog" in reason
        and "auditContainer" in reason
    )
    detector, reason = make_detector([spec_of(dirsrv)])
    assert (
        isinstance(detector, ChangelogDetector) and "changelog" in reason and "root DSE" in reason
    )
    anonymous = LdapServerSpec(
        slapd.host, slapd.port, name="anon"
    )  # cn=accesslog is not readable anonymously
    with pytest.raises(ChangeFeedError, match="offers no change feed to anonymous"):
        make_detector([anonymous])


def test_accesslog_delivers_a_late_entry_once(slapd):
    """An entry logged after a later-started one (concurrent writes) is still delivered, once."""
    conn = slapd.connect()
    with detector_for(slapd, AccesslogDetector) as detector:
        start = detector.cursor_at_end()
        add_user(conn, "first")
        changes, cursor = detector.poll(start)
        # stamped a second before the change already read, logged after it
        stamp = datetime.strptime(changes[0].csn[:14], "%Y%m%d%H%M%S") - timedelta(seconds=1)
        late_start = stamp.strftime("%Y%m%d%H%M%S") + ".999999Z"
        conn.add(
            f"reqStart={late_start},cn=accesslog",
            ["auditModify"],
            {
                "reqStart": late_start,
                "reqEnd": late_start,
                "reqType": "modify",
                "reqSession": "99",
                "reqDN": f"uid=first,{PEOPLE}",
                "reqMod": ["title:+ Late"],
                "reqResult": "0",
                "reqAuthzID": "cn=other,dc=example,dc=com",
            },
        )
        late, cursor = detector.poll(cursor)
        assert [(c.kind, c.csn, c.changed_attributes) for c in late] == [
            ("modify", late_start, ("title",))
        ]
        assert detector.poll(cursor)[0] == []


def test_accesslog_purged_past_the_cursor_raises(slapd):
    conn = slapd.connect()
    with detector_for(slapd, AccesslogDetector) as detector:
        start = detector.cursor_at_end()
        add_user(conn)
        changes, cursor = detector.poll(start)
        conn.delete(f"reqStart={changes[-1].csn},cn=accesslog")  # what logpurge would do
        with pytest.raises(ChangeFeedError, match="purged"):
            detector.poll(cursor)


def test_cursor_of_another_detector_is_refused(dirsrv):
    with detector_for(dirsrv, ChangelogDetector) as detector:
        cursor = detector.cursor_at_end()
    with pytest.raises(
        CursorError, match="belongs to the changelog change detector, not accesslog"
    ):
        AccesslogDetector([spec_of(dirsrv)]).poll(cursor)
