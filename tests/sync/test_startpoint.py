"""The start point (toolkit.sync.startpoint): a first resync sets it at the end of the feed
before reading, so that no change made during or after its read is lost (real slapd and
scim2-server); an operator's start point is kept."""

from __future__ import annotations

from tests.support.realtime_env import make_rt, read_store


def _cursor(rt):
    return read_store(rt, lambda store: store.cursor("ldap-to-scim"))


def test_the_first_resync_sets_the_start_point_and_later_ones_keep_it(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=10, groups=1, resync=False)
    rt.state_dir.mkdir(exist_ok=True)
    (rt.state_dir / "state.db").unlink()  # make_rt set a start point: this pipe has none now
    assert _cursor(rt) is None
    first = rt.cli_ok("resync")
    assert "realtime start point set at the end of the change feed" in first.out
    cursor = _cursor(rt)
    assert cursor is not None

    added = rt.add_user("after.the.resync")  # after the resync's read: realtime carries it
    second = rt.cli_ok("resync", "--dry-run")
    assert "start point" not in second.out and _cursor(rt) == cursor
    rt.sync()
    assert "after.the.resync" in rt.users() and added
    again = rt.cli_ok("resync")
    assert "start point" not in again.out


def test_rewind_takes_the_config_duration_syntax(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=4, groups=1)
    for text in ("2h30m", "90 s", "1 d"):
        done = rt.cli_ok("realtime-sync", "set-startpoint", "--startpoint-rewind", text)
        assert "set (rewind): changes from " in done.out and "{" not in done.out
    bad = rt.cli("realtime-sync", "set-startpoint", "--startpoint-rewind", "2 fortnights")
    assert bad.code == 2 and "--startpoint-rewind '2 fortnights'" in bad.err
