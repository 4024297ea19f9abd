"""realtime-sync: follow the source's change feed and apply each change to the SCIM target.

One thread polls the feed from the persisted cursor. Each batch is split by entry: the
changes of one entry stay in order (they are reconciled once, against the entry as it is
now), different entries run in parallel on `num-worker-threads`. The cursor moves past a
batch only once every change in it has an outcome recorded (applied, no change needed,
dropped, or a failure in the failures table), so a process killed at any moment loses
nothing: the next start replays at most one batch, and replaying is harmless.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toolkit.config.model import Config, SyncPipe
from toolkit.errors import FatalError
from toolkit.ldap.changes import Change, ChangeDetector
from toolkit.ldap.fromconfig import open_source
from toolkit.ldap.source import LdapSource
from toolkit.mapping import load_mapping
from toolkit.mapping.dn import normalize_dn
from toolkit.scim.client import ScimClient
from toolkit.scim.fromconfig import destination_endpoint
from toolkit.sync import synclog
from toolkit.sync.reconcile import Reconciler, Result
from toolkit.sync.state import StateStore

BATCH = 500
KIND_FLAG = {"add": "creates", "modify": "modifies", "modrdn": "modifies", "delete": "deletes"}


def pid_file(config: Config, pipe: SyncPipe) -> Path:
    return config.state_dir / f"{pipe.name}-realtime.pid"


def status_file(config: Config, pipe: SyncPipe) -> Path:
    return config.state_dir / f"{pipe.name}-status.json"


def log_file(config: Config, pipe: SyncPipe) -> Path:
    return config.state_dir / f"{pipe.name}-sync.log"


def running_pid(config: Config, pipe: SyncPipe) -> int | None:
    path = pid_file(config, pipe)
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


# --- start points ------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """Ping's rewind syntax: `2h30m`, `1d`, `90s`, `500ms`."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise FatalError(
            f"--startpoint-rewind {text!r}: expected a duration such as 2h30m, 1d, 90s or 500ms"
        )
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def set_startpoint(config: Config, pipe_name: str | None, how: str, value: Any = None) -> str:
    """Persist where realtime sync starts: beginning, end, change-number, rewind or time."""
    pipe = config.pipe(pipe_name)
    if running_pid(config, pipe):
        raise FatalError(f"pipe {pipe.name} is running; `scimsync realtime-sync stop` first")
    source = _ldap_source(config, pipe)
    detector, _ = source.change_detector()
    try:
        if how == "beginning":
            cursor = detector.cursor_at_beginning()
        elif how == "end":
            cursor = detector.cursor_at_end()
        elif how == "change-number":
            cursor = detector.cursor_at_change_number(int(value))
        elif how == "rewind":
            cursor = detector.cursor_rewound(parse_duration(value))
        elif how == "time":
            cursor = detector.cursor_at_time(_rfc3339(value))
        else:
            raise FatalError(f"unknown start point {how}")
    finally:
        detector.close()
        source.close()
    store = StateStore(config.state_dir / "state.db")
    try:
        store.save_cursor(pipe.name, cursor)
    finally:
        store.close()
    return cursor


