"""The change feeds read with the fast decoder give exactly what the ldap3 reading gave:
every change type, binary and non-ASCII values, renames and moves, a late-written access-log
entry, and the same cursors (which the realtime state database keeps); on slapd's access log
and 389-DS's retro changelog. Also the hand-encoded AnyOf search used to re-read entries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import ldap3
import pytest

from toolkit.ldap import AccesslogDetector, ChangelogDetector, LdapServerSpec
from toolkit.ldap import changelog as cl
from toolkit.ldap.accesslog import ENTRY_ATTRIBUTES, WRITE_FILTER
from toolkit.ldap.changes import decode_cursor, encode_cursor, lower_raw, record_text

PEOPLE = "ou=people,dc=example,dc=com"
PHOTO = bytes(range(256)) * 3  # not UTF-8: stays bytes
NOT_UTF8 = b"caf\xe9 latin-1"


def detector_for(server, cls=AccesslogDetector):
    spec = LdapServerSpec(
        server.host, server.port, bind_dn=server.admin_dn, password=server.admin_password
    )
    return cls([spec])


def reference_poll(detector: AccesslogDetector, cursor: str, limit: int):
    """The poll as it was before the fast path: ldap3's decoder, every record decoded, each
    change's cursor computed from the whole delivered set (kept here as the reference)."""
    state = decode_cursor(cursor, "accesslog")
    start, seen = state.get("start"), set(state.get("seen") or [])
    flt = WRITE_FILTER if start is None else f"(&{WRITE_FILTER}(reqStart>={start}))"
    items, _ = detector.search(
        detector.log_base, flt, ENTRY_ATTRIBUTES, paged_size=limit + len(seen)
    )
    records = [lower_raw(i) for i in items]
    fresh = sorted(
        (r for r in records if record_text(r, "reqstart") not in seen),
        key=lambda r: record_text(r, "reqstart"),
    )[:limit]
    changes, delivered = [], set(seen)
    for record in fresh:
        delivered.add(record_text(record, "reqstart"))
        change = detector.to_change(record, detector._cursor_after(start, delivered))
        if change is not None:
            changes.append(change)
    return changes, detector._cursor_after(start, delivered)


def reference_changelog_poll(detector: ChangelogDetector, cursor: str, limit: int):
    """The changelog poll as it was before the fast path (ldap3's decoder)."""
    start = int(decode_cursor(cursor, "changelog")["next"])
    _, last = detector.bounds()
    if start > last:
        return [], cursor
    stop = min(start + limit - 1, last)
    flt = f"(&(changeNumber>={start})(changeNumber<={stop}))"
    items, _ = detector.search(detector.base, flt, cl.ENTRY_ATTRIBUTES)
    records = sorted((lower_raw(i) for i in items), key=lambda r: cl._int(r.get("changenumber")))
    changes = [c for c in (detector.to_change(r) for r in records) if c is not None]
    return changes, encode_cursor("changelog", next=stop + 1)


def full(change):
    """Everything a change carries, including the fields left out of its equality."""
    return change, [(m.op, m.attribute, m.values) for m in change.modifications], change.raw


def assert_same_feed(detector, cursor: str, limit: int) -> list:
    """Drain from `cursor` with both readings in lockstep; every batch and cursor equal."""
    delivered = []
    reference = (
        reference_poll if isinstance(detector, AccesslogDetector) else reference_changelog_poll
    )
    while True:
        fast, fast_cursor = detector.poll(cursor, limit)
        ref, ref_cursor = reference(detector, cursor, limit)
        assert [full(c) for c in fast] == [full(c) for c in ref]
        assert fast_cursor == ref_cursor
        delivered.extend(fast)
        if fast_cursor == cursor:
            return delivered
        cursor = fast_cursor


@pytest.fixture(params=["slapd", "dirsrv"])
def feed(request):
    """(server, detector class): slapd's access log, 389-DS's retro changelog."""
    if request.param == "slapd":
        return request.getfixturevalue("slapd"), AccesslogDetector
    return request.getfixturevalue("dirsrv"), ChangelogDetector


