"""dry-run: the plan as files and frames, a filtered read, saved plans, and no writes."""

from __future__ import annotations

import json

import ldap3
import pandas as pd
import pytest

from tests.support.plan_env import (
    PEOPLE,
    PIPE,
    assert_summary_shape,
    dn_of,
    make_env,
    recording,
    totals,
    uid_of,
)
from toolkit.plan.plan import COLUMNS, Plan
from toolkit.sync.batch import RunOptions, dry_run


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    """A synced pipe with pending work: 1 create, 2 modifies, 1 delete."""
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=40, groups=3)
    assert env.cli_json("resync")["failed"] == 0
    people = env.people()
    env.ldap.modify(dn_of(people[2]), {"title": [(ldap3.MODIFY_REPLACE, ["Night Owl"])]})
    env.ldap.modify(dn_of(people[6]), {"displayName": [(ldap3.MODIFY_REPLACE, ["Renée Zoë"])]})
    env.ldap.delete(dn_of(env.loner()))
    env.ldap.add(
        f"uid=new.hire,{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": "new.hire", "cn": "New Hire", "sn": "Hire", "givenName": "New", "title": "Intern"},
    )
    yield env
    env.close()


PENDING = totals(create=1, modify=2, delete=1, unchanged=40)  # of 40 users + 3 groups


def test_dry_run_writes_nothing_to_ldap_or_scim(env, monkeypatch):
    before, writes = env.snapshot(), env.accesslog_count()
    with recording(monkeypatch) as rec:
        first = env.cli_json("dry-run")
        again = env.cli("resync", "--dry-run", "--json")
    assert first["totals"] == PENDING
    assert rec.requests and {m for m, _, _ in rec.requests} == {"GET"}
    second = again.json()
    assert {r["mode"] for r in second.pop("reads")} == {"incremental"}  # what the first read
    first.pop("reads")
    assert again.code == 0 and second == first
    assert env.snapshot() == before  # ids, values and versions all as they were
    assert env.accesslog_count() == writes


def test_resync_dry_run_equals_dry_run(env):
    assert_summary_shape(env.cli_json("dry-run"))
    plain, flagged = env.folder / "plain.json", env.folder / "flagged.json"
    assert env.cli("dry-run", "--output", str(plain)).code == 0
    result = env.cli("resync", "--dry-run", "--output", str(flagged))
    assert result.code == 0 and "plan written to" in result.out
    a, b = json.loads(plain.read_text()), json.loads(flagged.read_text())
    a.pop("created_at"), b.pop("created_at")
    a["summary"].pop("reads"), b["summary"].pop("reads")  # the second read what the first did not
    assert a == b
    assert a["summary"]["totals"] == PENDING


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet", ".html"])
def test_output_formats(env, suffix):
    path = env.folder / f"plan{suffix}"
    result = env.cli("dry-run", "--output", str(path))
    assert result.code == 0 and f"plan written to {path}" in result.out
    rows = env.users + env.groups + 1  # the deleted user stays as a delete row
    modified = env.people()[2]
    if suffix == ".json":
        plan = Plan.load(path)
        assert plan.pipe == PIPE and len(plan) == rows and plan.totals() == PENDING
        (row,) = [r for r in plan.rows if r.dn == dn_of(modified)]
        assert row.changes == [
            {"attribute": "title", "old": modified["title"][0], "new": "Night Owl"}
        ]
    elif suffix in (".csv", ".parquet"):
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        assert list(frame.columns) == COLUMNS and len(frame) == rows
        assert frame["situation"].value_counts().to_dict() == {
            k: v for k, v in PENDING.items() if v
        }
        row = frame[frame["dn"] == dn_of(modified)].iloc[0]
        assert json.loads(row["changes"])[0]["new"] == "Night Owl"
        assert row["method"] == "PATCH" and json.loads(row["body"])["Operations"] == [
            {"op": "replace", "path": "title", "value": "Night Owl"}
        ]
        created = frame[frame["situation"] == "create"].iloc[0]
        assert created["dn"] == f"uid=new.hire,{PEOPLE}" and created["path"] == "/Users"
    else:
        text = path.read_text()
        assert text.startswith("<!doctype html>") and f"Plan for pipe {PIPE}" in text
        assert "<h2>Summary</h2>" in text and "<h2>Class users</h2>" in text
        assert "Night Owl" in text and "Renée Zoë" in text  # the per-object diffs
        assert f"delete {dn_of(env.loner())}" in text


def test_unknown_output_format_is_a_usage_error(env):
    result = env.cli("dry-run", "--output", str(env.folder / "plan.xlsx"))
    assert result.code == 2 and "unknown plan format .xlsx" in result.err


