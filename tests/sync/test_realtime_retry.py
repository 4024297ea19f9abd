"""realtime-sync's two retry levels against a failing SCIM target (a fault proxy in front of
the real scim2-server): max-operation-attempts in the client, then the failures table retried
after failed-op-background-retry-delay (doubled after each retry that fails), up to
max-failed-op-background-retries. A run that leaves failures exits 1; a DELETE answered 404
is done; a failure is cleared once its entry is found in sync, or gone.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time

import pytest

from tests.support.faults import FaultProxy
from tests.support.realtime_env import PIPE, Rt, make_rt, position
from toolkit.sync import synclog
from toolkit.sync.state import StateStore

WRITES = {b"POST", b"PUT", b"PATCH", b"DELETE"}


class _WriteFaults(collections.deque):
    """The proxy's fault queue, seen as empty while the current request is a read."""

    def __init__(self, local: threading.local):
        super().__init__()
        self._local = local

        self.reads_too = False

    def __bool__(self) -> bool:
        return (self.reads_too or getattr(self._local, "write", False)) and len(self) > 0


class WriteFaultProxy(FaultProxy):
    """A FaultProxy whose faults hit only writes: reads pass, so a change reaches its request."""

    def start(self) -> WriteFaultProxy:
        self._local = threading.local()
        self._faults = _WriteFaults(self._local)
        return super().start()

    def _read_request(self, conn, buffer):
        request, rest = super()._read_request(conn, buffer)
        self._local.write = bool(request) and request[0].split(b" ", 1)[0] in WRITES
        return request, rest


@pytest.fixture(params=["slapd", "dirsrv"])
def failing(request, scim_server, tmp_path):
    """A pipe whose SCIM target sits behind a write-fault proxy."""
    server = request.getfixturevalue(request.param)
    proxy = WriteFaultProxy("127.0.0.1", scim_server.port).start()
    rt = make_rt(
        request.param,
        server,
        scim_server,
        tmp_path / "pipe",
        users=12,
        groups=2,
        scim_url=proxy.url(),
        max_operation_attempts=2,
        max_failed_op_background_retries=2,
        failed_op_background_retry_delay="1 s",
    )
    yield rt, proxy
    proxy.stop()
    rt.close()


def failures(rt: Rt) -> list[dict]:
    return rt.cli_json("status")["failures"]


def next_retry_at(rt: Rt) -> float | None:
    store = StateStore(rt.state_dir / "state.db")
    try:
        (failure,) = store.failures(PIPE)
        return failure.next_retry_at
    finally:
        store.close()


def retry_wait(rt: Rt) -> float:
    """How long after the last failure the next background retry is due."""
    with sqlite3.connect(rt.state_dir / "state.db") as db:
        ((wait,),) = db.execute("SELECT next_retry_at - last_failed_at FROM failures").fetchall()
    return wait


def sync_failing(rt: Rt) -> None:
    """`realtime-sync start --foreground --until-idle` that leaves failures: exits 1."""
    result = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
    assert result.code == 1, (result.code, result.out, result.err)
    assert f"{len(failures(rt))} entries failed" in result.err


def test_failed_change_is_logged_recorded_and_retried_in_the_background(failing):
    rt, proxy = failing
    target = rt.loners()[0]
    dn, uid = target["dn"][0], target["uid"][0]
    rt.replace(dn, title=["Retried Title"])
    proxy.inject("503", 2)  # both attempts of the PATCH fail
    sync_failing(rt)
    assert proxy.pending == 0
    assert [s.method for s in proxy.seen if s.fault] == ["PATCH", "PATCH"]
    assert rt.users()[uid]["title"] != "Retried Title"

    (change,) = [line for line in rt.log() if line["type"] == synclog.CHANGE_DETECTED]
    outcome = [line for line in rt.log() if line["type"] in synclog.OUTCOMES]
    assert [(line["type"], position(line)) for line in outcome] == [
        (synclog.CHANGE_FAILED, position(change))
    ]
    assert "503" in outcome[0]["detail"]
    (failure,) = failures(rt)
    assert failure["dn"].lower() == dn.lower()
    assert failure["background_retries"] == 0 and "503" in failure["error"]

    # the background retry is due after failed-op-background-retry-delay (1 s)
    time.sleep(1.2)
    rt.sync()
    assert rt.users()[uid]["title"] == "Retried Title"
    assert failures(rt) == []
    retried = [line for line in rt.log() if "background retry" in line.get("detail", "")]
    assert [line["type"] for line in retried] == [synclog.CHANGE_APPLIED]
    assert rt.cli_json("status")["background_retries"] == {synclog.CHANGE_APPLIED: 1}