@pytest.mark.parametrize("limit", [2, 500])
def test_fast_reading_equals_the_ldap3_reading(feed, limit):
    server, cls = feed
    conn = server.connect()
    uid = f"fast{limit}"
    dn = f"uid={uid},{PEOPLE}"
    with detector_for(server, cls) as detector:
        start = detector.cursor_at_end()
        conn.add(
            dn,
            ["inetOrgPerson"],
            {
                "uid": uid,
                "cn": "Zoë Ångström 测试",
                "sn": "Ångström",
                "jpegPhoto": PHOTO,
                "audio": NOT_UTF8,
                "mail": ["a@example.com", "b@example.com"],
            },
        )
        conn.modify(
            dn,
            {
                "jpegPhoto": [(ldap3.MODIFY_REPLACE, [PHOTO[::-1]])],
                "mail": [(ldap3.MODIFY_DELETE, ["a@example.com"])],
                "title": [(ldap3.MODIFY_ADD, ["Ingénieur", "Lead"])],
                "audio": [(ldap3.MODIFY_DELETE, [])],  # every value: a bare `attr:-`
            },
        )
        conn.modify_dn(dn, f"uid={uid}-renamed")
        folder = f"ou=fastmoves{limit},{PEOPLE}"
        conn.add(folder, ["organizationalUnit"], {"ou": f"fastmoves{limit}"})
        moved = f"uid={uid}-renamed,{folder}"
        conn.modify_dn(
            f"uid={uid}-renamed,{PEOPLE}",
            f"uid={uid}-renamed",
            new_superior=folder,
        )
        conn.delete(moved)
        changes = assert_same_feed(detector, start, limit)
    kinds = [c.kind for c in changes if c.dn.lower().startswith(f"uid={uid}")]
    assert kinds == ["add", "modify", "modrdn", "modrdn", "delete"]
    add = next(c for c in changes if c.kind == "add")
    photo = next(m for m in add.modifications if m.attribute.lower() == "jpegphoto")
    assert photo.values == [PHOTO]
    assert next(m for m in add.modifications if m.attribute == "audio").values == [NOT_UTF8]
    modify = next(c for c in changes if c.kind == "modify")
    assert [(m.op, m.attribute) for m in modify.modifications][:4] == [
        ("replace", "jpegPhoto"),
        ("delete", "mail"),
        ("add", "title"),
        ("delete", "audio"),
    ]
    assert modify.modifications[2].values == ["Ingénieur", "Lead"]
    assert modify.modifications[3].values == []


def test_a_late_entry_is_read_the_same_and_once(slapd):
    """The late-write window: entries already delivered are skipped by their DN, a late one
    (stamped before the newest delivered, logged after it) is delivered once, as before."""
    conn = slapd.connect()
    with detector_for(slapd) as detector:
        start = detector.cursor_at_end()
        for i in range(5):
            conn.add(
                f"uid=window{i},{PEOPLE}",
                ["inetOrgPerson"],
                {"uid": f"window{i}", "cn": "W", "sn": "W"},
            )
        first = assert_same_feed(detector, start, 3)
        cursor = first[-1].cursor
        assert len(decode_cursor(cursor, "accesslog")["seen"]) == 5  # all in the window
        stamp = datetime.strptime(first[-1].csn[:14], "%Y%m%d%H%M%S") - timedelta(seconds=1)
        late = stamp.strftime("%Y%m%d%H%M%S") + ".999998Z"
        conn.add(
            f"reqStart={late},cn=accesslog",
            ["auditModify"],
            {
                "reqStart": late,
                "reqEnd": late,
                "reqType": "modify",
                "reqSession": "98",
                "reqDN": f"uid=window0,{PEOPLE}",
                "reqMod": ["title:+ Late", b"jpegPhoto:+ " + PHOTO],
                "reqResult": "0",
                "reqAuthzID": "cn=other,dc=example,dc=com",
            },
        )
        conn.add(
            f"uid=window5,{PEOPLE}", ["inetOrgPerson"], {"uid": "window5", "cn": "W", "sn": "W"}
        )
        after = assert_same_feed(detector, cursor, 500)
    assert [(c.kind, c.csn) for c in after][0] == ("modify", late)
    assert after[0].modifications[1].values == [PHOTO]
    assert after[0].modifier_dn == "cn=other,dc=example,dc=com"
    assert [c.dn for c in after[1:]] == [f"uid=window5,{PEOPLE}"]


def test_cursors_equal_the_reference_for_every_change():
    """`_cursors` (incremental) against `_cursor_after` (the whole delivered set each time),
    with late entries in the batch and a window that moves."""
    detector = AccesslogDetector([])
    rng = random.Random(6)
    base = datetime(2026, 11, 28, 19, 0, 0)

    def stamp(seconds: float, counter: int) -> str:
        return (base + timedelta(seconds=seconds)).strftime("%Y%m%d%H%M%S") + f".{counter:06d}Z"

    for _ in range(50):
        seen = {stamp(rng.uniform(0, 3), i) for i in range(rng.randint(0, 40))}
        fresh = sorted(
            {stamp(rng.uniform(0, 6), 1000 + i) for i in range(rng.randint(0, 40))} - seen
        )
        start = rng.choice([None, stamp(0, 0), stamp(1, 5)])
        got = detector._cursors(start, seen, fresh)
        expected = [
            detector._cursor_after(start, seen | set(fresh[: i + 1])) for i in range(len(fresh))
        ]
        expected.append(detector._cursor_after(start, seen | set(fresh)))
        assert got == expected