def _rfc3339(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FatalError(
            f"--startpoint-time {text!r}: expected RFC 3339, e.g. 2026-11-28T10:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ldap_source(config: Config, pipe: SyncPipe) -> LdapSource:
    source = open_source(config, config.source_of(pipe))
    if not isinstance(source, LdapSource):
        source.close()
        raise FatalError(
            f"sync-sources.{pipe.sync_source}: an ldif source has no change feed; realtime sync needs an LDAP source"
        )
    return source


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class Stats:
    started_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    detector: str = ""
    cursor: str | None = None
    changes: int = 0
    batches: int = 0
    completed: dict[str, int] = field(default_factory=dict)
    last_change_time: str | None = None
    last_poll_at: float | None = None
    ops_per_second: float = 0.0
    idle: bool = False

    def count(self, msg_type: str) -> None:
        self.completed[msg_type] = self.completed.get(msg_type, 0) + 1


class RealtimeSync:
    """One pipe's realtime loop; `run()` returns when stopped, idle (until_idle) or done."""

    def __init__(self, config: Config, pipe_name: str | None = None, workers: int | None = None):
        self.config = config
        self.pipe = config.pipe(pipe_name)
        self.source = _ldap_source(config, self.pipe)
        self.detector: ChangeDetector | None = None
        self.store = StateStore(config.state_dir / "state.db")
        self.client = ScimClient(destination_endpoint(config, self.pipe))
        mappings = load_mapping(config.mapping_file_of(config.destination_of(self.pipe)))
        self.reconciler = Reconciler(
            config, self.pipe, mappings, self.source, self.client, self.store
        )
        self.log = synclog.SyncLog(log_file(config, self.pipe), self.pipe.name)
        self.workers = workers or self.pipe.num_worker_threads
        self.stop_event = threading.Event()
        self.stats = Stats()

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()
        for closable in (self.source, self.client, self.store, self.log):
            closable.close()

    def run(self, until_idle: bool = False, max_changes: int | None = None) -> Stats:
        self.detector, reason = self.source.change_detector()
        self.stats.detector = reason
        cursor = self.store.cursor(self.pipe.name)
        if cursor is None:  # first start without set-startpoint: changes from now on
            cursor = self.detector.cursor_at_end()
            self.store.save_cursor(self.pipe.name, cursor)
        self.stats.cursor = cursor
        interval = self.pipe.change_detection_polling_interval
        with ThreadPoolExecutor(self.workers, thread_name_prefix="scimsync-realtime") as pool:
            while not self.stop_event.is_set():
                limit = (
                    BATCH if max_changes is None else min(BATCH, max_changes - self.stats.changes)
                )
                if limit <= 0:
                    break
                self.stats.last_poll_at = time.time()
                changes, next_cursor = self.detector.poll(cursor, limit)
                self._retry_failures(pool)
                if changes:
                    self._process(changes, pool)
                if next_cursor != cursor:
                    self.store.save_cursor(self.pipe.name, next_cursor)
                    cursor = self.stats.cursor = next_cursor
                self.stats.idle = not changes
                self._write_status()
                if not changes:
                    if until_idle:
                        break
                    self.stop_event.wait(interval)
        self._write_status()
        return self.stats

    def _process(self, changes: list[Change], pool: ThreadPoolExecutor) -> None:
        """Reconcile each entry of the batch once; log every change with its outcome."""
        started = time.perf_counter()
        by_entry: OrderedDict[str, list[Change]] = OrderedDict()
        for change in changes:
            self.log.write(
                synclog.CHANGE_DETECTED,
                kind=change.kind,
                dn=change.dn,
                new_dn=change.new_dn,
                change_number=change.change_number,
                csn=change.csn,
            )
            by_entry.setdefault(_identity(change), []).append(change)
        results = list(pool.map(self._reconcile_entry, by_entry.values()))
        retry = [
            group
            for group, result in zip(by_entry.values(), results, strict=True)
            if result.unresolved
        ]
        if retry:  # references to entries created in this batch: one more pass now that they exist
            again = dict(zip(map(id, retry), pool.map(self._reconcile_entry, retry), strict=True))
            results = [again.get(id(g), r) for g, r in zip(by_entry.values(), results, strict=True)]
        for group, result in zip(by_entry.values(), results, strict=True):
            for _ in group:  # the final outcome of each change
                self.stats.count(result.msg_type)
        elapsed = time.perf_counter() - started
        self.stats.changes += len(changes)
        self.stats.batches += 1
        self.stats.ops_per_second = len(changes) / elapsed if elapsed > 0 else 0.0
        last = changes[-1]
        self.stats.last_change_time = last.time.isoformat() if last.time else None

    def _reconcile_entry(self, group: list[Change]) -> Result:
        last = group[-1]
        try:
            result = self._reconcile(group)
        except FatalError:
            self.stop_event.set()
            raise
        except Exception as exc:  # one entry's trouble never stops the others
            result = Result(
                synclog.CHANGE_FAILED,
                dn=last.new_dn or last.dn,
                detail=f"{type(exc).__name__}: {exc}",
            )
        if result.msg_type == synclog.CHANGE_FAILED:
            self._record_failure(last, result)
        for change in group:
            self.log.write(
                result.msg_type,
                kind=change.kind,
                dn=result.dn or change.new_dn or change.dn,
                change_number=change.change_number,
                csn=change.csn,
                situation=result.situation,
                scim_id=result.scim_id,
                **{"class": result.class_name},
                detail=result.detail or None,
                changes=result.changes or None,
            )
        return result

    def _reconcile(self, group: list[Change]) -> Result:
        last = group[-1]
        dn = last.new_dn or last.dn
        unique_id = last.entry_uuid or last.unique_id
        unique_attr = "entryUUID" if last.entry_uuid else last.unique_id_attribute
        entry = (
            None if last.kind == "delete" else self.reconciler.locate(dn, unique_id, unique_attr)
        )
        link = None
        if last.entry_uuid:
            link = self.store.link(self.pipe.name, last.entry_uuid)
        if link is None and entry is None:
            link = self.store.link_by_dn(
                self.pipe.name, last.dn
            )  # 389-DS deletes carry no entryUUID
        kinds = {c.kind for c in group}
        flag = "creates" if kinds == {"add"} else ("deletes" if last.kind == "delete" else None)
        return self.reconciler.reconcile(
            entry, link, kind_allowed=flag if entry is not None else None
        )

    def _record_failure(self, change: Change, result: Result) -> None:
        retries = self.pipe.max_failed_op_background_retries
        next_at = time.time() + self.pipe.failed_op_background_retry_delay if retries > 0 else None
        key = change.entry_uuid or change.unique_id or normalize_dn(change.new_dn or change.dn)
        self.store.record_failure(
            self.pipe.name,
            key,
            change.new_dn or change.dn,
            result.detail,
            "realtime",
            attempts=self.pipe.max_operation_attempts,
            class_name=result.class_name,
            operation=change.kind,
            next_retry_at=next_at,
        )

    def _retry_failures(self, pool: ThreadPoolExecutor) -> None:
        """The second retry level: failed changes again after failed-op-background-retry-delay."""
        now = time.time()
        due = [
            f
            for f in self.store.failures(self.pipe.name)
            if f.next_retry_at is not None
            and f.next_retry_at <= now
            and f.background_retries < self.pipe.max_failed_op_background_retries
        ]
        for failure in due:
            entry = self.reconciler.locate(failure.dn, None, None)
            link = self.store.link_by_dn(self.pipe.name, failure.dn)
            result = self.reconciler.reconcile(entry, link)
            self.log.write(
                result.msg_type,
                dn=failure.dn,
                detail=f"background retry: {result.detail}",
                situation=result.situation,
                scim_id=result.scim_id,
            )
            if result.msg_type == synclog.CHANGE_FAILED:
                final = failure.background_retries + 1 >= self.pipe.max_failed_op_background_retries
                self.store.record_failure(
                    self.pipe.name,
                    failure.key,
                    failure.dn,
                    result.detail,
                    "realtime",
                    attempts=1,
                    next_retry_at=None
                    if final
                    else now + self.pipe.failed_op_background_retry_delay,
                )
            else:
                self.store.clear_failure(self.pipe.name, failure.key)

    def _write_status(self) -> None:
        path = status_file(self.config, self.pipe)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.stats), default=str))
        tmp.replace(path)