def test_background_retries_stop_at_the_maximum(failing):
    rt, proxy = failing
    target = rt.loners()[1]
    dn, uid = target["dn"][0], target["uid"][0]
    rt.replace(dn, title=["Never Arrives"])
    proxy.inject("500", 100)
    sync_failing(rt)
    for expected in (1, 2):
        time.sleep(max(0.0, next_retry_at(rt) - time.time()) + 0.1)
        sync_failing(rt)
        (failure,) = failures(rt)
        assert failure["background_retries"] == expected, failure
        if expected == 1:  # the delay (1 s) doubles after a retry that failed
            assert 1.9 < retry_wait(rt) <= 2.0
    assert next_retry_at(rt) is None  # the last retry was made
    time.sleep(2.2)
    rt.sync()  # max-failed-op-background-retries (2) reached: no third retry
    (failure,) = failures(rt)
    assert failure["background_retries"] == 2
    patches = [s for s in proxy.seen if s.method == "PATCH"]
    # 3 tries (the change, 2 background retries), each sent max-operation-attempts (2) times:
    # a 500 is retriable in the client too
    assert [s.fault for s in patches] == ["500"] * 6
    retried = [line for line in rt.log() if "background retry" in line.get("detail", "")]
    assert [line["type"] for line in retried] == [synclog.CHANGE_FAILED] * 2
    failed_dns = (rt.state_dir / "ldap-to-scim-failed-dns.txt").read_text()
    assert dn.lower() in failed_dns.lower()
    proxy.clear()
    assert rt.users()[uid]["title"] != "Never Arrives"


def test_target_down_for_reads_and_writes_then_back(failing):
    """The entry's first read on the target fails too: still a recorded failure, retried."""
    rt, proxy = failing
    target = rt.loners()[2]
    dn, uid = target["dn"][0], target["uid"][0]
    rt.replace(dn, title=["After The Outage"])
    proxy._faults.reads_too = True
    proxy.inject("503", 4, retry_after="0")
    sync_failing(rt)
    assert proxy.pending == 2 and [s.method for s in proxy.seen if s.fault] == ["GET", "GET"]
    (failure,) = failures(rt)
    assert failure["dn"].lower() == dn.lower() and failure["background_retries"] == 0
    time.sleep(1.2)
    sync_failing(rt)  # the first background retry meets the outage (two more 503s), counted
    (failure,) = failures(rt)
    assert failure["background_retries"] == 1 and proxy.pending == 0
    time.sleep(2.2)  # the second retry is due twice as late
    rt.sync()
    assert failures(rt) == []
    assert rt.users()[uid]["title"] == "After The Outage"
    retried = [line["type"] for line in rt.log() if "background retry" in line.get("detail", "")]
    assert retried == [synclog.CHANGE_FAILED, synclog.CHANGE_APPLIED]


def test_a_delete_answered_404_after_a_lost_reply_is_done(failing):
    """The DELETE is applied but its answer is a 500; the client's second attempt meets 404:
    the change is applied, not failed, and the run exits 0."""
    rt, proxy = failing
    target = rt.loners()[0]
    rt.ldap.delete(target["dn"][0])
    proxy.inject("500", 1, forward=True, when=lambda seen: seen.method == "DELETE")
    rt.sync()
    deletes = [s for s in proxy.seen if s.method == "DELETE"]
    assert [s.fault for s in deletes] == ["500", None] and deletes[0].path == deletes[1].path
    assert target["uid"][0] not in rt.users()
    outcome = [line for line in rt.log() if line["type"] in synclog.OUTCOMES]
    assert [line["type"] for line in outcome] == [synclog.CHANGE_APPLIED]
    assert "already gone (404)" in outcome[0]["detail"]
    assert failures(rt) == []


def test_a_failure_is_cleared_when_its_entry_is_found_in_sync(failing):
    """A change fails; the entry is then written back as it was, so the next reconcile finds
    it unchanged: its failure is over (before any background retry), status lists none."""
    rt, proxy = failing
    rt.write_config(rt.classes, max_operation_attempts=2, failed_op_background_retry_delay="1 h")
    target = rt.loners()[0]
    dn, uid = target["dn"][0], target["uid"][0]
    before = rt.users()[uid]["title"]
    rt.replace(dn, title=["Fails Once"])
    proxy.inject("503", 2)
    sync_failing(rt)
    assert len(failures(rt)) == 1
    rt.replace(dn, title=[before])  # as the target still has it
    rt.sync()  # exits 0: the failure this run saw is over
    assert failures(rt) == []
    assert rt.cli_json("status")["background_retries"] == {}
    assert rt.users()[uid]["title"] == before


def test_a_failure_is_cleared_when_its_entry_is_gone(failing):
    rt, proxy = failing
    target = rt.loners()[0]
    dn, uid = target["dn"][0], target["uid"][0]
    rt.replace(dn, title=["Fails Then Leaves"])
    proxy.inject("503", 2)
    sync_failing(rt)
    rt.ldap.delete(dn)
    rt.sync()
    assert failures(rt) == []
    assert uid not in rt.users()
