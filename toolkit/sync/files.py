"""The files under `.scimsync/` (beside the config): one place names every one of them.

The state store is shared by the config's pipes; the rest are per pipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit import processes
from toolkit.config.model import Config, SyncPipe


@dataclass(frozen=True)
class PipeFiles:
    folder: Path  # the config's state folder
    pipe: str

    @property
    def state_db(self) -> Path:
        return self.folder / "state.db"

    @property
    def pid(self) -> Path:
        """The running realtime process's pid."""
        return self.folder / f"{self.pipe}-realtime.pid"

    @property
    def realtime_out(self) -> Path:
        """What a detached realtime process prints."""
        return self.folder / f"{self.pipe}-realtime.out"

    @property
    def status(self) -> Path:
        """Realtime's statistics, rewritten after each batch."""
        return self.folder / f"{self.pipe}-status.json"

    @property
    def log(self) -> Path:
        """The sync log (Ping's message types)."""
        return self.folder / f"{self.pipe}-sync.log"

    @property
    def failed_dns(self) -> Path:
        """DNs that finally failed, for `resync --source-input-file`."""
        return self.folder / f"{self.pipe}-failed-dns.txt"

    @property
    def writer_lock(self) -> Path:
        return self.folder / f"{self.pipe}-writer.lock"

    @property
    def preview_plan(self) -> Path:
        """The plan the resync panel previewed and applies."""
        return self.folder / f"{self.pipe}-preview-plan.json"

    @property
    def scim_snapshot(self) -> Path:
        """The SCIM resources of the last read, for an incremental read (toolkit.sync.reads)."""
        return self.folder / f"{self.pipe}-scim-snapshot.bin"

    @property
    def ldap_snapshot(self) -> Path:
        """The LDAP entries of the last read, for an incremental read (toolkit.sync.reads)."""
        return self.folder / f"{self.pipe}-ldap-snapshot.bin"

    def running_pid(self) -> int | None:
        """The realtime process's pid, if it runs."""
        try:
            pid = int(self.pid.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if processes.alive(pid, None) else None


def pipe_files(config: Config, pipe: SyncPipe | str) -> PipeFiles:
    return PipeFiles(config.state_dir, pipe if isinstance(pipe, str) else pipe.name)
