"""One writer per pipe (toolkit.sync.lock): concurrent resyncs, resync beside realtime-sync,
a holder killed with kill -9, and the stale-holder rules on their own.

The integration tests run real processes against slapd and the scim2-server fixture; the
unit tests below them exercise the lock file in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.realtime_env import PIPE, Rt, make_rt, wait_for
from toolkit import processes
from toolkit.sync import lock
from toolkit.sync.lock import Holder, PipeLocked, is_stale

# --- against real servers ----------------------------------------------------------------------


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    # nothing synced yet: 30 users and 40 groups to create, as in the repro
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=30, groups=40, resync=False)
    yield rt
    rt.close()


def lock_holder(rt: Rt) -> Holder | None:
    path = lock.lock_file(rt.state_dir, PIPE)
    return Holder.loads(path.read_text()) if path.exists() else None


def held_by(rt: Rt, proc: subprocess.Popen, command: str) -> bool:
    named = lock_holder(rt)
    if proc.poll() is not None:
        raise AssertionError(f"{command} exited early: {proc.communicate()}")
    return named is not None and named.pid == proc.pid and named.command == command


def no_duplicates(rt: Rt) -> None:
    """One SCIM resource per LDAP entry, and a dry run that finds nothing to do."""
    groups = Counter(g["displayName"] for g in rt.all("/Groups"))
    users = Counter(u["userName"] for u in rt.all("/Users"))
    assert {name for name, n in groups.items() if n > 1} == set()
    assert len(groups) == len(rt.sample_groups()) and len(users) == len(rt.people())
    totals = rt.dry_run_totals()
    assert totals["unchanged"] == len(rt.entries) and totals["duplicate"] == 0, totals


def test_two_resyncs_at_once_one_is_refused_and_nothing_is_duplicated(rt):
    # both start together; the rate limit keeps the first one writing while the second starts
    procs = [rt.spawn("resync", "--json", "--rate-per-second", "25") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], [
        (p.returncode, err.decode()) for p, (_, err) in zip(procs, outputs, strict=True)
    ]
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    refusal = outputs[loser][1].decode()
    assert f"pipe {PIPE} is locked by resync (pid {procs[winner].pid}, started " in refusal
    assert "wait for it to finish" in refusal and "Traceback" not in refusal
    no_duplicates(rt)
    assert lock_holder(rt) is None  # released: the file stays, naming nobody


def test_resync_beside_realtime_sync_is_refused(rt):
    rt.resync()
    realtime = rt.spawn("realtime-sync", "start", "--foreground")
    try:
        wait_for(lambda: held_by(rt, realtime, "realtime-sync"), what="realtime-sync's lock")
        result = rt.cli("resync")
        assert result.code == 1, result.err
        assert f"pipe {PIPE} is locked by realtime-sync (pid {realtime.pid}, started " in result.err
        assert f"stop it first (scimsync realtime-sync stop --pipe-name {PIPE})" in result.err
        # a dry run is a reader: it runs beside the writer
        assert rt.cli("dry-run", "--json").code == 0
        # and realtime-sync start is refused before it detaches
        started = rt.cli("realtime-sync", "start")
        assert started.code != 0 and "already running" in started.err
    finally:
        realtime.send_signal(signal.SIGTERM)
        realtime.communicate(timeout=60)
    assert realtime.returncode == 0
    assert lock_holder(rt) is None
    assert rt.cli("resync").code == 0
    no_duplicates(rt)


def test_realtime_sync_beside_resync_is_refused(rt):
    writer = rt.spawn("resync", "--rate-per-second", "10")
    try:
        wait_for(lambda: held_by(rt, writer, "resync"), what="resync's lock")
        foreground = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
        assert foreground.code == 1, foreground.err
        assert f"is locked by resync (pid {writer.pid}, started " in foreground.err
        assert not (rt.state_dir / f"{PIPE}-realtime.pid").exists()
        detached = rt.cli("realtime-sync", "start")
        assert detached.code == 1 and f"pid {writer.pid}" in detached.err, detached.err
    finally:
        writer.communicate(timeout=120)
    assert writer.returncode == 0
    no_duplicates(rt)


def test_a_holder_killed_with_kill_9_leaves_a_lock_the_next_resync_recovers(rt):
    writer = rt.spawn("resync", "--rate-per-second", "10")
    wait_for(lambda: held_by(rt, writer, "resync"), what="resync's lock")
    time.sleep(1.0)  # some creates made, most not
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    named = lock_holder(rt)
    assert named is not None and named.pid == writer.pid  # the dead holder is still named
    result = rt.cli("resync", "--json")
    assert result.code == 0, result.err
    assert lock_holder(rt) is None
    no_duplicates(rt)


# --- the lock file on its own -----------------------------------------------------------------


def test_the_lock_file_is_private_names_its_holder_and_is_emptied_on_release(tmp_path):
    state = tmp_path / ".scimsync"
    with lock.writer(state, "p", lock.RESYNC) as path:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
        named = Holder.loads(path.read_text())
        assert named is not None
        assert (named.pid, named.command, named.host) == (
            os.getpid(),
            "resync",
            socket.gethostname(),
        )
        assert named.start_time == lock.process_start(os.getpid())
    assert path.exists() and path.read_text() == ""


def hold(state: Path, pipe: str, command: str) -> subprocess.Popen:
    """Another process that takes the pipe's lock and keeps it until killed."""
    code = (
        "import sys, time; from pathlib import Path; from toolkit.sync import lock\n"
        "lock.acquire(Path(sys.argv[1]), sys.argv[2], sys.argv[3]); print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(state), pipe, command], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    return proc


def test_the_notebook_panel_shows_the_refusal_as_a_message(rt):
    from toolkit.widgets.resync_panel import ResyncPanel

    holder = hold(rt.state_dir, PIPE, "realtime-sync")
    try:
        panel = ResyncPanel(rt.config())
        panel.preview_button.click()  # a dry run reads beside the writer
        assert panel.error is None and panel.can_apply()
        panel.confirm_button.click()
        assert panel.error is not None and "Traceback" not in panel.error
        assert panel.error.startswith(f"pipe {PIPE} is locked by realtime-sync (pid {holder.pid}, ")
        assert panel.result is None
    finally:
        holder.kill()
        holder.wait()
    assert rt.all("/Groups") == []  # nothing was applied


def test_another_process_holding_the_flock_is_refused_by_name(tmp_path):
    state = tmp_path / ".scimsync"
    holder = hold(state, "p", "realtime-sync")
    try:
        with pytest.raises(PipeLocked) as refused:
            lock.acquire(state, "p", lock.RESYNC)
        assert f"pipe p is locked by realtime-sync (pid {holder.pid}, started " in str(
            refused.value
        )
        assert refused.value.exit_code == 1
        with pytest.raises(PipeLocked):
            lock.check_free(state, "p")
    finally:
        holder.kill()
        holder.wait()
    # killed: the kernel dropped its flock, the file still names it, and the lock is taken
    assert Holder.loads(lock.lock_file(state, "p").read_text()).pid == holder.pid
    with lock.writer(state, "p", lock.RESYNC) as path:
        assert Holder.loads(path.read_text()).pid == os.getpid()


def test_a_live_holder_named_in_the_file_refuses_even_without_its_flock(tmp_path):
    # a file system whose locks were lost: the name is the second check
    state = tmp_path / ".scimsync"
    state.mkdir()
    parent = os.getppid()
    named = Holder(
        parent,
        "resync",
        socket.gethostname(),
        "2026-12-06T13:01:02Z",
        lock.process_start(parent),
        processes.boot_id(),
    )
    lock.lock_file(state, "p").write_text(named.dumps())
    with pytest.raises(
        PipeLocked, match=rf"locked by resync \(pid {parent}, started 2026-12-06T13:01:02Z\)"
    ):
        lock.acquire(state, "p", lock.RESYNC)


def test_a_flock_held_under_a_dead_holder_s_name_refuses_without_naming_the_dead(tmp_path):
    # a new holder between its flock and writing its name: the file still names a dead run
    state = tmp_path / ".scimsync"
    state.mkdir()
    path = lock.lock_file(state, "p")
    dead = Holder(2**22 + 1, "resync", socket.gethostname(), "2026-12-06T13:01:02Z", "5")
    path.write_text(dead.dumps())
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        with pytest.raises(PipeLocked, match="locked by another process"):
            lock.acquire(state, "p", lock.RESYNC)
    finally:
        proc.kill()
        proc.wait()


def test_another_host_s_holder_without_the_flock_is_not_waited_for(tmp_path):
    # its process cannot be checked from here: the flock, free, decides
    state = tmp_path / ".scimsync"
    state.mkdir()
    elsewhere = Holder(os.getppid(), "resync", "elsewhere.example", "2026-12-06T13:01:02Z", "1")
    lock.lock_file(state, "p").write_text(elsewhere.dumps())
    with lock.writer(state, "p", lock.RESYNC) as path:
        assert Holder.loads(path.read_text()).host == socket.gethostname()


def test_a_pid_reused_by_another_process_is_a_stale_holder(tmp_path):
    state = tmp_path / ".scimsync"
    state.mkdir()
    parent = os.getppid()  # alive, but started at another time than the file says
    named = Holder(
        parent, "resync", socket.gethostname(), "2026-12-06T13:01:02Z", "1", processes.boot_id()
    )
    lock.lock_file(state, "p").write_text(named.dumps())
    with lock.writer(state, "p", lock.RESYNC) as path:
        assert Holder.loads(path.read_text()).pid == os.getpid()


def test_one_thread_may_take_the_lock_again_another_thread_may_not(tmp_path):
    state = tmp_path / ".scimsync"
    errors: list[BaseException] = []

    def other() -> None:
        try:
            lock.acquire(state, "p", lock.RESYNC)
        except PipeLocked as exc:
            errors.append(exc)

    with lock.writer(state, "p", lock.REALTIME) as path:
        with lock.writer(state, "p", lock.REALTIME):  # realtime's process, then its loop
            pass
        assert Holder.loads(path.read_text()).command == "realtime-sync"  # still held
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"pid {os.getpid()}" in str(errors[0])
    with lock.writer(state, "p", lock.RESYNC):  # released by the outer block
        pass


HOST = "here"
BOOT = "boot-1"


@pytest.mark.parametrize(
    "holder, now, stale",
    [
        (Holder(10, "resync", HOST, "t", "500", BOOT), "500", False),  # the same process
        (Holder(10, "resync", HOST, "t", "500", BOOT), "777", True),  # pid reused
        (Holder(10, "resync", HOST, "t", "500", BOOT), None, True),  # pid gone
        (Holder(10, "resync", HOST, "t", "500", "boot-0"), "500", True),  # an earlier boot
        (Holder(10, "resync", "elsewhere", "t", "500", BOOT), None, False),  # cannot tell
    ],
)
def test_stale_holder_by_pid_and_start_time(holder, now, stale):
    assert is_stale(holder, HOST, BOOT, lambda pid: now if pid == 10 else None) is stale


@pytest.mark.parametrize("exists, stale", [(True, False), (False, True)])
def test_without_a_start_time_the_pid_alone_decides(exists, stale):
    named = Holder(10, "resync", HOST, "t")
    assert is_stale(named, HOST, None, lambda pid: None, exists=lambda pid: exists) is stale


def test_process_start_reads_field_22_after_a_command_with_spaces_and_parentheses(tmp_path):
    own = Path(f"/proc/{os.getpid()}/stat").read_text()
    assert lock.process_start(os.getpid()) == own.rpartition(")")[2].split()[19]
    assert lock.process_start(2**22 + 1) is None  # above pid_max: no such process
