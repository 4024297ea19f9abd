"""Incremental reads: after each kind of change, the plan of a run that read only what changed
equals the plan of a `--full-read` run (every row, every request), and each run says what it
read and why. Real slapd and scim2-server; a fault only where the real server cannot refuse.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import ldap3
import pytest

from tests.support.plan_env import PEOPLE, SUFFIX, dn_of, make_env, uid_of
from toolkit.sync import reads


@pytest.fixture
def env(slapd, scim_server, tmp_path, monkeypatch):
    """A synced pipe whose last dry run left snapshots of both sides. The safety window is
    0 s here (everything in a test happens within seconds, and a 60 s window would re-read
    it all, leaving the merge untested); `test_safety_window_rereads_recent_writes` keeps it."""
    monkeypatch.setattr(reads, "SAFETY", timedelta(0))
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=40, groups=3)
    resync = env.cli_json("resync")
    # the server's Date has whole seconds and uvicorn refreshes it once a second: wait, so
    # that the next read begins after the resync's writes by the server's clock too
    time.sleep(2.5)
    assert resync["failed"] == 0 and {r["mode"] for r in resync["reads"]} == {"full"}
    after = env.cli_json("dry-run")  # reads what the resync wrote
    assert {(r["side"], r["mode"]) for r in after["reads"]} == {
        ("ldap", "incremental"),
        ("scim", "incremental"),
    }
    assert {r["changed"] for r in after["reads"] if r["side"] == "scim"} == {40, 3}
    yield env
    env.close()


def plans(env, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(incremental, full-read) dry runs as saved plans; --full-compare in both, so the quick
    check's keys (which the first run writes) cannot make their rows differ."""
    return saved_plan(env, "incremental", *args), saved_plan(env, "full", "--full-read", *args)


def saved_plan(env, label: str, *args: str) -> dict[str, Any]:
    """One dry run's saved plan (--full-compare, as in `plans`)."""
    path = env.folder / f"{label}.json"
    result = env.cli("dry-run", "--full-compare", "--output", str(path), *args)
    assert result.code == 0, result.err
    return json.loads(path.read_text())


def assert_same_plan(incremental: dict[str, Any], full: dict[str, Any]) -> None:
    def rows(plan: dict[str, Any]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True) for r in plan["rows"])

    assert rows(incremental) == rows(full)
    for key in ("source_count", "managed_count", "guard", "stale_links", "partial"):
        assert incremental[key] == full[key], key
    a, b = dict(incremental["summary"]), dict(full["summary"])
    assert a.pop("reads") != b.pop("reads")
    assert a == b
    assert {r["mode"] for r in full["summary"]["reads"]} == {"full"}
    assert {r["why"] for r in full["summary"]["reads"]} == {"--full-read"}


def edit_titles(env, users: list[dict[str, Any]], title: str) -> None:
    """`title` set on these users by PATCH, as an application beside the pipe would."""
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": title}],
    }
    with env.http() as client:
        for user in users:
            assert client.patch(f"/Users/{user['id']}", json=patch).status_code in (200, 204)


def modes(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["side"], r["name"]): r for r in plan["summary"]["reads"]}


def test_ldap_modify(env):
    person = env.people()[3]
    env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Night Owl"])]})
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("ldap", "users")]
    assert note["mode"] == "incremental" and note["changed"] == 1 and note["count"] == 40
    assert [r["situation"] for r in incremental["rows"] if r["dn"] == dn_of(person)] == ["modify"]


def test_ldap_rename(env):
    person = env.people()[4]
    env.ldap.modify_dn(dn_of(person), "uid=renamed.person")
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert f"uid=renamed.person,{PEOPLE}" in {r["dn"] for r in incremental["rows"]}
    assert modes(incremental)[("ldap", "users")]["changed"] == 1


