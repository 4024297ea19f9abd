"""The setup form's secret fields and its per-endpoint connection tests, on a real lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.widgets import SetupWizard

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def a_lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("setup-lab") / "lab"
    state = lab.up(folder, users=5, groups=1)
    yield state
    lab.down(folder)


def wizard_for(state, target: Path) -> SetupWizard:
    return SetupWizard(target, SetupWizard.defaults_from_config(load_config(state.config)))


def test_a_secret_field_keeps_only_a_file_or_an_env_reference_and_never_shows_text(a_lab, tmp_path):
    wizard = wizard_for(a_lab, tmp_path / "sync.yaml")
    field = wizard.scim_token
    token_file = str(Path(a_lab.folder) / "secrets" / "scim-token")
    assert field.value == token_file and token_file in field.note.value
    assert type(field.box).__name__ == "Password"  # the browser shows dots, never the text

    field.value = "s3cr3t-typed-by-mistake"
    assert field.value == ""
    assert "cleared" in field.note.value and "s3cr3t" not in field.note.value

    field.value = "${env:SCIM_TOKEN}"
    assert field.value == "${env:SCIM_TOKEN}" and "${env:SCIM_TOKEN}" in field.note.value
    field.value = "${env:not a name}"
    assert field.value == "" and "not a ${env:NAME} reference" in field.note.value


def test_test_buttons_try_each_endpoint_the_form_describes_and_write_nothing(a_lab, tmp_path):
    target = tmp_path / "sync.yaml"
    wizard = wizard_for(a_lab, target)
    wizard.test_ldap_button.click()
    wizard.test_scim_button.click()
    assert wizard.connection == {"LDAP": "connected", "SCIM": "connected"}
    assert "connected" in wizard.ldap_result.value and "connected" in wizard.scim_result.value

    wizard.scim_url.value = "http://127.0.0.1:9/v2"  # nothing listens on the discard port
    wizard.test_scim_button.click()
    assert wizard.connection["SCIM"].startswith("SCIM server scim:")
    wizard.source_servers.value = "127.0.0.1:9"
    wizard.test_ldap_button.click()
    assert wizard.connection["LDAP"].startswith("LDAP server")
    assert "&#10008;" in wizard.ldap_result.value
    assert not target.exists() and not (tmp_path / "scim-resources.xml").exists()
