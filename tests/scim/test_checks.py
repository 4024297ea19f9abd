"""prepare-endpoint-server for a SCIM target, against the real scim2-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.lab.scimserver import ScimServer

DEFAULT_MAPPING = Path(__file__).parents[2] / "toolkit" / "mapping" / "default-scim-resources.xml"

CONFIG = """\
external-servers:
  ldap:
    type: openldap
    server-host-name: 127.0.0.1
    server-port: 389
    bind-dn: cn=admin,dc=example,dc=com
    password: ${{file:ldap.pw}}
  scim:
    type: scim2
    scim-service-url: {url}
    http-authorization-method: {auth}
{token}sync-sources:
  source:
    type: ldap
    base-dn: ["dc=example,dc=com"]
    server: [ldap]
sync-destinations:
  scim:
    type: scim2
    server: [scim]
{mapping}sync-pipes:
  pipe:
    sync-source: source
    sync-destination: scim
    sync-classes:
      users:
        include-base-dn: ["ou=people,dc=example,dc=com"]
        include-filter: ["(objectClass=inetOrgPerson)"]
"""


def write_config(
    folder: Path, url: str, token: str | None = None, mapping: Path | None = None
) -> Path:
    (folder / "ldap.pw").write_text("unused")
    if token:
        (folder / "scim.token").write_text(token)
    path = folder / "sync.yaml"
    path.write_text(
        CONFIG.format(
            url=url,
            auth="bearer" if token else "none",
            token="    oauth-token: ${file:scim.token}\n" if token else "",
            mapping=f"    resource-mapping-file: {mapping}\n" if mapping else "",
        )
    )
    return path


def run(path: Path, capsys) -> tuple[int, str]:
    code = main(["--config", str(path), "prepare-endpoint-server", "--server-name", "scim"])
    return code, capsys.readouterr().out


def test_every_mapped_attribute_exists_and_is_writable(tmp_path, scim_server, capsys):
    code, out = run(write_config(tmp_path, scim_server.url), capsys)
    assert code == 0, out
    assert "PASS  /ServiceProviderConfig" in out and "PASS  /Schemas" in out
    assert "PASS  User attribute userName: string, readWrite" in out
    assert (
        "PASS  User attribute urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
        in out
    )
    assert " 0 failed" in out


def test_an_attribute_the_server_lacks_fails_with_a_fix(tmp_path, scim_server, capsys):
    mapping = tmp_path / "scim-resources.xml"
    mapping.write_text(
        DEFAULT_MAPPING.read_text().replace('name="title"', 'name="favouriteColour"', 1)
    )
    code, out = run(write_config(tmp_path, scim_server.url, mapping=mapping), capsys)
    assert code == 1
    line = next(x for x in out.splitlines() if "favouriteColour" in x)
    assert line.startswith("FAIL")
    assert "fix:" in out.split(line, 1)[1].splitlines()[1]
    assert " 1 failed" in out


@pytest.fixture
def token_server(tmp_path):
    server = ScimServer(tmp_path / "scim-token", bearer_token="right-token").start()
    yield server
    server.stop()


def test_a_wrong_token_fails_and_is_never_printed(tmp_path, token_server, capsys):
    code, out = run(write_config(tmp_path, token_server.url, token="wrong-token"), capsys)
    assert code == 1 and "FAIL" in out
    assert "wrong-token" not in out
    good = tmp_path / "good"
    good.mkdir()
    code, out = run(write_config(good, token_server.url, token="right-token"), capsys)
    assert code == 0, out
    assert "right-token" not in out