def test_ldap_move_out_of_scope_and_back(env):
    person = env.people()[5]
    env.ldap.add(f"ou=elsewhere,{PEOPLE}", ["organizationalUnit"], {"ou": "elsewhere"})
    env.ldap.modify_dn(
        dn_of(person), f"uid={uid_of(person)}", new_superior=f"ou=elsewhere,{PEOPLE}"
    )
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    moved = f"uid={uid_of(person)},ou=elsewhere,{PEOPLE}"
    assert moved in {r["dn"] for r in incremental["rows"]}
    # out of the class's scope: the entry is listed no more
    env.ldap.add(f"ou=outside,{SUFFIX}", ["organizationalUnit"], {"ou": "outside"})
    env.ldap.modify_dn(moved, f"uid={uid_of(person)}", new_superior=f"ou=outside,{SUFFIX}")
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert modes(incremental)[("ldap", "users")]["removed"] == 1


def test_ldap_delete(env):
    gone = env.loner()
    env.ldap.delete(dn_of(gone))
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("ldap", "users")]
    assert note["removed"] == 1 and note["changed"] == 0 and note["count"] == 39
    assert [r["situation"] for r in incremental["rows"] if r["dn"] == dn_of(gone)] == ["delete"]


def test_ldap_add(env):
    env.ldap.add(
        f"uid=new.hire,{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": "new.hire", "cn": "New Hire", "sn": "Hire", "givenName": "New"},
    )
    group = dn_of(env.sample_groups()[0])
    env.ldap.modify(group, {"member": [(ldap3.MODIFY_ADD, [f"uid=new.hire,{PEOPLE}"])]})
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert modes(incremental)[("ldap", "users")]["changed"] == 1
    assert modes(incremental)[("ldap", "groups")]["changed"] == 1
    assert group.lower() in {(r["dn"] or "").lower() for r in incremental["rows"]}


def test_scim_edit(env):
    user = env.scim_users()[uid_of(env.people()[7])]
    edit_titles(env, [user], "Edited Elsewhere")
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "incremental" and note["changed"] == 1 and note["since"]
    assert "(server time)" in reads.ReadNote(**note).text()
    assert [r["situation"] for r in incremental["rows"] if r["scim_id"] == user["id"]] == ["modify"]


def test_scim_delete(env):
    user = env.scim_users()[uid_of(env.people()[8])]
    with env.http() as client:
        assert client.delete(f"/Users/{user['id']}").status_code == 204
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["removed"] == 1 and note["count"] == 39 and "ids read" in note["why"]


def test_scim_create_with_an_ldap_entry_s_user_name(env):
    env.ldap.add(
        f"uid=twin,{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": "twin", "cn": "Twin", "sn": "Twin", "givenName": "T"},
    )
    made = env.post_user({"userName": "twin", "externalId": "elsewhere"})
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert modes(incremental)[("scim", "User")]["changed"] == 1
    row = next(r for r in incremental["rows"] if r["dn"] == f"uid=twin,{PEOPLE}")
    assert row["scim_id"] == made["id"]  # correlated to the resource made out of band


def test_server_refusing_the_filter_falls_back(env, monkeypatch):
    """scim2-server honours the filter; a wrapper answers 400 invalidFilter as servers that
    cannot filter on meta.lastModified do, and the run reads fully and says why."""
    import toolkit.sync.runtime as runtime
    from toolkit.scim.client import ScimClient

    class Refusing(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if "lastmodified" in str(request.url).lower():
                body = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "400",
                    "scimType": "invalidFilter",
                    "detail": "unsupported attribute",
                }
                return httpx.Response(400, json=body, request=request)
            return self.inner.handle_request(request)

    user = env.scim_users()[uid_of(env.people()[9])]
    with env.http() as client:
        client.delete(f"/Users/{user['id']}")
    with monkeypatch.context() as patch:
        patch.setattr(runtime, "ScimClient", lambda e: ScimClient(e, transport=Refusing()))
        incremental, full = plans(env)
        assert_same_plan(incremental, full)
        for kind in ("User", "Group"):
            note = modes(incremental)[("scim", kind)]
            assert note["mode"] == "full" and "meta.lastModified" in note["why"], note
        printed = env.cli("dry-run")
        assert "SCIM User: full read: 39 resources (the server" in printed.out
    assert modes(incremental)[("ldap", "users")]["mode"] == "incremental"


