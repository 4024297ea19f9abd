"""How the state store commits deferred link writes (StateStore.flush), on a real SQLite file:
an UPDATE of what changed rather than the upsert, ending in exactly the upsert's state, and
the upsert after all when another connection changed or deleted a link meanwhile."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.sync.test_state_deferred import FORM, LINK, PIPE
from toolkit.sync.state import StateStore

# deferred writes: new ETag, hash and form; the same form (hash h1, no form); created False
UPDATES = [
    replace(LINK, etag='W/"2"', hash="h2", form={**FORM, "title": "New"}, created=False),
    replace(LINK, etag='W/"3"', hash="h2", form=None, created=False),
    replace(LINK, etag='W/"4"', hash="h3", form=None, created=False),
]


def stored(path: Path) -> tuple:
    """The link's row as another connection reads it, all but the time of the write."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT pipe, entry_uuid, dn, class_name, resource_type, scim_id, etag, hash,"
            " created, form FROM links"
        ).fetchall()
    finally:
        db.close()


def traced(store: StateStore) -> list[str]:
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    return statements


@pytest.mark.parametrize("count", [1, 2, 3])
def test_flush_updates_what_changed_and_ends_as_the_upsert_does(tmp_path, count):
    flushed, upserted = tmp_path / "flushed.db", tmp_path / "upserted.db"
    for path in (flushed, upserted):
        StateStore(path).save_links(PIPE, [LINK])
    by_flush, by_upsert = StateStore(flushed), StateStore(upserted)
    for update in UPDATES[:count]:
        by_flush.save_links(PIPE, [update], defer=True)
        by_upsert.save_links(PIPE, [update], defer=True)
    statements = traced(by_flush)
    by_flush.flush()
    by_upsert.save_cursor(PIPE, "c")  # its transaction upserts what waits
    assert any(s.startswith("UPDATE links") for s in statements), statements
    assert not any(s.startswith("INSERT INTO links") for s in statements), statements
    assert stored(flushed) == stored(upserted)
    assert by_flush.link(PIPE, "uuid-1").created  # created stays set


def _deferred_and_another_process(tmp_path) -> tuple[StateStore, StateStore]:
    """A store holding LINK with its first update deferred, and a second store on the same
    file (another process)."""
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    store.save_links(PIPE, [UPDATES[0]], defer=True)
    return store, StateStore(path)


def test_a_link_deleted_by_another_process_meanwhile_is_upserted_back(tmp_path):
    store, other = _deferred_and_another_process(tmp_path)
    other.delete_links(PIPE, ["uuid-1"])
    store.flush()
    got = other.link(PIPE, "uuid-1")
    assert got is not None  # as the upsert alone would have left it
    assert (got.etag, got.hash, got.form, got.created) == ('W/"2"', "h2", UPDATES[0].form, False)


def test_a_link_moved_by_another_process_meanwhile_gets_the_upsert(tmp_path):
    store, other = _deferred_and_another_process(tmp_path)
    other.save_links(PIPE, [replace(LINK, dn="uid=moved,dc=example,dc=com")])
    statements = traced(store)
    store.flush()
    assert any(s.startswith("INSERT INTO links") for s in statements), statements
    got = other.link(PIPE, "uuid-1")
    assert (got.dn, got.etag, got.hash) == (LINK.dn, 'W/"2"', "h2")


def test_a_flush_that_fails_keeps_what_waits_for_the_next(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    store.save_links(PIPE, [UPDATES[0]], defer=True)
    store._db.execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.flush()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.link(PIPE, "uuid-1").etag == 'W/"2"'  # still waiting, read back, committed
    assert StateStore(path).link(PIPE, "uuid-1").etag == 'W/"2"'


def test_a_link_read_before_another_process_moved_it_still_ends_as_the_upsert(tmp_path):
    """The Applier decides deferral against the links it read when the run began: one moved
    by another process since is deferred on stale knowledge, and the flush upserts it."""
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    read = store.links_by_keys(PIPE, ["UUID-1"])
    moved = replace(LINK, dn="uid=moved,dc=example,dc=com", scim_id="id-9")
    StateStore(path).save_links(PIPE, [moved])  # another process
    store.save_links(PIPE, [UPDATES[0]], defer=True, stored=read)
    store.flush()
    upserted = StateStore(tmp_path / "upserted.db")  # the same writes, UPDATES[0] not deferred
    upserted.save_links(PIPE, [moved])
    upserted.save_links(PIPE, [UPDATES[0]])
    assert stored(path) == stored(tmp_path / "upserted.db")
    assert stored(path)[0][2:6] == (LINK.dn, "users", "User", "id-1")
