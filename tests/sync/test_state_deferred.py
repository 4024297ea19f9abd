"""The state store's deferred link writes and its failure clearing, on a real SQLite file:
what waits is read back, committed with the cursor in one transaction, and only what can be
lost without harm ever waits (a process killed with SIGKILL loses no link)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from toolkit.plan.model import Link
from toolkit.sync.state import DEFER_LIMIT, StateStore

ROOT = Path(__file__).resolve().parents[2]
PIPE = "p"
FORM = {"userName": "jdoe", "title": "Old"}
LINK = Link(
    "UUID-1",
    "uid=jdoe,ou=people,dc=example,dc=com",
    "users",
    "User",
    "id-1",
    'W/"1"',
    "h1",
    True,
    FORM,
)


def other_store(path: Path) -> StateStore:
    """A second connection to the same file: what another process would see."""
    return StateStore(path)


def writes(store: StateStore) -> list[str]:
    """The statements the store's connection runs from now on (a trace of real SQLite calls)."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    return statements


def test_clearing_a_failure_that_is_not_there_writes_nothing(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.put_failure(PIPE, "failed-key", "uid=x", "503", "retriable", attempts=1)
    traced = writes(store)
    store.clear_failure(PIPE, "never-failed")
    assert not [s for s in traced if s.startswith(("BEGIN", "DELETE", "COMMIT"))], traced
    store.clear_failure(PIPE, "failed-key")
    assert any(s.startswith("DELETE FROM failures") for s in traced)
    assert store.failures(PIPE) == []


def test_a_new_link_is_written_at_once_even_when_deferral_is_asked(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.save_links(PIPE, [LINK], defer=True)
    assert other_store(tmp_path / "state.db").link(PIPE, "uuid-1") is not None


def test_an_etag_update_waits_is_read_back_and_commits_with_the_cursor(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    updated = replace(LINK, etag='W/"2"', hash="h2", form={**FORM, "title": "New"}, created=False)
    store.save_links(PIPE, [updated], defer=True)
    other = other_store(path)
    assert other.link(PIPE, "uuid-1").etag == 'W/"1"'  # not committed yet
    traced = writes(store)
    store.save_cursor(PIPE, "cursor-after-the-batch")
    assert [s for s in traced if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    got = other.link(PIPE, "uuid-1")
    assert (got.etag, got.hash, got.form, got.created) == ('W/"2"', "h2", updated.form, True)
    assert other.cursor(PIPE) == "cursor-after-the-batch"


def test_a_read_of_a_waiting_link_sees_the_last_write(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.save_links(PIPE, [LINK])
    store.save_links(PIPE, [replace(LINK, etag='W/"2"', hash="h2")], defer=True)
    # the form is kept when the hash says it is the same form; the read sees that too
    store.save_links(PIPE, [replace(LINK, etag='W/"3"', hash="h2", form=None)], defer=True)
    assert store.link(PIPE, "UUID-1").etag == 'W/"3"'
    assert store.link(PIPE, "uuid-1").form == FORM
    assert store.links_by_dns(PIPE, [LINK.dn.upper()])["uuid-1"].etag == 'W/"3"'
    assert store.links_by_keys(PIPE, ["UUID-1"])["uuid-1"].etag == 'W/"3"'


def test_links_by_keys_reads_any_number_in_queries_of_500(tmp_path):
    store = StateStore(tmp_path / "state.db")
    links = [replace(LINK, entry_uuid=f"U{i}", dn=f"uid=u{i},dc=x") for i in range(1200)]
    store.save_links(PIPE, links)
    traced = writes(store)
    got = store.links_by_keys(PIPE, [lk.entry_uuid for lk in links] + ["U7", "missing"])
    assert sorted(got) == sorted(lk.entry_uuid.lower() for lk in links)
    assert got["u7"] == replace(links[7], entry_uuid="u7")
    assert len([s for s in traced if s.startswith("SELECT")]) == 3


def test_a_moved_or_reassigned_link_is_never_deferred(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    store.save_links(PIPE, [replace(LINK, dn="uid=jdoe2,ou=people,dc=example,dc=com")], defer=True)
    assert other_store(path).link(PIPE, "uuid-1").dn.startswith("uid=jdoe2")
    store.save_links(
        PIPE,
        [replace(LINK, dn="uid=jdoe2,ou=people,dc=example,dc=com", scim_id="id-9")],
        defer=True,
    )
    assert other_store(path).link(PIPE, "uuid-1").scim_id == "id-9"


def test_deferred_writes_are_bounded(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    links = [replace(LINK, entry_uuid=f"u{i}", dn=f"uid=u{i},dc=x") for i in range(DEFER_LIMIT + 1)]
    store.save_links(PIPE, links)
    store.save_links(PIPE, [replace(lk, etag="new") for lk in links], defer=True)
    committed = other_store(path).links(PIPE)
    assert sum(1 for lk in committed.values() if lk.etag == "new") >= DEFER_LIMIT


def test_sigkill_loses_only_the_waiting_etag_never_a_link(tmp_path):
    """A process killed (SIGKILL) after a create and then a deferred update: the new link is
    there, the update's ETag is lost, the cursor did not move (realtime replays the batch)."""
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    store.save_cursor(PIPE, "before")
    store.close()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from dataclasses import replace
        from toolkit.plan.model import Link
        from toolkit.sync.state import StateStore
        store = StateStore({str(path)!r})
        old = store.link("p", "uuid-1")
        store.save_links("p", [Link("uuid-2", "uid=new,dc=x", "users", "User", "id-2", "e", "h", True)], defer=True)
        store.save_links("p", [replace(old, etag="lost", created=False)], defer=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    after = StateStore(path)
    assert after.link(PIPE, "uuid-1").etag == 'W/"1"'
    assert after.link(PIPE, "uuid-2").created
    assert after.cursor(PIPE) == "before"


def test_a_link_the_caller_read_decides_the_deferral_without_reading_it_again(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    read = store.link(PIPE, "uuid-1")
    traced = writes(store)
    store.save_links(
        PIPE, [replace(read, etag='W/"2"', created=False)], defer=True, stored={"uuid-1": read}
    )
    assert not [s for s in traced if s.startswith(("SELECT", "INSERT", "BEGIN"))], traced
    assert other_store(path).link(PIPE, "uuid-1").etag == 'W/"1"'  # waiting, as with a read
    store.flush()
    assert other_store(path).link(PIPE, "uuid-1").etag == 'W/"2"'


def test_a_link_the_caller_read_that_differs_is_written_at_once(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.save_links(PIPE, [LINK])
    read = store.link(PIPE, "uuid-1")
    moved = replace(read, dn="uid=jdoe2,ou=people,dc=example,dc=com", etag='W/"2"')
    store.save_links(PIPE, [moved], defer=True, stored={"uuid-1": read})
    assert other_store(path).link(PIPE, "uuid-1").dn.startswith("uid=jdoe2")
    # a link the caller did not read is looked up: here a new one, written at once
    new = Link("uuid-2", "uid=new,dc=x", "users", "User", "id-2", "e", "h", False)
    store.save_links(PIPE, [new], defer=True, stored={"uuid-1": read})
    assert other_store(path).link(PIPE, "uuid-2") is not None
