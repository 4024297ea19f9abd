"""Sources built from sync.yaml: an ldap source (real slapd) and an ldif source."""

from __future__ import annotations

import textwrap

from toolkit.config import load_config
from toolkit.ldap import LdapSource, LdifSource
from toolkit.ldap.fromconfig import base_dns_of_server, open_source, source_spec

PIPE = """\
sync-destinations:
  scim:
    type: scim2
    server: [scim]
sync-pipes:
  ldap-to-scim:
    sync-source: source
    sync-destination: scim
    sync-classes:
      users:
        evaluation-order-index: 100
        include-base-dn: ["ou=people,dc=example,dc=com"]
"""


def write(folder, sources: str, servers: str) -> object:
    path = folder / "sync.yaml"
    path.write_text(
        "external-servers:\n"
        + textwrap.indent(servers, "  ")
        + "  scim:\n    type: scim2\n    scim-service-url: http://127.0.0.1:9/v2\n"
        + "sync-sources:\n"
        + textwrap.indent(sources, "  ")
        + PIPE
    )
    return load_config(path)


def test_ldap_source_from_config_reads_with_failover(slapd, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LDAP_PASSWORD", slapd.admin_password)
    servers = f"""\
dead:
  type: ldap
  server-host-name: 127.0.0.1
  server-port: 9
  bind-dn: {slapd.admin_dn}
  password: ${{env:TEST_LDAP_PASSWORD}}
  connect-timeout: 2 s
live:
  type: openldap
  server-host-name: {slapd.host}
  server-port: {slapd.port}
  bind-dn: {slapd.admin_dn}
  password: ${{env:TEST_LDAP_PASSWORD}}
"""
    sources = """\
source:
  type: ldap
  base-dn: ["dc=example,dc=com"]
  server: [dead, live]
  page-size: 2
  read-connections: 3
  ignore-changes-by-dn: ["cn=sync,dc=example,dc=com"]
"""
    config = write(tmp_path, sources, servers)
    spec = source_spec(config)
    assert [s.name for s in spec.servers] == ["dead", "live"]
    assert spec.servers[1].password == slapd.admin_password
    assert spec.read_connections == 3
    assert spec.page_size == 2 and spec.ignore_changes_by_dn == ("cn=sync,dc=example,dc=com",)
    assert base_dns_of_server(config, "live") == ["dc=example,dc=com"]
    source = open_source(config)
    assert isinstance(source, LdapSource)
    assert sum(1 for _ in source.iter_all()) == 3
    detector, reason = source.change_detector()
    assert detector.name == "accesslog" and "live" in reason


def test_ldif_source_from_config(tmp_path):
    (tmp_path / "export.ldif").write_text(
        "dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n"
        "dn: uid=a,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: a\ncn: A\nsn: A\n"
    )
    sources = """\
source:
  type: ldif
  base-dn: ["dc=example,dc=com"]
  ldif-file: export.ldif
"""
    config = write(tmp_path, sources, "")
    source = open_source(config)
    assert isinstance(source, LdifSource) and source.path == tmp_path / "export.ldif"
    assert [e["uid"] for e in source.iter_all("(objectClass=inetOrgPerson)")] == [["a"]]
