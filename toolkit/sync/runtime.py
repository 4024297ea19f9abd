"""One pipe's runtime: its config, mapping, source, SCIM client and state store, each opened
once, when first needed, and closed together.

Every face and command goes through it (dry-run and resync, realtime sync, status, the
widgets), so that the pipe's parts are put together in one place: the source is opened only
once its schema has every attribute the mapping names (toolkit.sync.mappingcheck), and the
files under `.scimsync/` are named by toolkit.sync.files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from toolkit.config.model import Config
from toolkit.entry import key_attribute
from toolkit.ldap.fromconfig import unique_id_attribute
from toolkit.ldap.source import EntrySource, LdapSource
from toolkit.mapping import load_mapping
from toolkit.mapping.resource import ResourceMappings
from toolkit.plan.scope import Scope
from toolkit.scim.client import ScimClient
from toolkit.scim.fromconfig import destination_endpoint
from toolkit.sync.files import PipeFiles, pipe_files
from toolkit.sync.mappingcheck import open_checked_source
from toolkit.sync.startpoint import require_feed
from toolkit.sync.state import StateStore

if TYPE_CHECKING:
    from toolkit.sync.reads import ReadNote


@dataclass
class Timings:
    """Where the time of a plan went (seconds)."""

    state_read: float = 0.0  # the links and the quick check's keys
    ldap_read: float = 0.0
    scim_read: float = 0.0
    plan: float = 0.0  # mapping, correlation, diff and guards
    plan_cpu: float = 0.0  # the same, CPU time of this process (what other load cannot add)
    state_write: float = 0.0  # the keys of objects found unchanged


class PipeRuntime:
    """The open parts of one pipe; `with PipeRuntime(config) as pipe:` closes what was opened."""

    def __init__(
        self, config: Config, pipe_name: str | None = None, rate_per_second: float | None = None
    ):
        self.config = config
        self.pipe = config.pipe(pipe_name)
        self.files: PipeFiles = pipe_files(config, self.pipe)
        self.rate_per_second = rate_per_second  # overrides the pipe's max-rate-per-second
        self.timings = Timings()
        self.reads: list[ReadNote] = []  # what the last plan's reads were and why
        self._mappings: ResourceMappings | None = None
        self._scope: Scope | None = None
        self._source: EntrySource | None = None
        self._client: ScimClient | None = None
        self._store: StateStore | None = None

    @property
    def mappings(self) -> ResourceMappings:
        if self._mappings is None:
            destination = self.config.destination_of(self.pipe)
            self._mappings = load_mapping(self.config.mapping_file_of(destination))
        return self._mappings

    @property
    def scope(self) -> Scope:
        """Which class takes an entry and what it becomes (toolkit.plan.scope)."""
        if self._scope is None:
            source = self.config.source_of(self.pipe)
            key = key_attribute(unique_id_attribute(self.config, source))
            self._scope = Scope(self.pipe, self.mappings, key)
        return self._scope

    @property
    def source(self) -> EntrySource:
        """The sync source, once its schema has every attribute the mapping names."""
        return self._open_source()

    def source_first(self) -> PipeRuntime:
        """This runtime with its source opened before anything else: a mapping the source's
        schema refuses then leaves nothing opened (closed again on any error)."""
        try:
            self._open_source()
        except BaseException:
            self.close()
            raise
        return self

    def _open_source(self) -> EntrySource:
        if self._source is None:
            self._source = open_checked_source(self.config, self.pipe, self.mappings)
        return self._source

    @property
    def feed_source(self) -> LdapSource:
        """The sync source as one with a change feed (realtime sync needs one)."""
        return require_feed(self.source, self.pipe)

    @property
    def client(self) -> ScimClient:
        if self._client is None:
            endpoint = destination_endpoint(self.config, self.pipe)
            if self.rate_per_second is not None:
                endpoint = replace(endpoint, max_rate_per_second=self.rate_per_second)
            self._client = ScimClient(endpoint)
        return self._client

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.files.state_db)
        return self._store

    def close(self) -> None:
        for part in (self._source, self._client, self._store):
            if part is not None:
                part.close()
        self._source = self._client = self._store = None

    def __enter__(self) -> PipeRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
