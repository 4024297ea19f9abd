"""How a resync's apply reads and writes links, on the real slapd, scim2-server and state
file: each row's link is read once for the whole run (one query per 500 rows), never by the
worker that saves it; the new ETags and forms are all stored when the run returns."""

from __future__ import annotations

import ldap3
import pytest

from tests.support.plan_env import dn_of, make_env, totals
from toolkit.sync.apply import Applier
from toolkit.sync.batch import RunOptions, make_plan, open_session
from toolkit.sync.state import StateStore


@pytest.fixture
def env(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=30, groups=2)
    yield env
    env.close()


def test_a_resync_reads_its_rows_links_once_and_stores_every_new_etag(env):
    assert env.cli_json("resync")["failed"] == 0
    edited = env.people()[:12]
    for person in edited:
        env.ldap.modify(dn_of(person), {"title": [(ldap3.MODIFY_REPLACE, ["Edited"])]})
    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        rows = [r for r in plan.rows if r.situation == "modify"]
        assert len(rows) == len(edited)
        statements: list[str] = []
        session.store._db.set_trace_callback(statements.append)
        result = Applier(plan, session.client, session.store, workers=3).run()
        session.store._db.set_trace_callback(None)
        etags = {r.entry_uuid: session.client.etag("User", r.scim_id) for r in rows}
        path = session.store.path

    assert (result.applied, result.failed) == (len(edited), 0)
    reads = [s for s in statements if s.startswith("SELECT") and "FROM links" in s]
    assert len(reads) == 1 and "entry_uuid IN" in reads[0], reads
    links = StateStore(path).links(plan.pipe)  # as another process reads the file
    assert all(etags[key] and links[key.lower()].etag == etags[key] for key in etags)
    assert env.cli_json("dry-run")["totals"] == totals(unchanged=env.users + env.groups)
