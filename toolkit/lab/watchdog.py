"""A lab that outlives no one: stop it when the process that owns it is gone.

A notebook's kernel stops the lab it started when it exits (an exit hook), but a kernel that
is killed runs no hook. `watch()` starts a small process that waits for the owner's PID to
disappear, then stops the lab's servers and removes its temporary folder. The owner kills the
watchdog after cleaning up itself.

    python -m toolkit.lab.watchdog OWNER_PID LAB_FOLDER [FOLDER_TO_REMOVE]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from toolkit import processes

POLL_SECONDS = 0.5


def watch(owner_pid: int, lab_folder: Path, remove: Path | None = None) -> subprocess.Popen:
    """Start the watchdog for the lab in `lab_folder`, owned by `owner_pid`."""
    argv = [sys.executable, "-m", "toolkit.lab.watchdog", str(owner_pid), str(lab_folder)]
    if remove is not None:
        argv.append(str(remove))
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the owner's process group does not reach it
    )


def main(argv: list[str]) -> int:
    owner, folder = int(argv[0]), Path(argv[1])
    remove = Path(argv[2]) if len(argv) > 2 else None
    while processes.alive(owner, None):
        time.sleep(POLL_SECONDS)
    from toolkit.lab import lab

    try:
        lab.down(folder)
    except lab.LabError:
        pass  # the owner stopped it already
    if remove is not None:
        shutil.rmtree(remove, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