def test_change_feed_purged_past_the_last_read_falls_back(env):
    person = env.people()[10]
    env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Logged"])]})
    env.cli_json("dry-run")  # its cursor: after that change (slapadd logged nothing before)
    env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Purged"])]})
    env.ldap.search("cn=accesslog", "(objectClass=auditWriteObject)", attributes=["1.1"])
    for entry in list(env.ldap.entries):  # what logpurge does, past the last read's cursor
        env.ldap.delete(entry.entry_dn)
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    for kind in ("users", "groups"):
        note = modes(incremental)[("ldap", kind)]
        assert note["mode"] == "full" and "change feed" in note["why"], note
    text = reads.ReadNote(**modes(incremental)[("ldap", "users")]).text()
    assert text.startswith("LDAP users: full read: 40 entries (the change feed no longer reaches")


def test_full_read_interval_forces_a_full_read(env):
    env.write_config(full_read_interval="0 s")
    result = env.cli("dry-run", "--json")
    assert result.code == 0, result.err
    for note in result.json()["reads"]:
        assert note["mode"] == "full" and "full-read-interval" in note["why"], note


def test_safety_window_rereads_recent_writes(env, monkeypatch):
    monkeypatch.setattr(reads, "SAFETY", timedelta(hours=1))
    env.cli_json("dry-run")  # its snapshot starts an hour before it began
    notes = {(n["side"], n["name"]): n for n in env.cli_json("dry-run")["reads"]}
    assert notes[("scim", "User")]["changed"] == 40  # every user was written within the hour


def test_incremental_reads_show_progress(env, capsys):
    from toolkit.sync.batch import RunOptions, dry_run
    from toolkit.terminal import TerminalBars

    env.ldap.modify(dn_of(env.people()[1]), {"title": [(ldap3.MODIFY_REPLACE, ["Seen"])]})
    dry_run(env.config(), RunOptions(on_progress=TerminalBars()))
    lines = capsys.readouterr().err.replace("\r", "\n")
    assert "reading LDAP (users, ids): 40 entries [" in lines
    assert "reading SCIM (User, changed): 0 resources [" in lines


def test_a_snapshot_not_as_written_means_a_full_read(env):
    folder = env.folder / ".scimsync"
    (folder / "ldap-to-scim-scim-snapshot.bin").write_text("{not a snapshot")
    ldap = folder / "ldap-to-scim-ldap-snapshot.bin"
    data = reads._load(ldap)
    for held in data["classes"].values():
        held["stamps"] = None
    reads._save(ldap, data)
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    notes = modes(incremental)
    assert notes[("scim", "User")]["why"] == "no earlier read to start from"
    assert "could not be used" in notes[("ldap", "users")]["why"]


def test_snapshots_are_private(env):
    for path in (env.folder / ".scimsync").glob("*-snapshot.bin"):
        assert path.stat().st_mode & 0o077 == 0, path
    assert len(list((env.folder / ".scimsync").glob("*-snapshot.bin"))) == 2


