"""The Applier's deletes (resync and realtime alike, toolkit.sync.apply): a DELETE answered
404 is done, as the resource is gone either way (a retry whose first attempt was applied, or
a resource deleted by hand since the plan was made), on the real slapd and scim2-server."""

from __future__ import annotations

from tests.support.plan_env import dn_of, make_env
from toolkit.sync.apply import Applier
from toolkit.sync.batch import RunOptions, make_plan, open_session


def test_a_delete_whose_resource_is_already_gone_is_done(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=20, groups=2)
    assert env.cli_json("resync")["failed"] == 0
    gone, kept = env.loner(0), env.loner(1)
    for person in (gone, kept):
        env.ldap.delete(dn_of(person))
    options = RunOptions()
    with open_session(env.config(), options) as session:
        plan = make_plan(session, options)
        deletes = {r.dn: r for r in plan.rows if r.situation == "delete"}
        assert set(deletes) == {dn_of(gone), dn_of(kept)}
        with env.http() as http:  # deleted by hand after the plan was made
            assert http.delete(f"/Users/{deletes[dn_of(gone)].scim_id}").status_code == 204
        result = Applier(plan, session.client, session.store).run()
        by_dn = {o.row.dn: o for o in result.failures}
        assert (result.applied, result.failed) == (2, 0), by_dn
        assert session.store.failures(env.config().pipe().name) == []
    assert env.cli_json("dry-run")["totals"]["delete"] == 0  # both links are gone
    env.close()
