"""Where realtime sync starts reading the change feed: set by the operator, or by the first
resync.

The start point must be set before the initial resync reads the source, so that no change
made during or after that read is lost: `resync` sets it at the end of the feed itself when
the pipe has none (`mark_before_first_resync`), so no face has to remember to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from toolkit.config.durations import DurationError, parse_duration
from toolkit.config.model import Config, SyncPipe
from toolkit.config.properties import check_positive
from toolkit.errors import FatalError, ScimsyncError
from toolkit.ldap.fromconfig import open_source
from toolkit.ldap.source import EntrySource, LdapSource
from toolkit.sync.files import pipe_files
from toolkit.sync.state import StateStore

HOWS = ("beginning", "end", "change-number", "rewind", "time")


def feed_source(config: Config, pipe: SyncPipe) -> LdapSource:
    """The pipe's LDAP source, which has a change feed."""
    source = open_source(config, config.source_of(pipe))
    try:
        return require_feed(source, pipe)
    except BaseException:
        source.close()
        raise


def require_feed(source: EntrySource, pipe: SyncPipe) -> LdapSource:
    """`source` as one with a change feed (an LDIF source has none)."""
    if not isinstance(source, LdapSource):
        raise FatalError(
            f"sync-sources.{pipe.sync_source}: an ldif source has no change feed; "
            "realtime sync needs an LDAP source"
        )
    return source


def set_startpoint(config: Config, pipe_name: str | None, how: str, value: Any = None) -> str:
    """Persist where realtime sync starts: beginning, end, change-number, rewind or time."""
    pipe = config.pipe(pipe_name)
    if how == "change-number":
        check_positive(value, "--change-number", integer=True)
    if pipe_files(config, pipe).running_pid():
        raise FatalError(f"pipe {pipe.name} is running; `scimsync realtime-sync stop` first")
    if how not in HOWS:
        raise FatalError(f"unknown start point {how}")
    source = feed_source(config, pipe)
    detector, _ = source.change_detector()
    try:
        if how == "beginning":
            cursor = detector.cursor_at_beginning()
        elif how == "end":
            cursor = detector.cursor_at_end()
        elif how == "change-number":
            cursor = detector.cursor_at_change_number(int(value))
        elif how == "rewind":
            cursor = detector.cursor_rewound(_rewind(value))
        else:
            cursor = detector.cursor_at_time(_rfc3339(value))
    finally:
        detector.close()
        source.close()
    store = StateStore(pipe_files(config, pipe).state_db)
    try:
        store.save_cursor(pipe.name, cursor)
    finally:
        store.close()
    return cursor


def mark_before_first_resync(source: EntrySource, pipe: SyncPipe, store: StateStore) -> str | None:
    """Before a resync reads `source` (the run's own): the start point at the end of its
    feed when the pipe has none yet. Says what it did (None: a start point was set already);
    a source without a readable feed is no reason to stop the resync, only a note."""
    if store.cursor(pipe.name) is not None:
        return None
    if not isinstance(source, LdapSource):
        return "no change feed (an ldif source): realtime sync cannot follow this pipe"
    try:
        detector, _ = source.change_detector()
        try:
            store.save_cursor(pipe.name, detector.cursor_at_end())
        finally:
            detector.close()
    except ScimsyncError as exc:
        return f"the change feed could not be read, no start point set: {exc}"
    return "realtime start point set at the end of the change feed, before this first resync"


def _rewind(text: str) -> timedelta:
    """Ping's rewind syntax: `2h30m`, `1d`, `90s`, `500ms`."""
    try:
        return timedelta(seconds=parse_duration(text))
    except DurationError as exc:
        raise FatalError(
            f"--startpoint-rewind {text!r}: expected a duration such as 2h30m, 1d, 90s or 500ms ({exc})"
        ) from None


def _rfc3339(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FatalError(
            f"--startpoint-time {text!r}: expected RFC 3339, e.g. 2026-11-28T10:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
