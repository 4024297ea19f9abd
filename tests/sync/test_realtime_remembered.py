"""Realtime sync diffs against the form it last applied, and If-Match keeps that honest."""

from __future__ import annotations

import pytest

from tests.support.realtime_env import make_rt
from toolkit.sync import synclog


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    yield rt
    rt.close()


def test_a_change_costs_no_read_of_the_target(rt, monkeypatch):
    from toolkit.scim.client import ScimClient

    gets = []
    original = ScimClient.get

    def counting_get(self, *args, **kwargs):
        gets.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ScimClient, "get", counting_get)
    person = rt.loners()[0]
    rt.replace(person["dn"][0], title=["Remembered Title"])
    rt.sync()
    assert rt.users()[person["uid"][0]]["title"] == "Remembered Title"
    assert gets == []  # the form last applied and its ETag stood in for a GET
    assert [line["type"] for line in rt.log() if line["type"] != synclog.CHANGE_DETECTED][-1] == (
        synclog.CHANGE_APPLIED
    )


def test_a_target_changed_by_someone_else_is_read_again_not_overwritten_blindly(rt):
    person = rt.loners()[1]
    uid = person["uid"][0]
    user = rt.users()[uid]
    # another SCIM client changes the user: its ETag moves on
    with rt.http() as client:
        client.patch(
            f"/Users/{user['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "nickName", "value": "Outsider"},
                    {"op": "replace", "path": "displayName", "value": "Changed Elsewhere"},
                ],
            },
        ).raise_for_status()
    rt.replace(person["dn"][0], title=["After The Outsider"])
    rt.sync()
    after = rt.users()[uid]
    assert after["title"] == "After The Outsider"
    assert after["nickName"] == "Outsider"  # an attribute the mapping does not own stays
    # the 412 sent the entry through a fresh read: the owned attribute is put right too
    assert after["displayName"] == person["displayName"][0]
    assert after["id"] == user["id"]
    applied = [line for line in rt.log() if line["type"] == synclog.CHANGE_APPLIED]
    assert sorted(c["attribute"] for c in applied[-1]["changes"]) == ["displayName", "title"]
    assert rt.dry_run_totals()["unchanged"] == sum(rt.dry_run_totals().values())