def test_plan_frames_for_exploring(env):
    plan = dry_run(env.config(), RunOptions())
    frame = plan.frame
    assert list(frame.columns) == COLUMNS and len(frame) == len(plan)
    summary = plan.summary()
    assert summary.loc["total"].to_dict() == PENDING
    assert summary.loc["users"].to_dict() == totals(create=1, modify=2, delete=1, unchanged=37)
    side = plan.side_by_side()
    row = side[side["dn"] == dn_of(env.people()[6])].iloc[0]
    assert row["ldap.displayName"] == "Renée Zoë"
    assert row["scim.displayName"] == env.people()[6]["displayName"][0]
    assert row["ldap.userName"] == row["scim.userName"] == uid_of(env.people()[6])
    changes = plan.changes()
    assert sorted(changes[changes["situation"] == "modify"]["attribute"]) == [
        "displayName",
        "title",
    ]


def test_source_search_filter_limits_the_read_and_infers_no_deletes(env):
    person = env.people()[2]
    only = f"(uid={uid_of(person)})"
    dry = env.cli_json("dry-run", "--source-search-filter", only)
    assert dry["totals"] == totals(modify=1)  # the deleted user is not inferred gone
    result = env.cli_json("resync", "--source-search-filter", "(|(uid=new.hire)(uid=nobody))")
    assert result["totals"] == totals(create=1)
    assert (result["applied"], result["failed"]) == (1, 0)
    users = env.scim_users()
    assert "new.hire" in users and uid_of(env.loner()) in users  # the delete waits
    after = env.cli_json("dry-run")
    assert after["totals"] == totals(modify=2, delete=1, unchanged=41)


def test_resync_applies_a_saved_plan(env):
    path = env.folder / "plan.json"
    assert env.cli("dry-run", "--output", str(path)).code == 0
    result = env.cli_json("resync", "--plan", str(path))
    assert result["totals"] == PENDING and (result["applied"], result["failed"]) == (4, 0)
    users = env.scim_users()
    assert users[uid_of(env.people()[2])]["title"] == "Night Owl"
    assert "new.hire" in users and uid_of(env.loner()) not in users
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)


def test_a_saved_plan_whose_objects_changed_is_refused(env):
    path = env.folder / "plan.json"
    assert env.cli("dry-run", "--output", str(path)).code == 0
    before = env.snapshot()
    # the source changed since the plan was made
    person = env.people()[2]
    env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Early Bird"])]})
    refused = env.cli("resync", "--plan", str(path))
    assert refused.code == 2
    assert "the saved plan is out of date: 1 objects changed" in refused.err
    assert dn_of(person) in refused.err and "make a new dry run" in refused.err
    assert env.snapshot() == before

    # the target changed since the plan was made (its ETag moved)
    env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Night Owl"])]})
    other = env.people()[6]
    target = env.scim_users()[uid_of(other)]
    with env.http() as client:
        patched = client.patch(
            f"/Users/{target['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Edited in SCIM"}],
            },
        )
    assert patched.status_code in (200, 204), patched.text
    refused = env.cli("resync", "--plan", str(path))
    assert refused.code == 2 and dn_of(other) in refused.err

    foreign = json.loads(path.read_text())
    foreign["pipe"] = "another-pipe"
    (env.folder / "foreign.json").write_text(json.dumps(foreign))
    wrong = env.cli("resync", "--plan", str(env.folder / "foreign.json"))
    assert wrong.code == 2 and "a plan for pipe another-pipe" in wrong.err
    csv = env.folder / "plan.csv"
    env.cli("dry-run", "--output", str(csv))
    not_json = env.cli("resync", "--plan", str(csv))
    assert not_json.code == 2 and "only .json plans can be applied" in not_json.err


def test_a_terminal_shows_the_reads_and_the_apply_progressing(env, capsys):
    """Each read counts what it has read so far (on stderr, never stdout), and applying
    shows a bar out of the objects to change; without a terminal, nothing is drawn."""
    from toolkit.sync.batch import resync
    from toolkit.terminal import TerminalBars

    dry_run(env.config(), RunOptions())
    assert capsys.readouterr().err == ""

    options = RunOptions(on_progress=TerminalBars(), allow_deletes=True, full_read=True)
    resync(env.config(), options)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.replace("\r", "\n")
    users = env.users  # 40 read, one deleted and one added since the first resync
    assert f"reading LDAP (users): {users} entries [" in lines
    assert f"reading LDAP (groups): {env.groups} entries [" in lines
    assert f"reading SCIM (User): {users} resources [" in lines
    assert f"reading SCIM (Group): {env.groups} resources [" in lines
    assert "applying: 100%" in lines and "4/4" in lines
