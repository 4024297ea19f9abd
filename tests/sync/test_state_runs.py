"""The run history: a run whose process is gone (killed, crashed) reads "interrupted", never
"running" forever. Each run records its PID and the process's start time, so a PID taken over
by another process after a crash does not keep the run alive."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.support.realtime_env import PEOPLE, make_rt, wait_for
from toolkit import processes
from toolkit.sync.state import StateStore


def _insert_run(path, pid, started, status="running"):
    db = sqlite3.connect(path)
    with db:
        cur = db.execute(
            "INSERT INTO runs (pipe, kind, started_at, status, pid, pid_started)"
            " VALUES ('p', 'resync', 1.0, ?, ?, ?)",
            (status, pid, started),
        )
    db.close()
    return cur.lastrowid


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_processes_that_are_gone_read_interrupted(tmp_path):
    path = tmp_path / "state.db"
    store = StateStore(path)
    mine = store.start_run("p", "resync")
    me = processes.this_process()
    assert me.started is not None  # Linux: the start time is known
    dead = _insert_run(path, _dead_pid(), 12345)
    reused = _insert_run(path, os.getpid(), me.started - 1)  # our PID, another process's start
    legacy = _insert_run(path, None, None)  # written before PIDs were recorded
    done = _insert_run(path, _dead_pid(), 1, status="completed")
    status = {run.id: run.status for run in store.runs("p")}
    assert status == {
        mine: "running",
        dead: "interrupted",
        reused: "interrupted",
        legacy: "interrupted",
        done: "completed",
    }
    store.finish_run(mine, "completed")
    assert store.runs("p", status="running") == []
    store.close()


def test_interrupted_when_the_store_is_opened(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()
    dead = _insert_run(path, _dead_pid(), 1)
    StateStore(path).close()  # opening marks it; no listing needed
    db = sqlite3.connect(path)
    assert db.execute("SELECT status FROM runs WHERE id = ?", (dead,)).fetchone() == (
        "interrupted",
    )
    db.close()


def test_state_from_before_pids_is_upgraded(tmp_path):
    """A runs table without the pid columns (an earlier version) gets them; its run left
    "running" by a kill reads interrupted."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "CREATE TABLE links (pipe TEXT NOT NULL, entry_uuid TEXT NOT NULL, dn TEXT NOT NULL,"
            " class_name TEXT NOT NULL, resource_type TEXT NOT NULL, scim_id TEXT NOT NULL,"
            " etag TEXT, hash TEXT, created INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,"
            " PRIMARY KEY (pipe, entry_uuid))"
        )
        db.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pipe TEXT NOT NULL,"
            " kind TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,"
            " source_count INTEGER, totals TEXT, applied INTEGER, failed INTEGER)"
        )
        db.execute(
            "INSERT INTO runs (pipe, kind, started_at, status) VALUES ('p','resync',1,'running')"
        )
    db.close()
    store = StateStore(path)
    try:
        assert [r.status for r in store.runs("p")] == ["interrupted"]
        run = store.start_run("p", "dry-run")
        assert store.runs("p")[-1].status == "running"
        store.finish_run(run, "completed")
    finally:
        store.close()


def test_liveness_tells_a_reused_pid_apart():
    me = processes.this_process()
    assert processes.alive(me.pid, me.started)
    assert not processes.alive(me.pid, (me.started or 0) + 1)
    assert not processes.alive(_dead_pid(), None)
    assert not processes.alive(None, None)


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=16, groups=2)
    yield rt
    rt.close()


def test_resync_killed_mid_run_shows_interrupted_in_status(rt):
    uids = [p["uid"][0] for p in rt.people()[:12]]
    for uid in uids:
        rt.replace(f"uid={uid},{PEOPLE}", title=["changed before the kill"])
    proc = rt.spawn("resync", "--rate-per-second", "2", "--workers", "1")
    try:

        def some_applied() -> bool:
            titles = [u.get("title") for u in rt.users().values()]
            return titles.count("changed before the kill") >= 1

        wait_for(some_applied, 60, "the resync to apply its first change")
        assert rt.cli_json("status")["last_resync"]["status"] == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    applied = [u.get("title") for u in rt.users().values()].count("changed before the kill")
    assert 1 <= applied < len(uids)  # killed mid-run
    status = rt.cli_json("status")
    assert status["last_resync"]["status"] == "interrupted"
    assert "last resync   interrupted" in rt.cli_ok("status").out
    # the next resync finishes what was left, and its run completes
    data = rt.resync()
    assert data["applied"] == len(uids) - applied
    assert rt.cli_json("status")["last_resync"]["status"] == "completed"
