"""Small helpers for the private servers: free ports, waiting, stopping by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from toolkit import processes
from toolkit.errors import FatalError


class LabServerError(FatalError):
    """A private server could not be set up or started; the message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f} s")


def pid_alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie child of ours is reaped (it has ended)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: nothing to reap
        pass
    return processes.alive(pid, None)


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 5, f"process {pid}")


class ChildServer:
    """A server run in the foreground as our child on host:port, logging into its workdir.

    Subclasses are dataclasses with `workdir`, `host`, `port`, `pid` and `_proc`, and name
    themselves in LABEL and their log file in LOG.
    """

    LABEL = "server"
    LOG = "server.log"
    workdir: Path
    host: str
    port: int
    pid: int | None
    _proc: subprocess.Popen | None

    def _launch(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / self.LOG, "ab")
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,  # a server reads no input (and samba -i ends on EOF)
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # survives the shell that ran `scimsync lab up`
        )
        log.close()
        self.pid = self._proc.pid
        try:
            wait_until(self._ready, timeout, f"{self.LABEL} on {self.host}:{self.port}")
        except TimeoutError as exc:
            self.stop()
            raise LabServerError(f"{exc}; see {self.workdir / self.LOG}") from None

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            tail = (self.workdir / self.LOG).read_text(errors="replace")[-800:]
            raise LabServerError(f"{self.LABEL} exited with {self._proc.returncode}: {tail}")
        return port_open(self.host, self.port)

    def stop(self, timeout: float = 60.0) -> None:
        if self.pid and pid_alive(self.pid):
            stop_pid(self.pid, timeout)
        if self._proc is not None:
            self._proc.wait()
        self.pid, self._proc = None, None
