"""prepare-endpoint-server for LDAP servers, against the real 389-DS and slapd, and its CLI."""

from __future__ import annotations

import textwrap
import uuid

import ldap3
import pytest

from toolkit.cli import main
from toolkit.lab.process import free_port
from toolkit.lab.slapd import Slapd
from toolkit.ldap import LdapServerSpec, prepare_ldap_server
from toolkit.ldap.prepare import aci_for_data, olc_access_for_data, olc_access_for_log

SYNC_PASSWORD = "Sync-User-Pass-7"


def sync_spec(server, dn: str | None = None, password: str = SYNC_PASSWORD) -> LdapServerSpec:
    dn = dn or f"cn=sync-{uuid.uuid4().hex[:8]},{server.suffix}"
    return LdapServerSpec(server.host, server.port, bind_dn=dn, password=password, name="source-ds")


def by_name(results):
    return {r.name: r for r in results}


def failed(results):
    return [r.name for r in results if not r.ok]


def test_389_create_sync_user_then_everything_passes(dirsrv):
    spec = sync_spec(dirsrv)
    results = prepare_ldap_server(
        spec,
        [dirsrv.suffix],
        admin_dn=dirsrv.admin_dn,
        admin_password=dirsrv.admin_password,
        create_sync_user=True,
    )
    assert failed(results) == []
    names = by_name(results)
    assert names["sync user entry"].detail == f"created {spec.bind_dn}"
    assert "added aci" in names[f"read-only ACI on {dirsrv.suffix}"].detail
    assert "entryUUID readable" in names[f"read {dirsrv.suffix}"].detail
    assert names["change feed enabled"].detail.startswith("changelog")
    assert "7d" in names["change feed retained"].detail
    # the user is read-only: it can read entries and the changelog, but not write or see passwords
    conn = dirsrv.connect(spec.bind_dn, SYNC_PASSWORD)
    with pytest.raises(ldap3.core.exceptions.LDAPInsufficientAccessRightsResult):
        conn.add(
            f"uid=x,ou=people,{dirsrv.suffix}",
            ["inetOrgPerson"],
            {"uid": "x", "cn": "x", "sn": "x"},
        )
    conn.search(spec.bind_dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
    assert not conn.response[0]["raw_attributes"].get("userPassword")
    # running again (without creating) still passes, and creating again changes nothing
    assert failed(prepare_ldap_server(spec, [dirsrv.suffix])) == []
    again = by_name(
        prepare_ldap_server(
            spec,
            [dirsrv.suffix],
            admin_dn=dirsrv.admin_dn,
            admin_password=dirsrv.admin_password,
            create_sync_user=True,
        )
    )
    assert (
        "exists" in again["sync user entry"].detail
        and "already present" in again["read ACI on cn=changelog"].detail
    )


def test_389_wrong_password_fails_with_a_fix(dirsrv):
    spec = sync_spec(dirsrv, dirsrv.admin_dn, "Not-The-Password-1")
    results = prepare_ldap_server(spec, [dirsrv.suffix])
    assert failed(results) == ["sync user binds"]
    check = by_name(results)["sync user binds"]
    assert "invalid credentials" in check.detail and dirsrv.admin_dn in check.detail
    assert "Not-The-Password-1" not in check.detail + (check.fix or "")
    assert "--create-sync-user" in check.fix


def test_389_unreadable_changelog_fails_with_the_aci_to_add(dirsrv):
    spec = sync_spec(dirsrv)
    admin = dirsrv.connect()
    admin.add(
        spec.bind_dn,
        ["top", "applicationProcess", "simpleSecurityObject"],
        {"cn": spec.bind_dn.split(",")[0][3:], "userPassword": SYNC_PASSWORD},
    )
    admin.modify(dirsrv.suffix, {"aci": [(ldap3.MODIFY_ADD, [aci_for_data(spec.bind_dn)])]})
    admin.add(
        f"uid=someone,ou=people,{dirsrv.suffix}",
        ["inetOrgPerson"],
        {"uid": "someone", "cn": "s", "sn": "s"},
    )
    results = prepare_ldap_server(spec, [dirsrv.suffix, f"ou=missing,{dirsrv.suffix}"])
    assert failed(results) == [f"read ou=missing,{dirsrv.suffix}", "change feed readable"]
    feed = by_name(results)["change feed readable"]
    assert "sees none of" in feed.detail
    assert "add to cn=changelog: aci:" in feed.fix and spec.bind_dn in feed.fix


def test_389_short_retention_fails(dirsrv):
    admin = dirsrv.connect()
    plugin = "cn=Retro Changelog Plugin,cn=plugins,cn=config"
    admin.modify(plugin, {"nsslapd-changelogmaxage": [(ldap3.MODIFY_REPLACE, ["2h"])]})
    try:
        results = prepare_ldap_server(
            sync_spec(dirsrv, dirsrv.admin_dn, dirsrv.admin_password),
            [dirsrv.suffix],
            admin_dn=dirsrv.admin_dn,
            admin_password=dirsrv.admin_password,
        )
    finally:
        admin.modify(plugin, {"nsslapd-changelogmaxage": [(ldap3.MODIFY_REPLACE, ["7d"])]})
    assert failed(results) == ["change feed retained"]
    assert "2h" in by_name(results)["change feed retained"].detail
    assert "--max-age 7d" in by_name(results)["change feed retained"].fix


def test_unreachable_server_stops_early():
    spec = LdapServerSpec("127.0.0.1", free_port(), bind_dn="cn=x", password="y", connect_timeout=2)
    results = prepare_ldap_server(spec, ["dc=example,dc=com"])
    assert [(r.name, r.ok) for r in results] == [("server answers", False)]
    assert "server-port" in results[0].fix


def test_slapd_create_sync_user_prints_the_access_lines_and_they_work(tmp_path):
    """slapd.conf is not writable over LDAP: the printed lines, once added, make every check pass."""
    server = Slapd(tmp_path / "slapd").create().start()
    try:
        spec = sync_spec(server)
        results = prepare_ldap_server(
            spec,
            [server.suffix],
            admin_dn=server.admin_dn,
            admin_password=server.admin_password,
            create_sync_user=True,
        )
        names = by_name(results)
        assert names["sync user entry"].ok and names["sync user binds"].ok
        assert failed(results) == ["read-only access rules", "change feed enabled"]
        fix = names["read-only access rules"].fix
        for rule in olc_access_for_data(spec.bind_dn) + olc_access_for_log(spec.bind_dn):
            assert f"'access {rule}'" in fix
        assert "offers no change feed" in names["change feed enabled"].detail
        # do what the fix says
        server.stop()
        conf = server.conf.read_text()
        log_rules = "".join(f"access {r}\n" for r in olc_access_for_log(spec.bind_dn))
        data_rules = "".join(f"access {r}\n" for r in olc_access_for_data(spec.bind_dn))
        conf = conf.replace("access to * by * none\n", log_rules + "access to * by * none\n", 1)
        conf = conf.replace(
            "access to attrs=userPassword", data_rules + "access to attrs=userPassword", 1
        )
        server.conf.write_text(conf)
        server.start()
        results = prepare_ldap_server(spec, [server.suffix])
        assert failed(results) == []
        assert by_name(results)["change feed enabled"].detail.startswith("accesslog")
        assert (
            "not verified" in by_name(results)["change feed retained"].detail
        )  # slapd.conf: no cn=config
        conn = server.connect(spec.bind_dn, SYNC_PASSWORD)
        conn.search(
            server.admin_dn.split(",", 1)[1], "(objectClass=*)", attributes=["userPassword"]
        )
        assert all(
            not r["raw_attributes"].get("userPassword")
            for r in conn.response
            if r["type"] == "searchResEntry"
        )
    finally:
        server.stop()


def test_slapd_with_writable_cn_config_gets_the_access_rules_applied(tmp_path):
    """cn=config writable by the admin: the rules go in online and every check passes."""
    server = Slapd(tmp_path / "slapd", config_admin=True).create().start()
    try:
        spec = sync_spec(server)
        results = prepare_ldap_server(
            spec,
            [server.suffix],
            admin_dn=server.admin_dn,
            admin_password=server.admin_password,
            create_sync_user=True,
        )
        names = by_name(results)
        assert names["sync user entry"].ok and names["sync user binds"].ok
        applied = [r for r in results if r.name.startswith("read-only access")]
        assert applied and all(r.ok for r in applied), applied
        assert "added olcAccess" in " ".join(r.detail for r in applied)
        # no restart, no edit of slapd.conf: the sync user reads data and the access log now
        assert failed(prepare_ldap_server(spec, [server.suffix])) == []
        conn = server.connect(spec.bind_dn, SYNC_PASSWORD)
        conn.search("cn=accesslog", "(objectClass=auditWriteObject)", attributes=["reqDN"])
        assert any("sync" in str(e.reqDN).lower() for e in conn.entries)  # the user's own add
        conn.search(f"ou=people,{server.suffix}", "(objectClass=*)", attributes=["userPassword"])
        assert all(not e.entry_attributes_as_dict.get("userPassword") for e in conn.entries)
    finally:
        server.stop()


def write_config(folder, server, bind_dn: str, password: str, detector: str = "auto"):
    (folder / "sync.pw").write_text(password + "\n")
    (folder / "admin.pw").write_text(server.admin_password + "\n")
    (folder / "sync.yaml").write_text(
        textwrap.dedent(
            f"""\
            external-servers:
              source-ds:
                type: ldap
                server-host-name: {server.host}
                server-port: {server.port}
                bind-dn: {bind_dn}
                password: ${{file:sync.pw}}
              scim:
                type: scim2
                scim-service-url: http://127.0.0.1:9/v2
                http-authorization-method: none
            sync-sources:
              source:
                type: ldap
                base-dn: ["{server.suffix}"]
                server: [source-ds]
                change-detector: {detector}
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
                    include-base-dn: ["ou=people,{server.suffix}"]
                    include-filter: ["(objectClass=inetOrgPerson)"]
            """
        )
    )
    return folder / "sync.yaml"


def test_cli_creates_the_user_then_passes_on_389(dirsrv, tmp_path, capsys):
    bind_dn = f"cn=sync-cli-{uuid.uuid4().hex[:6]},{dirsrv.suffix}"
    config = write_config(tmp_path, dirsrv, bind_dn, SYNC_PASSWORD)
    argv = ["--config", str(config), "prepare-endpoint-server", "--server-name", "source-ds"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL  sync user binds" in out and "fix:" in out
    create = [
        *argv,
        "--admin-bind-dn",
        dirsrv.admin_dn,
        "--admin-password-file",
        str(tmp_path / "admin.pw"),
    ]
    assert main([*create, "--create-sync-user"]) == 0
    out = capsys.readouterr().out
    assert f"PASS  sync user entry: created {bind_dn}" in out and "0 failed" in out
    # the new read-only user reads the schema: the built-in mapping's attributes are all there
    assert "PASS  mapped attributes in the schema: all 21 LDAP attributes" in out
    assert SYNC_PASSWORD not in out and dirsrv.admin_password not in out
    assert main(argv) == 0


def test_cli_reports_a_detector_mismatch_and_usage_errors(slapd, tmp_path, capsys):
    config = write_config(
        tmp_path, slapd, slapd.admin_dn, slapd.admin_password, detector="changelog"
    )
    argv = ["--config", str(config), "prepare-endpoint-server", "--server-name", "source-ds"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL  change detector matches" in out and "set change-detector: accesslog" in out
    assert main([*argv, "--create-sync-user"]) == 2
    assert "needs --admin-bind-dn" in capsys.readouterr().err
    assert main(["--config", str(config), "prepare-endpoint-server", "--server-name", "nope"]) == 2
    assert "no external server named 'nope'" in capsys.readouterr().err
