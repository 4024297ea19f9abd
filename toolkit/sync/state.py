"""The state store: one SQLite file per config (`.scimsync/state.db` beside it).

It holds, per pipe: the link store (source entryUUID and DN <-> SCIM resource type, id,
ETag and the hash of the last applied form), the realtime cursor, failures, and the run
history. Writes are transactional (WAL), so a killed process loses nothing it reported done.

A link write that only records what was last applied to a resource already linked the same
way (its ETag, hash and form) may be deferred (`save_links(..., defer=True)`): it waits in
memory and is committed with the next `flush()`, with the realtime cursor (`save_cursor`,
one transaction), or once DEFER_LIMIT are waiting. Losing one to a kill costs nothing but
a later read of the resource (its If-Match answers 412), and the realtime batch it belongs
to is replayed since the cursor did not move. Reads of a link that waits flush it first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import processes
from toolkit.config.private import create_private, state_folder, tighten, tighten_state_files
from toolkit.errors import FatalError
from toolkit.plan.model import Link

# forms as stored; one encoder for all (json.dumps with options builds a new one per call)
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode

#: Deferred link writes waiting at most; more are committed at once, in one transaction.
DEFER_LIMIT = 256
_UPSERT_LINK = (
    "INSERT INTO links (pipe, entry_uuid, dn, class_name, resource_type, scim_id,"
    " etag, hash, created, updated_at, form) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (pipe, entry_uuid) DO UPDATE SET dn=excluded.dn,"
    " class_name=excluded.class_name, resource_type=excluded.resource_type,"
    " scim_id=excluded.scim_id, etag=excluded.etag, hash=excluded.hash,"
    " created=MAX(links.created, excluded.created), updated_at=excluded.updated_at,"
    " form=CASE WHEN excluded.hash IS links.hash THEN COALESCE(excluded.form, links.form)"
    " ELSE excluded.form END"
)
# A deferred write with the upsert's parameters: a link still as the deferral found it (same
# DN, class, resource type, id; created at least as set) gets what the upsert would give it.
_UPDATE_DEFERRED_LINK = (
    "UPDATE links SET etag=?7, hash=?8, updated_at=?10,"
    " form=CASE WHEN ?8 IS hash THEN COALESCE(?11, form) ELSE ?11 END"
    " WHERE pipe=?1 AND entry_uuid=?2 AND dn=?3 AND class_name=?4 AND resource_type=?5"
    " AND scim_id=?6 AND created>=?9"
)

#: PRAGMA application_id of a scimsync state database ("SCIM"), set when it is first opened.
APPLICATION_ID = 0x5343494D

# columns added after the first release: (table, column, type)
_ADDED_COLUMNS = (
    ("links", "form", "TEXT"),
    ("runs", "pid", "INTEGER"),
    ("runs", "pid_started", "INTEGER"),
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    pipe TEXT NOT NULL,
    entry_uuid TEXT NOT NULL,
    dn TEXT NOT NULL,
    class_name TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    scim_id TEXT NOT NULL,
    etag TEXT,
    hash TEXT,
    created INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    form TEXT,
    PRIMARY KEY (pipe, entry_uuid)
);
CREATE INDEX IF NOT EXISTS links_dn ON links (pipe, dn COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS links_target ON links (pipe, resource_type, scim_id);
CREATE TABLE IF NOT EXISTS cursors (
    pipe TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    pipe TEXT NOT NULL,
    key TEXT NOT NULL,
    dn TEXT NOT NULL,
    class_name TEXT,
    operation TEXT,
    error TEXT NOT NULL,
    kind TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    background_retries INTEGER NOT NULL DEFAULT 0,
    next_retry_at REAL,
    first_failed_at REAL NOT NULL,
    last_failed_at REAL NOT NULL,
    PRIMARY KEY (pipe, key)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipe TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    source_count INTEGER,
    totals TEXT,
    applied INTEGER,
    failed INTEGER,
    pid INTEGER,
    pid_started INTEGER
);
CREATE TABLE IF NOT EXISTS verified (
    pipe TEXT NOT NULL,
    entry_uuid TEXT NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (pipe, entry_uuid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deletes (
    pipe TEXT NOT NULL,
    class_name TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deletes_at ON deletes (pipe, at);
CREATE TABLE IF NOT EXISTS counters (
    pipe TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (pipe, name)
);
"""


