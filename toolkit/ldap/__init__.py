"""The LDAP side: connections with failover, fast paged reads, change detectors, LDIF snapshots,
and prepare-endpoint-server checks.

    source = LdapSource(SourceSpec(base_dns=["dc=example,dc=com"], servers=[LdapServerSpec(...)]))
    for entry in source.iter_entries("ou=people,dc=example,dc=com", "(objectClass=inetOrgPerson)"):
        entry["dn"], entry["mail"], entry["entryuuid"]
    detector, why = source.change_detector()
    changes, cursor = detector.poll(detector.cursor_at_end())

Entries are plain dicts `{"dn": str, attribute in lower case: [str | bytes, ...]}`.
"""

from __future__ import annotations

from toolkit.entry import Entry
from toolkit.ldap.accesslog import AccesslogDetector
from toolkit.ldap.changelog import ChangelogDetector
from toolkit.ldap.changes import Change, ChangeDetector
from toolkit.ldap.connection import connect, connect_first
from toolkit.ldap.detect import make_detector, probe_feed
from toolkit.ldap.dirsync import DirSyncDetector
from toolkit.ldap.errors import (
    ChangeFeedError,
    CursorError,
    LdapBindError,
    LdapConnectError,
    LdapError,
    LdapOperationError,
    LdapRetriableOperationError,
    LdapTlsError,
    LdifError,
)
from toolkit.ldap.ldif import Modification, read_records
from toolkit.ldap.ldifsource import LdifSource
from toolkit.ldap.match import compile_filter, matches
from toolkit.ldap.prepare import CheckResult, prepare_ldap_server
from toolkit.ldap.search import paged_search
from toolkit.ldap.source import EntrySource, LdapSource
from toolkit.ldap.spec import LdapServerSpec, SourceSpec

__all__ = [
    "AccesslogDetector",
    "Change",
    "ChangeDetector",
    "ChangeFeedError",
    "ChangelogDetector",
    "CheckResult",
    "CursorError",
    "DirSyncDetector",
    "Entry",
    "EntrySource",
    "LdapBindError",
    "LdapConnectError",
    "LdapError",
    "LdapOperationError",
    "LdapRetriableOperationError",
    "LdapServerSpec",
    "LdapSource",
    "LdapTlsError",
    "LdifError",
    "LdifSource",
    "Modification",
    "SourceSpec",
    "compile_filter",
    "connect",
    "connect_first",
    "make_detector",
    "matches",
    "paged_search",
    "prepare_ldap_server",
    "probe_feed",
    "read_records",
]
