"""realtime-sync as a process: detached start, stop after in-flight changes, status, a burst
of 1,000 changes, and a kill -9 in the middle of a burst followed by a restart (on both feeds).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.support.realtime_env import (
    Burst,
    assert_log_accounts_for,
    assert_target_is_what_a_resync_makes,
    make_rt,
    wait_for,
)
from toolkit.sync import synclog

FEEDS = ["slapd", "dirsrv"]


@pytest.fixture(params=FEEDS)
def feed(request):
    return request.param, request.getfixturevalue(request.param)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_detached_start_status_and_stop(feed, scim_server, tmp_path):
    name, server = feed
    # the bursts delete many users: the delete guard is tested in tests/sync/test_realtime_delete_guard.py
    rt = make_rt(
        name, server, scim_server, tmp_path / "pipe", users=40, groups=3, max_deletes="100%"
    )
    pid_file = rt.state_dir / "ldap-to-scim-realtime.pid"
    stopped = rt.cli_json("status")
    assert stopped["started"] is False and stopped["pid"] is None

    started = rt.cli_ok("realtime-sync", "start")
    pid = int(pid_file.read_text().split()[0])
    assert f"(pid {pid})" in started.out and pid_alive(pid)
    try:
        again = rt.cli("realtime-sync", "start")
        assert again.code == 2 and "already running" in again.err
        moved = rt.cli("realtime-sync", "set-startpoint", "--end-of-changelog")
        assert moved.code == 2 and "realtime-sync stop" in moved.err

        burst = Burst(rt, seed=1)
        burst.write(20)
        wait_for(
            lambda: rt.cli_json("status")["changes_processed"] >= burst.written,
            what="the detached process to apply the first changes",
        )
        status = rt.cli_json("status")
        assert status["started"] is True and status["pid"] == pid
        assert status["cursor"] == rt.cursor()
        assert status["detector"] and rt.detector in status["detector"]
        assert status["lag"]["changes"] == 0
        assert status["changes_processed"] == burst.written
        assert sum(status["completed"].values()) == burst.written
        assert status["completed"].get(synclog.CHANGE_APPLIED, 0) >= 10
        assert status["ops_per_second"] > 0
        assert status["failures"] == [] and status["links"] >= 40

        # stop in the middle of a burst: the changes in flight finish, then the process ends
        writer = threading.Thread(target=burst.write, args=(300,))
        writer.start()
        wait_for(lambda: rt.cli_json("status")["changes_processed"] > 30, what="the burst")
        result = rt.cli_ok("realtime-sync", "stop")
        assert f"stopped (pid {pid})" in result.out
        assert not pid_file.exists()
        wait_for(lambda: not pid_alive(pid), timeout=10, what=f"pid {pid} to end")
        writer.join()
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    detected = [line for line in rt.log() if line["type"] == synclog.CHANGE_DETECTED]
    outcomes = rt.outcomes()
    unfinished = [
        line for line in detected if line.get("change_number", line.get("csn")) not in outcomes
    ]
    assert not unfinished, unfinished[:3]
    burst.write(5)  # the stopped pipe falls behind, whether or not it had drained the burst
    status = rt.cli_json("status")
    assert status["started"] is False and status["lag"]["changes"] >= 5
    assert rt.cli("realtime-sync", "stop").out.strip().endswith("was not running")

    start = rt.cursor()
    rt.sync()  # the rest, from where the stopped process left off
    assert rt.cli_json("status")["lag"]["changes"] == 0
    assert_log_accounts_for(rt, start)
    assert_target_is_what_a_resync_makes(rt, tmp_path / "fresh")


def test_burst_of_1000_changes(feed, scim_server, tmp_path):
    name, server = feed
    rt = make_rt(
        name, server, scim_server, tmp_path / "pipe", users=200, groups=10, max_deletes="100%"
    )
    start = rt.cursor()
    burst = Burst(rt, seed=2)
    burst.write(1000 - burst.written)
    assert burst.written in (1000, 1001)  # a join may follow the last add
    began = time.perf_counter()
    result = rt.sync()
    elapsed = time.perf_counter() - began
    assert f"stopped after {burst.written} changes" in result.out, result.out
    assert "change-failed-detailed" not in result.out, result.out
    counted = assert_log_accounts_for(rt, start)
    assert counted == burst.written
    print(f"\n{name}: {counted} changes in {elapsed:.1f} s ({counted / elapsed:.0f}/s)")
    assert_target_is_what_a_resync_makes(rt, tmp_path / "fresh")


def test_kill_9_in_the_middle_of_a_burst_then_restart(feed, scim_server, tmp_path):
    name, server = feed
    rt = make_rt(
        name, server, scim_server, tmp_path / "pipe", users=200, groups=10, max_deletes="100%"
    )
    start = rt.cursor()
    burst = Burst(rt, seed=3)
    proc = rt.spawn("realtime-sync", "start", "--foreground")
    try:
        # about 1000 writes over 5 s or more: the kill lands while the burst is being written
        writer = threading.Thread(target=burst.write, args=(1000,), kwargs={"pause": 0.005})
        writer.start()
        wait_for(
            lambda: sum(1 for line in rt.log() if line["type"] in synclog.OUTCOMES) >= 100,
            timeout=60,
            what="the first outcomes of the burst",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = burst.written
        writer.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert killed_at < burst.written, "the process was killed after the burst was written"
    pid_file = rt.state_dir / "ldap-to-scim-realtime.pid"
    assert pid_file.exists()  # a stale pid file: the restart must see the process is gone

    result = rt.sync()
    assert "stopped after" in result.out, result.out
    assert not pid_file.exists()
    assert_log_accounts_for(rt, start)
    assert rt.cli_json("status")["failures"] == []
    assert_target_is_what_a_resync_makes(rt, tmp_path / "fresh")