@dataclass(frozen=True)
class Failure:
    key: str
    dn: str
    class_name: str | None
    operation: str | None
    error: str
    kind: str
    attempts: int
    background_retries: int
    next_retry_at: float | None


@dataclass(frozen=True)
class Run:
    id: int
    pipe: str
    kind: str
    started_at: float
    finished_at: float | None
    status: str
    source_count: int | None
    totals: dict[str, Any]
    applied: int | None
    failed: int | None


class StateError(FatalError):
    """The state database cannot be used: not a database, another application's, unreadable."""


class StateStore:
    """Thread-safe access to one state database."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        state_folder(self.path.parent)
        self._lock = threading.RLock()
        self._db = self._connect()
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:  # a state database from before the column
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StateError(f"{self.path}: cannot use the state database: {exc}") from None
        # deferred link writes, in the order made (each row as the upsert takes it)
        self._pending: list[tuple[Any, ...]] = []
        self._pending_keys: set[tuple[str, str]] = set()  # (pipe, entry_uuid) waiting
        self.mark_interrupted()

    def _connect(self) -> sqlite3.Connection:
        """The database, created 0600 (SQLite gives its -wal and -shm files the same mode),
        after checking that it is scimsync's: never a write into another application's."""
        if not self.path.exists():
            try:
                create_private(self.path)
            except FatalError as exc:
                raise StateError(str(exc)) from None
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            }
            if app_id != APPLICATION_ID and (app_id != 0 or (tables and "links" not in tables)):
                shown = ", ".join(sorted(tables)[:5]) or "none"
                raise StateError(
                    f"{self.path}: not a scimsync state database (an SQLite database of another "
                    f"application, tables: {shown}); scimsync leaves it as it is: move it away, "
                    "or put the config in another folder"
                )
            if app_id == 0:
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for suffix in ("", "-wal", "-shm"):  # ours: tightened if an older version left 0644
                tighten(self.path.with_name(self.path.name + suffix))
            tighten_state_files(self.path.parent)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StateError(
                f"{self.path}: not a usable state database ({exc}); move it away to start "
                "with an empty state (links are found again by correlation), or restore it "
                "from a backup"
            ) from None
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self.flush()
            self._db.close()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def _link_rows(self, pipe: str, sql: str, args: Iterable[Any]) -> list[tuple]:
        """Rows of the links table (entry_uuid first): a link written but deferred is
        committed before it is returned, so a read always sees the last write."""
        args = tuple(args)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
            if self._pending_keys and any((pipe, r[0]) in self._pending_keys for r in rows):
                self.flush()
                rows = self._db.execute(sql, args).fetchall()
            return rows

    # --- links -------------------------------------------------------------------------------

    def links(self, pipe: str) -> dict[str, Link]:
        """Every link of the pipe, by entryUUID (lower case)."""
        rows = self._link_rows(
            pipe,
            "SELECT entry_uuid, dn, class_name, resource_type, scim_id, etag, hash, created"
            " FROM links WHERE pipe = ?",
            (pipe,),
        )
        return {r[0]: Link(*r[:7], created=bool(r[7])) for r in rows}

    _ONE = (
        "SELECT entry_uuid, dn, class_name, resource_type, scim_id, etag, hash, created, form"
        " FROM links WHERE pipe = ? AND "
    )

    def _one(self, where: str, args: tuple) -> Link | None:
        rows = self._link_rows(args[0], self._ONE + where, args)
        if not rows:
            return None
        r = rows[0]
        return Link(*r[:7], created=bool(r[7]), form=json.loads(r[8]) if r[8] else None)

    def link(self, pipe: str, entry_uuid: str) -> Link | None:
        """One link, with the form last applied."""
        return self._one("entry_uuid = ?", (pipe, entry_uuid.lower()))

    def link_by_dn(self, pipe: str, dn: str) -> Link | None:
        return self._one("dn = ? COLLATE NOCASE", (pipe, dn))

    def link_of_target(self, pipe: str, resource_type: str, scim_id: str) -> Link | None:
        """The link of the entry whose resource this is, if the pipe manages it."""
        return self._one("resource_type = ? AND scim_id = ?", (pipe, resource_type, scim_id))

    def links_by_dns(self, pipe: str, dns: Iterable[str]) -> dict[str, Link]:
        """The links of these DNs (any case), by entryUUID; for resolving references."""
        return self._links_where(pipe, "dn COLLATE NOCASE", dns)

    def links_by_keys(self, pipe: str, entry_uuids: Iterable[str]) -> dict[str, Link]:
        """The links of these entries (without their forms), by entryUUID (lower case)."""
        return self._links_where(pipe, "entry_uuid", (key.lower() for key in entry_uuids))

    def _links_where(self, pipe: str, column: str, values: Iterable[str]) -> dict[str, Link]:
        wanted = list(dict.fromkeys(values))
        found: dict[str, Link] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._link_rows(
                pipe,
                "SELECT entry_uuid, dn, class_name, resource_type, scim_id, etag, hash, created"
                f" FROM links WHERE pipe = ? AND {column} IN ({marks})",
                (pipe, *part),
            )
            found.update({r[0]: Link(*r[:7], created=bool(r[7])) for r in rows})
        return found

    def save_links(
        self,
        pipe: str,
        links: Iterable[Link],
        defer: bool = False,
        stored: Mapping[str, Link] | None = None,
    ) -> None:
        """Create or update links. With `defer`, a link already stored with the same DN,
        class, resource type and id (only its ETag, hash and form are new) waits for the next
        flush; any other is written at once. `stored`: links the caller read from this store
        (by entryUUID, lower case); a link found there is compared with it rather than read
        again. Should it have changed since, the flush finds so and writes the link whole."""
        now = time.time()
        rows = [_link_row(pipe, lk, now) for lk in links]
        with self._lock:
            if defer:
                rows = [r for r in rows if not self._deferred(pipe, r, stored)]
                if len(self._pending) >= DEFER_LIMIT:
                    self.flush()
            if not rows:
                return
            with self.transaction() as db:  # after what waits: in the order written
                db.executemany(_UPSERT_LINK, rows)

    def _deferred(self, pipe: str, row: tuple[Any, ...], known: Mapping[str, Link] | None) -> bool:
        """Keep `row` for the next flush if it changes nothing but ETag, hash and form."""
        link = known.get(row[1]) if known else None
        if link is not None and link.entry_uuid.lower() == row[1]:
            stored: tuple[Any, ...] | None = (
                link.dn,
                link.class_name,
                link.resource_type,
                link.scim_id,
                int(link.created),
            )
        else:  # what the caller did not read: as stored now
            stored = self._db.execute(
                "SELECT dn, class_name, resource_type, scim_id, created FROM links"
                " WHERE pipe = ? AND entry_uuid = ?",
                (pipe, row[1]),
            ).fetchone()
        if stored is None or tuple(stored[:4]) != row[2:6] or row[8] > stored[4]:
            return False
        self._pending.append(row)
        self._pending_keys.add((pipe, row[1]))
        return True

    def flush(self) -> None:
        """Commit the deferred link writes (one transaction). Each is written as an UPDATE of
        what it changes (ETag, hash, form, time), a fifth of the upsert's cost (no index
        entry rewritten); should any link no longer be stored as it was when its write was
        deferred (another process changed or deleted it), all are upserted after all, which
        ends in the same state as the upsert alone."""
        with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, []  # not for transaction() to upsert
            try:
                with self.transaction() as db:
                    updated = db.executemany(_UPDATE_DEFERRED_LINK, pending).rowcount
                    if updated != len(pending):
                        db.executemany(_UPSERT_LINK, pending)
            except BaseException:
                self._pending = pending + self._pending
                raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; deferred link writes go first in it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._pending:
                    self._db.executemany(_UPSERT_LINK, self._pending)
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._pending.clear()
            self._pending_keys.clear()

    def delete_links(self, pipe: str, entry_uuids: Iterable[str]) -> None:
        keys = [(pipe, u.lower()) for u in entry_uuids]
        with self.transaction() as db:
            db.executemany("DELETE FROM links WHERE pipe = ? AND entry_uuid = ?", keys)
            db.executemany("DELETE FROM verified WHERE pipe = ? AND entry_uuid = ?", keys)

    # --- the quick check's keys (toolkit.plan.quickcheck) -----------------------------------------

    def quick_check_keys(self, pipe: str) -> dict[str, bytes]:
        """Entry key -> the key of the inputs on which a plan last found its object unchanged."""
        rows = self._query("SELECT entry_uuid, key FROM verified WHERE pipe = ?", (pipe,))
        return dict(rows)

    def save_quick_check_keys(self, pipe: str, keys: Mapping[str, bytes]) -> None:
        if not keys:  # a scheduled run finds most objects as before: nothing to write
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO verified (pipe, entry_uuid, key) VALUES (?,?,?)",
                [(pipe, entry, key) for entry, key in keys.items()],
            )

    # --- cursor ------------------------------------------------------------------------------

    def cursor(self, pipe: str) -> str | None:
        rows = self._query("SELECT cursor FROM cursors WHERE pipe = ?", (pipe,))
        return rows[0][0] if rows else None

    def save_cursor(self, pipe: str, cursor: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cursors (pipe, cursor, updated_at) VALUES (?,?,?)"
                " ON CONFLICT (pipe) DO UPDATE SET cursor=excluded.cursor,"
                " updated_at=excluded.updated_at",
                (pipe, cursor, time.time()),
            )

    # --- failures ----------------------------------------------------------------------------

    def put_failure(
        self,
        pipe: str,
        key: str,
        dn: str,
        error: str,
        kind: str,
        attempts: int,
        background_retries: int = 0,
        next_retry_at: float | None = None,
        class_name: str | None = None,
        operation: str | None = None,
    ) -> None:
        """Set one object's failure row as given (first_failed_at is kept)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO failures (pipe, key, dn, class_name, operation, error, kind, attempts,"
                " background_retries, next_retry_at, first_failed_at, last_failed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (pipe, key) DO UPDATE SET"
                " dn=excluded.dn, class_name=COALESCE(excluded.class_name, failures.class_name),"
                " operation=COALESCE(excluded.operation, failures.operation),"
                " error=excluded.error, kind=excluded.kind, attempts=excluded.attempts,"
                " background_retries=excluded.background_retries,"
                " next_retry_at=excluded.next_retry_at, last_failed_at=excluded.last_failed_at",
                (
                    pipe,
                    key,
                    dn,
                    class_name,
                    operation,
                    error or "unknown error",
                    kind,
                    attempts,
                    background_retries,
                    next_retry_at,
                    now,
                    now,
                ),
            )

    def clear_failure(self, pipe: str, key: str) -> None:
        """Forget the object's failure; no write at all when it has none (the usual case:
        every applied row clears its key)."""
        with self._lock:
            if not self._query(
                "SELECT 1 FROM failures WHERE pipe = ? AND key = ? LIMIT 1", (pipe, key)
            ):
                return
            with self.transaction() as db:
                db.execute("DELETE FROM failures WHERE pipe = ? AND key = ?", (pipe, key))

    def failures(self, pipe: str) -> list[Failure]:
        rows = self._query(
            "SELECT key, dn, class_name, operation, error, kind, attempts, background_retries,"
            " next_retry_at FROM failures WHERE pipe = ? ORDER BY first_failed_at",
            (pipe,),
        )
        return [Failure(*r) for r in rows]

    # --- runs --------------------------------------------------------------------------------

    def start_run(self, pipe: str, kind: str) -> int:
        """A run of this process begins: recorded "running" with its PID and start time, so
        that once the process is gone without finishing it, the run reads "interrupted"."""
        me = processes.this_process()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (pipe, kind, started_at, status, pid, pid_started)"
                " VALUES (?,?,?,?,?,?)",
                (pipe, kind, time.time(), "running", me.pid, me.started),
            )
            return int(cur.lastrowid)

    def mark_interrupted(self) -> None:
        """Runs still "running" whose process is gone (killed, or the machine went down)
        become "interrupted". A run from before PIDs were recorded has none: it cannot be
        running (the process that opened this store is newer), so it is interrupted too."""
        with self._lock:
            running = self._db.execute(
                "SELECT id, pid, pid_started FROM runs WHERE status = 'running'"
            ).fetchall()
            gone = [
                (run_id,) for run_id, pid, started in running if not processes.alive(pid, started)
            ]
            if gone:
                with self.transaction() as db:
                    db.executemany(
                        "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                        gone,
                    )

    def finish_run(
        self,
        run_id: int,
        status: str,
        source_count: int | None = None,
        totals: dict[str, Any] | None = None,
        applied: int | None = None,
        failed: int | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at=?, status=?, source_count=?, totals=?, applied=?,"
                " failed=? WHERE id=?",
                (
                    time.time(),
                    status,
                    source_count,
                    json.dumps(totals or {}),
                    applied,
                    failed,
                    run_id,
                ),
            )

    def runs(self, pipe: str, kind: str | None = None, status: str | None = None) -> list[Run]:
        """The pipe's runs, oldest first (a run whose process is gone reads "interrupted")."""
        self.mark_interrupted()
        sql = (
            "SELECT id, pipe, kind, started_at, finished_at, status, source_count, totals,"
            " applied, failed FROM runs WHERE pipe = ?"
        )
        args: list[Any] = [pipe]
        if kind:
            sql, args = sql + " AND kind = ?", [*args, kind]
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        rows = self._query(sql + " ORDER BY id", args)
        return [Run(*r[:7], json.loads(r[7] or "{}"), r[8], r[9]) for r in rows]

    def last_source_count(self, pipe: str) -> int | None:
        """The source size of the last completed resync: the base for the shrink guard."""
        done = [
            r
            for r in self.runs(pipe, kind="resync")
            if r.status in ("completed", "completed-with-failures") and r.source_count
        ]
        return done[-1].source_count if done else None

    # --- deletes (realtime's delete guard) ----------------------------------------------------

    def record_delete(self, pipe: str, class_name: str, keep: float) -> None:
        """One delete applied by realtime sync now; those older than `keep` seconds go."""
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM deletes WHERE pipe=? AND at<?", (pipe, now - keep))
            db.execute("INSERT INTO deletes VALUES (?,?,?)", (pipe, class_name, now))

    def recent_deletes(self, pipe: str, since: float) -> list[tuple[str, float]]:
        """(class, when) of the deletes realtime sync applied since then."""
        return self._query(
            "SELECT class_name, at FROM deletes WHERE pipe=? AND at>=? ORDER BY at", (pipe, since)
        )

    def link_counts(self, pipe: str) -> dict[str, int]:
        """How many resources this pipe manages per class."""
        return dict(
            self._query("SELECT class_name, COUNT(*) FROM links WHERE pipe=? GROUP BY 1", (pipe,))
        )

    # --- counters (realtime status) ----------------------------------------------------------

    def bump(self, pipe: str, name: str, by: int = 1) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO counters (pipe, name, value) VALUES (?,?,?) ON CONFLICT (pipe, name)"
                " DO UPDATE SET value = counters.value + excluded.value",
                (pipe, name, by),
            )

    def counters(self, pipe: str) -> dict[str, int]:
        return dict(self._query("SELECT name, value FROM counters WHERE pipe = ?", (pipe,)))


def _link_row(pipe: str, lk: Link, now: float) -> tuple[Any, ...]:
    """A link as the upsert's parameters."""
    return (
        pipe,
        lk.entry_uuid.lower(),
        lk.dn,
        lk.class_name,
        lk.resource_type,
        lk.scim_id,
        lk.etag,
        lk.hash,
        int(lk.created),
        now,
        _ENCODE(lk.form) if lk.form else None,
    )
