"""Link writes deferred to the end of a realtime batch, against the real slapd and
scim2-server: a process killed (SIGKILL) just before the batch's cursor is committed has
sent its PATCHes but not recorded their new ETags; the restart replays the batch, finds
the target already right, and records the links as the target now is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.realtime_env import (
    ROOT,
    assert_log_accounts_for,
    assert_target_is_what_a_resync_makes,
    make_rt,
)
from toolkit.sync.state import StateStore

# realtime-sync in a process that kills itself (SIGKILL) when it would commit its cursor
KILLED_AT_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from toolkit.sync.state import StateStore

    def die(self, pipe, cursor):
        os.kill(os.getpid(), signal.SIGKILL)

    StateStore.save_cursor = die
    from toolkit.cli import main
    sys.exit(main(["--config", sys.argv[1], "realtime-sync", "start", "--foreground", "--until-idle"]))
    """
)


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=20, groups=2)
    yield rt
    rt.close()


def links(rt):
    store = StateStore(rt.state_dir / "state.db")
    try:
        return {uuid: store.link("ldap-to-scim", uuid) for uuid in store.links("ldap-to-scim")}
    finally:
        store.close()


def test_a_batch_killed_before_its_commit_is_replayed_and_its_links_made_right(rt, tmp_path):
    people = rt.loners()[:6]
    start = rt.cursor()
    before = links(rt)
    for i, person in enumerate(people):
        rt.replace(person["dn"][0], title=[f"Killed {i}"])

    done = subprocess.run(
        [sys.executable, "-c", KILLED_AT_COMMIT, str(rt.config_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    users = rt.users()
    assert [users[p["uid"][0]]["title"] for p in people] == [f"Killed {i}" for i in range(6)]
    assert rt.cursor() == start  # the batch is not done: it will be read again
    assert links(rt) == before  # its links' new ETags died with the process (links compare
    # without their forms; the ETags are the same as before the batch)

    rt.sync()  # the restart replays the batch: If-Match on the old ETags answers 412, the
    # resources are read afresh, found right, and remembered as they are now
    assert rt.cursor() != start
    users = rt.users()
    uuid_of = {p["uid"][0]: rt.entry_uuid(p["dn"][0]) for p in people}
    now = links(rt)
    for uid, uuid in uuid_of.items():
        assert now[uuid].etag == users[uid]["meta"]["version"], uid
        assert now[uuid].form["title"] == users[uid]["title"]
    # the 412s of the replay were settled by the fresh reads: no failure is left behind
    assert rt.cli_json("status")["failures"] == []
    assert_log_accounts_for(rt, start)
    assert_target_is_what_a_resync_makes(rt, tmp_path / "fresh")