@pytest.mark.parametrize("count", [1, 3, 120])
@pytest.mark.parametrize("cookie", [None, b"\x01\x02" * 100])
def test_any_of_is_encoded_as_ldap3_encodes_the_same_search(count, cookie):
    """The hand-made BER of an AnyOf search is byte for byte what ldap3 sends."""
    from ldap3.operation.search import search_operation
    from ldap3.protocol.convert import build_controls_list
    from ldap3.protocol.rfc2696 import paged_search_control
    from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
    from ldap3.utils.conv import escape_filter_chars
    from pyasn1.codec.ber import encoder

    from toolkit.ldap.search import AnyOf, encode_any_of_search

    values = tuple(f"Zoë*({i})\\" + "x" * (i % 300) for i in range(count))
    terms = "".join(f"(entryUUID={escape_filter_chars(v)})" for v in values)
    text = terms if count == 1 else f"(|{terms})"
    attrs = ["cn", "entryUUID", "manager"]
    size = 0 if cookie else 200
    request = search_operation(
        PEOPLE, text, ldap3.SUBTREE, ldap3.DEREF_NEVER, attrs, 0, 0, False, True, True,
        None, None, False,
    )  # fmt: skip
    message = LDAPMessage()
    message["messageID"] = MessageID(70000)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    message["controls"] = build_controls_list([paged_search_control(False, size, cookie)])
    mine = encode_any_of_search(
        70000, PEOPLE, AnyOf("entryUUID", values), attrs, ldap3.SUBTREE, size, cookie
    )
    assert mine == encoder.encode(message)


def test_any_of_reads_the_same_entries_as_the_text_filter(slapd):
    conn = slapd.connect()
    uuids = []
    for i in range(5):
        dn = f"uid=anyof{i},{PEOPLE}"
        conn.add(
            dn, ["inetOrgPerson"], {"uid": f"anyof{i}", "cn": "A", "sn": "A", "jpegPhoto": PHOTO}
        )
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        uuids.append(str(conn.entries[0].entryUUID.value))
    from toolkit.ldap.search import AnyOf

    text = "(|" + "".join(f"(entryUUID={u})" for u in uuids[:4]) + ")"
    with detector_for(slapd) as detector:
        by_text, more_text = detector.read_page(slapd.suffix, text, ["*", "entryUUID"], 10)
        by_ber, more_ber = detector.read_page(
            slapd.suffix, AnyOf("entryUUID", tuple(uuids[:4])), ["*", "entryUUID"], 10
        )
        small, more_small = detector.read_page(
            slapd.suffix, AnyOf("entryUUID", tuple(uuids)), ["*", "entryUUID"], 2
        )
        after, _ = detector.read_page(slapd.suffix, AnyOf("entryUUID", (uuids[4],)), ["uid"], 10)
    assert [e.decode() for e in by_ber] == [e.decode() for e in by_text]
    assert len(by_ber) == 4 and not more_ber and not more_text
    assert by_ber[0].decode()["jpegphoto"] == [PHOTO]
    # a page cut short says so, and the connection is still good for the next search
    assert len(small) == 2 and more_small
    assert [e.decode()["uid"] for e in after] == [["anyof4"]]


def test_a_cursor_is_described_for_people():
    from toolkit.ldap.changes import describe_cursor, encode_cursor

    assert describe_cursor(None) == "not set"
    assert describe_cursor("garbage") == "unreadable"
    assert describe_cursor(encode_cursor("changelog", next=1234)) == "next change number 1234"
    assert describe_cursor(encode_cursor("accesslog", start=None, seen=[])) == (
        "the beginning of the feed"
    )
    seen = encode_cursor("accesslog", start="20261206130102.000001Z", seen=["x", "y"])
    assert describe_cursor(seen) == "after the change of 2026-12-06 13:01:02 UTC"
    since = encode_cursor("accesslog", start="20261206130102.000000Z", seen=[])
    assert describe_cursor(since) == "changes from 2026-12-06 13:01:02 UTC on"