def _identity(change: Change) -> str:
    """Changes with the same identity are one entry's: kept in order, reconciled together."""
    if change.entry_uuid:
        return "uuid:" + change.entry_uuid.lower()
    if change.unique_id:
        return "uid:" + change.unique_id.lower()
    return "dn:" + str(normalize_dn(change.dn))


# --- start, stop, status -----------------------------------------------------------------------


def run_foreground(
    config: Config, pipe_name: str | None, until_idle: bool, max_changes: int | None
) -> Stats:
    sync = RealtimeSync(config, pipe_name)
    pidf = pid_file(config, sync.pipe)
    if running_pid(config, sync.pipe):
        sync.close()
        raise FatalError(f"pipe {sync.pipe.name} is already running (pid file {pidf})")
    pidf.parent.mkdir(parents=True, exist_ok=True)
    pidf.write_text(f"{os.getpid()}\n")

    def stop(*_: object) -> None:
        sync.stop_event.set()  # in-flight changes finish; the cursor is saved; then exit

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return sync.run(until_idle=until_idle, max_changes=max_changes)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sync.close()
        pidf.unlink(missing_ok=True)


def start_detached(config: Config, pipe_name: str | None) -> int:
    """Run `realtime-sync start --foreground` in the background; returns its PID."""
    pipe = config.pipe(pipe_name)
    if running_pid(config, pipe):
        raise FatalError(f"pipe {pipe.name} is already running")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    out = open(config.state_dir / f"{pipe.name}-realtime.out", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit.cli",
            "--config",
            str(config.path),
            "realtime-sync",
            "start",
            "--pipe-name",
            pipe.name,
            "--foreground",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if running_pid(config, pipe) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            tail = (config.state_dir / f"{pipe.name}-realtime.out").read_text(errors="replace")[
                -800:
            ]
            raise FatalError(f"realtime sync exited at start ({proc.returncode}): {tail}")
        time.sleep(0.05)
    raise FatalError("realtime sync did not start within 30 s")


def stop(config: Config, pipe_name: str | None, timeout: float = 120.0) -> int | None:
    """Ask the running process to stop after its in-flight changes; wait until it has."""
    pipe = config.pipe(pipe_name)
    pid = running_pid(config, pipe)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(config, pipe) == pid:
        time.sleep(0.05)
    if running_pid(config, pipe) == pid:
        raise FatalError(f"pipe {pipe.name} (pid {pid}) did not stop within {timeout:.0f} s")
    return pid


def status(config: Config, pipe_name: str | None) -> dict[str, Any]:
    """Started or not, cursor, lag, rates, completion counters, failures."""
    pipe = config.pipe(pipe_name)
    store = StateStore(config.state_dir / "state.db")
    try:
        cursor = store.cursor(pipe.name)
        failures = store.failures(pipe.name)
        links = len(store.links(pipe.name))
        runs = store.runs(pipe.name)
    finally:
        store.close()
    stats: dict[str, Any] = {}
    path = status_file(config, pipe)
    if path.exists():
        stats = json.loads(path.read_text())
    pid = running_pid(config, pipe)
    behind, seconds = _lag(config, pipe, cursor)
    last_resync = next((r for r in reversed(runs) if r.kind == "resync"), None)
    return {
        "pipe": pipe.name,
        "started": pid is not None,
        "pid": pid,
        "cursor": cursor,
        "detector": stats.get("detector"),
        "lag": {"changes": behind, "seconds": seconds},
        "ops_per_second": round(stats.get("ops_per_second", 0.0), 1) if pid else 0.0,
        "changes_processed": stats.get("changes", 0),
        "completed": stats.get("completed", {}),
        "failures": [
            {
                "dn": f.dn,
                "error": f.error,
                "attempts": f.attempts,
                "background_retries": f.background_retries,
            }
            for f in failures
        ],
        "links": links,
        "last_resync": {"status": last_resync.status, "totals": last_resync.totals}
        if last_resync
        else None,
    }


def _lag(
    config: Config, pipe: SyncPipe, cursor: str | None, cap: int = 10000
) -> tuple[int | None, float | None]:
    """How many changes (up to `cap`) wait after the cursor, and how old the oldest is."""
    if cursor is None:
        return None, None
    try:
        source = _ldap_source(config, pipe)
    except FatalError:
        return None, None
    try:
        detector, _ = source.change_detector()
        try:
            changes, _ = detector.poll(cursor, cap)
        finally:
            detector.close()
    except Exception:
        return None, None
    finally:
        source.close()
    if not changes:
        return 0, 0.0
    first = changes[0].time
    seconds = (datetime.now(UTC) - first).total_seconds() if first else None
    return len(changes), seconds