def test_groups_text(env):
    env.ldap.modify(dn_of(env.sample_groups()[1]), {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
    out = env.cli("dry-run").out
    assert "LDAP groups: incremental: 1 changed, 3 entries" in out


# --- pure: where the next SCIM read starts --------------------------------------------------


def test_next_read_starts_at_the_server_s_date_less_the_safety_window():
    from datetime import UTC, datetime

    began = datetime(2026, 12, 6, 10, 1, 1, tzinfo=UTC)
    newest = datetime(2026, 12, 5, 8, 0, 0, 500, tzinfo=UTC)  # a quiet server: long ago
    assert reads._since(began, newest, 30.0) == "2026-12-06T10:00:01Z"
    # no Date header: the newest lastModified less the read's duration (writes after the read
    # began are stamped later than that), less the window
    assert reads._since(None, newest, 30.0) == "2026-12-05T07:58:30.000500Z"
    assert reads._since(None, None, 1.0) is None


def test_a_read_note_says_what_was_read_and_why():
    full = reads.ReadNote("scim", "User", "full", 100_000, why="--full-read")
    assert full.text() == "SCIM User: full read: 100,000 resources (--full-read)"
    since = "2026-12-06T10:00:01Z"
    inc = reads.ReadNote("scim", "User", "incremental", 100_000, 1_012, 3, since)
    assert inc.text() == (
        "SCIM User: incremental: 1,012 changed since 2026-12-06T10:00:01Z (server time), "
        "3 gone, 100,000 resources"
    )


@pytest.mark.parametrize("proven", [True, False])
def test_a_full_page_of_all_the_changes_ends_the_read_on_proven_totals(env, monkeypatch, proven):
    """Five changed users on pages of five: the first page holds all totalResults says.
    Where the last full read found the server's count=0 right, that page ends the read;
    else the page after it is asked (paging never trusts totalResults alone)."""
    from toolkit.scim.client import ScimClient

    path = env.folder / ".scimsync" / "ldap-to-scim-scim-snapshot.bin"
    snapshot = reads._load(path)
    assert snapshot["types"]["User"]["totals_ok"] is True  # 40 counted, 40 read
    if not proven:
        snapshot["types"]["User"]["totals_ok"] = False
        reads._save(path, snapshot)
    env.write_config(scim_props={"page-size": 5})
    later_pages: list[str] = []
    iterate = ScimClient.iter_resources

    def counting(self, name, filter=None, *args, **kwargs):  # noqa: A002 - as the client names it
        if filter and "lastModified" in filter and reads.FUTURE not in filter:
            later_pages.append(name)
        return iterate(self, name, filter, *args, **kwargs)

    monkeypatch.setattr(ScimClient, "iter_resources", counting)
    edited = [env.scim_users()[uid_of(p)] for p in env.people()[11:16]]
    edit_titles(env, edited, "Paged")
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert modes(incremental)[("scim", "User")]["changed"] == 5
    assert later_pages.count("User") == (0 if proven else 1)


def test_a_resync_s_deletes_leave_the_snapshot_as_the_server_is(env):
    """A resync drops what it deleted from the snapshot: the next read finds the count it
    expects and reads no ids (it did before: the count had fallen by the deletes)."""
    gone = env.loner()
    env.ldap.delete(dn_of(gone))
    resync = env.cli_json("resync")
    assert resync["failed"] == 0 and resync["applied"] >= 1
    assert uid_of(gone) not in env.scim_users()
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "incremental" and note["count"] == 39, note
    assert not note["removed"] and "ids read" not in note["why"], note


def test_an_earlier_version_s_json_snapshot_is_removed(env):
    folder = env.folder / ".scimsync"
    old = folder / "ldap-to-scim-scim-snapshot.json"
    old.write_text("{}")
    env.cli_json("dry-run")
    assert not old.exists()


# --- SCIM: writes during the read, and most of a type changed --------------------------------


@contextlib.contextmanager
def before_the_filtered_read(monkeypatch, act: Callable[[], None]) -> Iterator[None]:
    """`act` (a real write to the real server) done once, after the run's count=0 of Users
    and before its first page filtered on meta.lastModified is asked for."""
    with racing(monkeypatch, lambda page: act(), after=False):
        yield


@contextlib.contextmanager
def racing(monkeypatch, act: Callable[[Any], None], after: bool) -> Iterator[None]:
    """`act` done once, before (`act(None)`) or after (`act(page)`) the first page of Users
    filtered on meta.lastModified (the page `search` asks for, the rest paged on from it)."""
    import toolkit.sync.runtime as runtime
    from toolkit.scim.client import ScimClient

    pending = [act]

    class Racing(ScimClient):
        def search(self, resource_type: str, filter: str | None = None, **kwargs: Any):
            due = resource_type == "User" and "lastModified" in (filter or "") and pending
            if due and not after:
                pending.pop()(None)
            page = super().search(resource_type, filter, **kwargs)
            if due and after:
                pending.pop()(page)
            return page

    with monkeypatch.context() as patch:
        patch.setattr(runtime, "ScimClient", Racing)
        yield
    assert not pending, "the run never read Users filtered on meta.lastModified"


def test_scim_create_during_the_read(env, monkeypatch):
    """Created after the count, before the filtered read: the filter finds it, the merged set
    then holds one more than totalResults said, so the ids are read and the plan is the one
    a full read after the create gives (the resource correlates to its LDAP entry)."""
    env.ldap.add(
        f"uid=racer,{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": "racer", "cn": "Racer", "sn": "Racer", "givenName": "R"},
    )
    made: list[dict[str, Any]] = []
    racer = {"userName": "racer", "externalId": "elsewhere"}
    with before_the_filtered_read(monkeypatch, lambda: made.append(env.post_user(racer))):
        incremental = saved_plan(env, "incremental")
    assert_same_plan(incremental, saved_plan(env, "full", "--full-read"))
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "incremental" and note["changed"] == 1 and note["count"] == 41
    assert note["why"] == "totalResults 40 against 41 held: ids read", note
    row = next(r for r in incremental["rows"] if r["dn"] == f"uid=racer,{PEOPLE}")
    assert row["scim_id"] == made[0]["id"]
    # the next run: nothing lost
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert modes(incremental)[("scim", "User")]["count"] == 41


def test_scim_delete_during_the_read(env, monkeypatch):
    """Deleted after the count, before the filtered read: totalResults (taken before) agrees
    with what is held, so the plan is that of the moment of the count (the resource still
    there), as a full read that paged past it before the delete would be. The next run's
    count disagrees, its ids are read, and its plan equals the full-read plan."""
    victim = env.scim_users()[uid_of(env.people()[8])]
    before = saved_plan(env, "before", "--full-read")  # the moment of the count
    with (
        env.http() as client,
        before_the_filtered_read(
            monkeypatch, lambda: client.delete(f"/Users/{victim['id']}").raise_for_status()
        ),
    ):
        incremental = saved_plan(env, "incremental")
    assert_same_plan(incremental, before)
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "incremental" and note["count"] == 40 and not note["removed"]
    assert victim["id"] not in {u["id"] for u in env.all("/Users")}  # the delete was real
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["removed"] == 1 and note["count"] == 39 and "ids read" in note["why"]


def test_most_of_a_type_changed_reads_it_fully(env):
    """Past MOSTLY_CHANGED (a quarter) of the resources held and past a page, the filtered
    read gives way to a full one, and says so with the count. Page size 10 (of 40 users),
    so the share and not the page decides. LDAP has no such rule: a third of its entries
    changed is still read incrementally."""
    env.write_config(scim_props={"page-size": 10})
    people = env.people()
    users = env.scim_users()

    def scim_titles(persons: list[dict[str, Any]], title: str) -> None:
        edit_titles(env, [users[uid_of(p)] for p in persons], title)

    scim_titles(people[:10], "Quarter")  # exactly a quarter: still incremental
    time.sleep(2.5)  # the next runs begin past these writes by the server's Date
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "incremental" and note["changed"] == 10, note
    scim_titles(people[10:22], "Most")  # 12 of 40
    for person in people[22:37]:  # 15 of 40 on the LDAP side
        env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Most"])]})
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    note = modes(incremental)[("scim", "User")]
    assert note["mode"] == "full" and re.fullmatch(r"12 of 40 changed since \S+Z", note["why"])
    assert reads.ReadNote(**note).text().startswith("SCIM User: full read: 40 resources (12 of 40")
    ldap = modes(incremental)[("ldap", "users")]
    assert ldap["mode"] == "incremental" and ldap["changed"] == 15, ldap


def test_scim_delete_while_the_filtered_read_pages(env):
    """Eight users changed, read 3 a page; after page 1 one of its users is deleted, so index
    paging shifts and page 2 starts one too far: a changed user is skipped (as a full read
    paging through a shifting list would skip one). The run must not advance its start
    point past it: the next run's incremental plan equals its --full-read plan."""
    env.write_config(scim_props={"page-size": 3})
    users = env.scim_users()
    edit_titles(env, [users[uid_of(p)] for p in env.people()[:8]], "Changed")
    time.sleep(2.5)  # changed well before the run began by the server's Date (as if minutes)
    deleted: list[str] = []

    def delete_one_read(page: Any) -> None:
        deleted.append(page.resources[0]["id"])
        with env.http() as client:
            client.delete(f"/Users/{deleted[0]}").raise_for_status()

    with pytest.MonkeyPatch.context() as patch, racing(patch, delete_one_read, after=True):
        run = {(r["side"], r["name"]): r for r in env.cli_json("dry-run")["reads"]}
    note = run[("scim", "User")]
    assert note["mode"] == "incremental" and deleted, note
    # one of the other seven skipped (page 1's deleted user was read before its delete)
    assert note["changed"] == 7 and note["why"] == "7 of 8 read", note
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    again = modes(incremental)[("scim", "User")]
    assert again["mode"] == "incremental" and again["since"] == note["since"], again
    assert again["changed"] == 7 and again["removed"] == 1, again


def test_a_value_the_snapshot_cannot_hold_leaves_the_last_one(tmp_path, caplog):
    path = tmp_path / "pipe-scim-snapshot.bin"
    reads._save(path, {"version": reads.SNAPSHOT_VERSION, "types": {}})
    reads._save(path, {"version": reads.SNAPSHOT_VERSION, "types": {"User": object()}})
    assert reads._load(path) == {"version": reads.SNAPSHOT_VERSION, "types": {}}
    assert "the read snapshot was not written" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_the_quick_check_holds_across_full_and_incremental_reads(env):
    """The quick check keys on a digest of the bytes each entry was read from: an entry from
    the snapshot (its digest kept beside it) and one re-read by id key as the same entry
    read in a full read, so no run compares an unchanged object again for how it was read."""
    from toolkit.sync.batch import RunOptions, make_plan, open_session

    def run(full_read: bool):
        options = RunOptions(full_read=full_read)
        with open_session(env.config(), options) as session:
            return make_plan(session, options)

    env.ldap.modify(dn_of(env.people()[2]), {"title": [(ldap3.MODIFY_REPLACE, ["Re-read"])]})
    unchanged = run(True).totals()["unchanged"]  # the keys as a full read gives them
    assert unchanged >= 40
    for full_read in (False, True, False):
        plan = run(full_read)
        assert plan.totals()["unchanged"] == unchanged
        assert plan.quick_checked == unchanged, (full_read, plan.quick_checked)


def test_a_snapshot_that_cannot_be_rewritten_after_deletes_fails_no_resync(env, caplog):
    """The deletes are done when the snapshot is told of them: a snapshot that cannot be
    written then is a warning (the next read's count check finds the deletes), not a run
    marked failed."""
    gone = env.loner()
    env.ldap.delete(dn_of(gone))
    folder = env.folder / ".scimsync"
    path = folder / "ldap-to-scim-scim-snapshot.bin"
    calls = {"n": 0}
    save = reads._save

    def failing_second(target, data):  # the read's own save, then forget's
        calls["n"] += target == path
        if target == path and calls["n"] == 2:
            raise reads.FatalError(f"{target}: cannot write the read snapshot: No space left")
        save(target, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reads, "_save", failing_second)
        resync = env.cli_json("resync")
    assert resync["failed"] == 0 and calls["n"] == 2
    assert "No space left" in caplog.text
    incremental, full = plans(env)
    assert_same_plan(incremental, full)
    assert "ids read" in modes(incremental)[("scim", "User")]["why"]
