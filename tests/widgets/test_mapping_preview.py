"""The mapping preview against the real slapd and scim2-server: the SCIM resource one entry
becomes and what the server's schema refuses, with nothing sent."""

from __future__ import annotations

from tests.support.plan_env import PEOPLE, dn_of, make_env, with_badge_mapping
from toolkit.widgets.mapping_preview import MappingPreview


def test_preview_shows_the_resource_and_what_the_schema_refuses_and_sends_nothing(
    slapd, scim_server, tmp_path
):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=6, groups=1)
    try:
        with_badge_mapping(env)
        view = MappingPreview(env.config())
        person = env.people()[2]
        assert dn_of(person) in view.entry.options  # listed from the pipe's classes
        view.entry.value = dn_of(person)
        view.preview_button.click()
        assert view.error is None, view.error
        assert "a resync would: create" in view.outcome.value
        assert "badgeNumber: not in the server&#x27;s schema" in view.refused.value
        assert f"&quot;userName&quot;: &quot;{person['uid'][0]}&quot;" in view.resource.value
        assert env.scim_users() == {}  # a preview sends nothing

        view.entry.value = f"uid=nobody,{PEOPLE}"
        view.preview_button.click()
        assert "not read: no such entry" in view.outcome.value and not view.resource.value
    finally:
        env.close()
