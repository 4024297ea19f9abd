"""`scimsync create-sync-pipe-config`: flags, prompts (answers piped to stdin), connection tests."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.config import ConfigError, load_config
from toolkit.config.pipeconfig import (
    ConnectionCheckError,
    PipeConfigAnswers,
    write_pipe_config,
)
from toolkit.mapping import default_mapping_text, load_mapping
from toolkit.wizard import Wizard


def scimsync(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flags(
    tmp_path: Path,
    *extra: str,
    ldap_port: int = 389,
    scim_url: str = "https://scim.example.com/scim/v2",
) -> list[str]:
    (tmp_path / "bind.pw").write_text("bind-secret\n")
    (tmp_path / "scim.token").write_text("token-secret\n")
    return [
        "--config", str(tmp_path / "cfg" / "sync.yaml"),
        "create-sync-pipe-config", "--no-prompt",
        "--source-host", "127.0.0.1", "--source-port", str(ldap_port),
        "--source-bind-dn", "cn=admin,dc=example,dc=com",
        "--source-bind-password-file", str(tmp_path / "bind.pw"),
        "--source-base-dn", "o=corp,c=de", "--source-base-dn", "dc=example,dc=com",
        "--change-detector", "accesslog",
        "--scim-url", scim_url,
        *extra,
    ]  # fmt: skip


def test_no_prompt_offline_writes_a_valid_config(tmp_path):
    run = scimsync(
        *flags(
            tmp_path,
            "--scim-auth",
            "bearer",
            "--scim-token-file",
            str(tmp_path / "scim.token"),
            "--offline",
        )
    )
    assert run.returncode == 0, run.stderr
    path = tmp_path / "cfg" / "sync.yaml"
    text = path.read_text()
    assert "bind-secret" not in text and "token-secret" not in text
    config = load_config(path)
    server = config.external_servers["source-ds"]
    assert str(server.password) == f"${{file:{tmp_path / 'bind.pw'}}}"
    assert server.password.resolve() == "bind-secret"
    assert config.external_servers["scim"].oauth_token.resolve() == "token-secret"
    source = config.source_of()
    assert (
        source.base_dn == ("o=corp,c=de", "dc=example,dc=com")
        and source.change_detector == "accesslog"
    )
    pipe = config.pipe("ldap-to-scim")
    users, groups, default = pipe.classes_in_order()
    assert (users.name, users.evaluation_order_index, users.include_base_dn) == (
        "users",
        100,
        ("ou=people,o=corp,c=de",),
    )
    assert users.include_filter == ("(objectClass=inetOrgPerson)",)
    assert users.destination_correlation_attributes == (("externalId",), ("userName",))
    assert (groups.name, groups.evaluation_order_index, groups.include_base_dn) == (
        "groups",
        200,
        ("ou=groups,o=corp,c=de",),
    )
    assert groups.include_filter == (
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
    )
    assert (default.name, default.evaluation_order_index, default.is_exclusion) == (
        "DEFAULT",
        99999,
        True,
    )
    mapping = config.mapping_file_of(config.destination_of())
    assert mapping == tmp_path / "cfg" / "scim-resources.xml"
    xml = mapping.read_text()
    assert (
        "ou=people,o=corp,c=de" in xml and "dc=example,dc=com" not in xml
    )  # the copy uses the first base
    assert "wrote" in run.stdout

    again = scimsync(*flags(tmp_path, "--offline"))
    assert again.returncode == 2 and "already exists: use --force" in again.stderr
    assert path.read_text() == text
    forced = scimsync(*flags(tmp_path, "--offline", "--force", "--pipe-name", "hr"))
    assert forced.returncode == 0, forced.stderr
    assert list(load_config(path).sync_pipes) == ["hr"]
    assert load_config(path).external_servers["scim"].http_authorization_method == "none"


def test_no_prompt_active_directory_writes_the_ad_mapping_classes_and_key(tmp_path):
    args = flags(tmp_path, "--offline", "--source-type", "active-directory")
    args[args.index("accesslog")] = "auto"
    args[args.index("o=corp,c=de")] = "DC=corp,DC=example"
    args[args.index("cn=admin,dc=example,dc=com")] = "scimsync@corp.example"  # a UPN bind
    run = scimsync(*args)
    assert run.returncode == 0, run.stderr
    config = load_config(tmp_path / "cfg" / "sync.yaml")
    assert config.external_servers["source-ds"].type == "active-directory"
    assert config.external_servers["source-ds"].bind_dn == "scimsync@corp.example"
    users, groups, _ = config.pipe("ldap-to-scim").classes_in_order()
    assert users.include_filter == ("(&(objectClass=user)(!(objectClass=computer)))",)
    assert groups.include_filter == ("(objectClass=group)",)
    xml = config.mapping_file_of(config.destination_of()).read_text()
    assert xml == default_mapping_text("DC=corp,DC=example", "active-directory")
    assert 'ldapAttribute="sAMAccountName"' in xml and "entryUUID" not in xml
    from toolkit.ldap.fromconfig import source_spec

    assert source_spec(config).unique_id_attribute == "objectGUID"  # AD's unique id
    mappings = load_mapping(config.mapping_file_of(config.destination_of()))
    user = mappings["User"].to_scim(
        {
            "dn": "CN=ann,OU=People,DC=corp,DC=example",
            "objectguid": ["0e0d0c0b-0a09-0807-0605-040302010000"],
            "samaccountname": ["ann"],
            "useraccountcontrol": ["514"],
            "department": ["Sales"],
            "employeeid": ["E-1"],
            "company": ["Example"],
        },
        None,
    )
    enterprise = user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert (user["userName"], user["externalId"], user["active"]) == (
        "ann",
        "0e0d0c0b-0a09-0807-0605-040302010000",
        False,
    )
    assert enterprise == {"department": "Sales", "employeeNumber": "E-1", "organization": "Example"}


def test_no_prompt_with_own_mapping_file_and_basic_or_oauth2(tmp_path):
    own = tmp_path / "own.xml"
    own.write_bytes(
        (
            Path(__file__).parents[2] / "toolkit" / "mapping" / "default-scim-resources.xml"
        ).read_bytes()
    )
    (tmp_path / "scim.pw").write_text("pw\n")
    run = scimsync(
        *flags(
            tmp_path,
            "--offline",
            "--resource-mapping-file",
            str(own),
            "--scim-auth",
            "basic",
            "--scim-user",
            "sync",
            "--scim-password-file",
            str(tmp_path / "scim.pw"),
        )
    )
    assert run.returncode == 0, run.stderr
    config = load_config(tmp_path / "cfg" / "sync.yaml")
    assert config.mapping_file_of("scim") == own
    assert not (tmp_path / "cfg" / "scim-resources.xml").exists()
    scim = config.external_servers["scim"]
    assert (scim.http_authorization_method, scim.user_name, scim.password.resolve()) == (
        "basic",
        "sync",
        "pw",
    )

    run = scimsync(
        *flags(
            tmp_path,
            "--offline",
            "--force",
            "--scim-auth",
            "oauth2",
            "--scim-token-url",
            "https://idp.example.com/token",
            "--scim-client-id",
            "sync",
            "--scim-client-secret-file",
            str(tmp_path / "scim.pw"),
        )
    )
    assert run.returncode == 0, run.stderr
    scim = load_config(tmp_path / "cfg" / "sync.yaml").external_servers["scim"]
    assert (scim.http_authorization_method, scim.oauth_client_id) == ("oauth2", "sync")
    assert scim.oauth_server_token_endpoint_url == "https://idp.example.com/token"


def test_no_prompt_usage_errors(tmp_path):
    run = scimsync(
        "--config", str(tmp_path / "s.yaml"), "create-sync-pipe-config", "--no-prompt", "--offline"
    )
    assert run.returncode == 2
    assert "--source-base-dn" in run.stderr and "--scim-url" in run.stderr
    run = scimsync(*flags(tmp_path, "--offline", "--scim-auth", "bearer"))
    assert run.returncode == 2 and "--scim-auth bearer needs --scim-token-file" in run.stderr
    run = scimsync(
        *flags(
            tmp_path,
            "--offline",
            "--scim-auth",
            "bearer",
            "--scim-token-file",
            str(tmp_path / "nope"),
        )
    )
    assert (
        run.returncode == 2 and "--scim-token-file" in run.stderr and "does not exist" in run.stderr
    )
    run = scimsync(*flags(tmp_path, "--offline", "--source-base-dn", "ou=x,o=corp,c=de"))
    assert run.returncode == 2 and "base DNs must not overlap" in run.stderr
    assert not (tmp_path / "cfg").exists() or not (tmp_path / "cfg" / "sync.yaml").exists()


def test_failed_connection_check_writes_nothing(tmp_path):
    answers = PipeConfigAnswers(
        source_base_dns=["dc=example,dc=com"], scim_url="http://127.0.0.1:1/v2"
    )
    path = tmp_path / "sync.yaml"
    seen = []

    def check(config):
        seen.append(config.pipe().name)
        return ["LDAP server source-ds: connection refused"]

    with pytest.raises(ConnectionCheckError, match="connection refused"):
        write_pipe_config(
            path, answers, default_mapping=default_mapping_text, check_connections=check
        )
    assert seen == ["ldap-to-scim"]
    assert list(tmp_path.iterdir()) == []  # neither the config nor the mapping copy


def interactive_answers(ldap_port: int, scim_url: str, password: str) -> str:
    return (
        "\n".join(
            [
                "7",  # Source Endpoint Type: OpenLDAP
                "dc=example,dc=com",  # base DN
                "",  # no other base DN
                "",  # security: none (default)
                f"127.0.0.1:{ldap_port}",
                "",  # no failover server
                "cn=admin,dc=example,dc=com",
                "3",  # type the password now
                password,
                "3",  # cn=accesslog
                scim_url,
                "",  # SCIM auth: none
                "",  # default mapping
                "",  # pipe name ldap-to-scim
                "yes",  # write
            ]
        )
        + "\n"
    )


def test_interactive_with_piped_answers_offline(tmp_path):
    stdin = interactive_answers(389, "https://scim.example.com/v2/", "typed-secret")
    run = scimsync(
        "--config", str(tmp_path / "sync.yaml"), "create-sync-pipe-config", "--offline", stdin=stdin
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Source Endpoint Type:" in run.stdout and "Configuration summary" in run.stdout
    assert "typed-secret" not in run.stdout + run.stderr
    config = load_config(tmp_path / "sync.yaml")
    server = config.external_servers["source-ds"]
    assert (server.type, server.server_port, server.bind_dn) == (
        "openldap",
        389,
        "cn=admin,dc=example,dc=com",
    )
    assert str(server.password) == "${file:.scimsync/secrets/source-ds-password}"
    secret = tmp_path / ".scimsync" / "secrets" / "source-ds-password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert server.password.resolve() == "typed-secret"
    assert "typed-secret" not in (tmp_path / "sync.yaml").read_text()
    assert config.external_servers["scim"].scim_service_url == "https://scim.example.com/v2"
    assert config.source_of().change_detector == "accesslog"


def test_interactive_stops_when_input_ends(tmp_path):
    run = scimsync(
        "--config",
        str(tmp_path / "sync.yaml"),
        "create-sync-pipe-config",
        "--offline",
        stdin="1\ndc=example,dc=com\n",
    )
    assert run.returncode == 2 and "input ended" in run.stderr
    assert not (tmp_path / "sync.yaml").exists()


def test_wizard_reprompts_and_takes_secret_references(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw.txt").write_text("x")
    answers = iter(
        [
            "42", "", "not a dn", "dc=example,dc=com", "", "2", "ldap.example.com", "", "",  # type, bases, ssl, host
            "1", "missing.txt", "pw.txt",  # password from a file, re-asked until it exists
            "", "ftp://x", "https://scim.example.com/v2", "3", "2", "1BAD", "SCIM_TOKEN",  # bearer token from env
            "", "hr-pipe",
        ]
    )  # fmt: skip
    said: list[str] = []
    wizard = Wizard(
        tmp_path / "sync.yaml",
        ask=lambda prompt: next(answers),
        ask_secret=lambda p: "unused",
        say=said.append,
    )
    result = wizard.run()
    assert result.source_type == "ldap" and result.source_security == "ssl"
    assert result.source_servers == [("ldap.example.com", 636)]
    assert result.source_bind_dn == "cn=Sync User,cn=Root DNs,cn=config"  # Ping's default
    assert result.source_bind_password == "${file:pw.txt}"
    assert result.scim_auth == "bearer" and result.scim_token == "${env:SCIM_TOKEN}"
    assert result.pipe_name == "hr-pipe"
    text = "\n".join(said)
    assert "enter a number from 1 to 9" in text and "missing.txt does not exist" in text
    assert "must start with http:// or https://" in text and "letters, digits and '_' only" in text
    write_pipe_config(tmp_path / "sync.yaml", result, default_mapping=default_mapping_text)
    assert (
        load_config(tmp_path / "sync.yaml").external_servers["source-ds"].url
        == "ldaps://ldap.example.com:636"
    )


# --- against the real servers ----------------------------------------------------------------------


def test_connections_are_tested_against_real_servers(tmp_path, slapd, scim_server):
    args = flags(tmp_path, ldap_port=slapd.port, scim_url=scim_server.url)
    (tmp_path / "bind.pw").write_text(slapd.admin_password + "\n")
    run = scimsync(*args)
    assert run.returncode == 0, run.stderr
    assert (
        load_config(tmp_path / "cfg" / "sync.yaml").external_servers["source-ds"].server_port
        == slapd.port
    )

    (tmp_path / "bind.pw").write_text("wrong-password\n")
    run = scimsync(*args, "--force", "--pipe-name", "other")
    assert run.returncode == 1
    assert (
        "connection test failed" in run.stderr
        and "bind as cn=admin,dc=example,dc=com" in run.stderr
        and "invalid credentials" in run.stderr
    )
    assert "wrong-password" not in run.stderr
    assert list(load_config(tmp_path / "cfg" / "sync.yaml").sync_pipes) == [
        "ldap-to-scim"
    ]  # untouched

    dead = f"http://127.0.0.1:{closed_port()}/v2"
    args = flags(tmp_path, "--force", ldap_port=slapd.port, scim_url=dead)
    (tmp_path / "bind.pw").write_text(slapd.admin_password + "\n")
    run = scimsync(*args)
    assert run.returncode == 1 and "SCIM server scim:" in run.stderr and dead in run.stderr
    assert "LDAP server" not in run.stderr  # the LDAP side passed


def test_interactive_tests_connections(tmp_path, slapd, scim_server):
    stdin = interactive_answers(slapd.port, scim_server.url, slapd.admin_password)
    run = scimsync("--config", str(tmp_path / "sync.yaml"), "create-sync-pipe-config", stdin=stdin)
    assert run.returncode == 0, run.stdout + run.stderr
    assert slapd.admin_password not in run.stdout + run.stderr
    config = load_config(tmp_path / "sync.yaml")
    assert config.external_servers["source-ds"].password.resolve() == slapd.admin_password


def test_refuses_to_overwrite_interactively(tmp_path):
    (tmp_path / "sync.yaml").write_text("# mine\n")
    run = scimsync("--config", str(tmp_path / "sync.yaml"), "create-sync-pipe-config", stdin="\n")
    assert run.returncode == 2 and "already exists" in run.stderr
    assert (tmp_path / "sync.yaml").read_text() == "# mine\n"
    with pytest.raises(ConfigError, match="already exists"):
        write_pipe_config(
            tmp_path / "sync.yaml",
            PipeConfigAnswers(["dc=x"], "http://h/v2"),
            default_mapping=default_mapping_text,
        )
