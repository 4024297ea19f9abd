"""The prepare-endpoint-server checklist on the real slapd and scim2-server: the same checks
the command makes, one Check button per server."""

from __future__ import annotations

from tests.support.plan_env import make_env
from toolkit.sync.checks import prepare_endpoint
from toolkit.widgets.endpoints import EndpointChecklist


def test_checklist_shows_each_servers_checks_as_the_command_makes_them(
    slapd, scim_server, tmp_path
):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=3, groups=1)
    try:
        view = EndpointChecklist(env.config())
        assert len(view.servers) == 2 and set(view.buttons) == set(view.servers)
        view.all_button.click()
        assert view.errors == {}
        for name in view.servers:
            expected = [(r.name, r.ok) for r in prepare_endpoint(env.config(), name)]
            assert [(r.name, r.ok) for r in view.results[name]] == expected
            for check in view.results[name]:
                assert check.name in view.shown[name].value
        assert view.buttons[view.servers[0]].description == f"Check {view.servers[0]}"
    finally:
        env.close()
