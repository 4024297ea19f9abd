"""Loading, validating, saving and showing sync.yaml."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from toolkit.config import (
    ConfigError,
    LdapServer,
    Scim2Server,
    load_config,
    load_document,
    save_document,
    validate_file,
)
from toolkit.config.document import dump_document
from toolkit.mapping import DEFAULT_MAPPING_PATH

DATA = Path(__file__).parents[1] / "data" / "config"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A config folder: the example sync.yaml with the default mapping beside it."""
    shutil.copy(DATA / "sync.yaml", tmp_path / "sync.yaml")
    shutil.copy(DEFAULT_MAPPING_PATH, tmp_path / "scim-resources.xml")
    return tmp_path


def edited(folder: Path, change: Callable[[Any], None]) -> Path:
    """The example config with `change` applied to its document."""
    path = folder / "sync.yaml"
    doc = load_document(path)
    change(doc)
    path.write_text(dump_document(doc))
    return path


def problems_of(path: Path) -> list[str]:
    return [str(p) for p in validate_file(path)]


# --- the happy path ----------------------------------------------------------------------------


def test_example_loads_with_defaults_and_typed_values(folder):
    config = load_config(folder / "sync.yaml")
    ds = config.external_servers["source-ds"]
    assert isinstance(ds, LdapServer)
    assert (ds.server_port, ds.connect_timeout, ds.response_timeout) == (389, 5.0, 30.0)
    assert ds.url == "ldap://127.0.0.1:389"
    scim = config.external_servers["scim"]
    assert isinstance(scim, Scim2Server)
    assert scim.response_timeout == 10.0  # Ping's default for scim2
    assert str(scim.oauth_token) == "${file:token.txt}"
    assert scim.oauth_token.base_dir == folder
    assert config.sync_sources["source"].read_connections == 1  # one paged search, as before
    pipe = config.pipe()
    assert pipe.change_detection_polling_interval == 0.5
    assert pipe.failed_op_background_retry_delay == 60.0
    assert (
        pipe.max_operation_attempts,
        pipe.max_failed_op_background_retries,
        pipe.num_worker_threads,
    ) == (5, 5, 4)
    assert pipe.max_deletes.allowed(1000) == 100
    assert [c.name for c in pipe.classes_in_order()] == ["users", "groups", "DEFAULT"]
    users = pipe.sync_classes["users"]
    assert users.destination_correlation_attributes == (("externalId",), ("userName",))
    assert users.synchronize_creates and not pipe.sync_classes["DEFAULT"].synchronize_creates
    assert pipe.sync_classes["DEFAULT"].is_exclusion
    assert pipe.sync_classes["groups"].include_base_dn == ("ou=groups,dc=example,dc=com",)


def test_access_helpers(folder):
    config = load_config(folder / "sync.yaml")
    pipe = config.pipe()
    assert config.pipe("ldap-to-scim") is pipe
    assert config.source_of(pipe).name == "source" == config.source_of("ldap-to-scim").name
    assert config.destination_of(pipe).name == "scim"
    assert [s.name for s in config.servers_of(config.source_of())] == ["source-ds"]
    assert [s.name for s in config.servers_of(config.destination_of())] == ["scim"]
    assert config.mapping_file_of("scim") == folder / "scim-resources.xml"
    assert config.state_dir == folder / ".scimsync"
    with pytest.raises(ConfigError, match="no sync pipe named 'other'"):
        config.pipe("other")


def test_pipe_without_name_needs_a_single_pipe(folder):
    path = edited(
        folder,
        lambda d: d["sync-pipes"].insert(
            1, "second", {"sync-source": "source", "sync-destination": "scim"}
        ),
    )
    config = load_config(path)
    with pytest.raises(ConfigError, match="several sync pipes"):
        config.pipe()
    assert config.pipe("second").sync_classes == {}


def test_destination_without_mapping_file_uses_the_default(folder):
    path = edited(folder, lambda d: d["sync-destinations"]["scim"].pop("resource-mapping-file"))
    assert load_config(path).mapping_file_of("scim") is None


def test_yaml_model_yaml_keeps_comments_and_order(folder, tmp_path):
    original = (folder / "sync.yaml").read_text()
    config = load_config(folder / "sync.yaml")
    save_document(config.document, folder / "copy.yaml")
    assert (folder / "copy.yaml").read_text() == original


def test_effective_config_round_trips_through_yaml(folder):
    config = load_config(folder / "sync.yaml")
    (folder / "effective.yaml").write_text(dump_document(config.to_dict()))
    again = load_config(folder / "effective.yaml")
    assert again.external_servers == config.external_servers
    assert again.sync_sources == config.sync_sources
    assert again.sync_destinations == config.sync_destinations
    assert again.sync_pipes == config.sync_pipes


# --- every validation error ----------------------------------------------------------------------


def _set(*keys: str, value: Any) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


CLASS = ("sync-pipes", "ldap-to-scim", "sync-classes", "users")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _set(*CLASS, "include-filter", value=["(objectClass=inetOrgPerson"]),
            "sync-pipes.ldap-to-scim.sync-classes.users.include-filter: unbalanced parenthesis",
        ),
        (
            _set(*CLASS, "include-filter", value=["(obj class=x)"]),
            "sync-pipes.ldap-to-scim.sync-classes.users.include-filter: invalid attribute description",
        ),
        (
            _set("external-servers", "source-ds", "server-hostname", value="x"),
            "external-servers.source-ds.server-hostname: unknown property (did you mean server-host-name?)",
        ),
        (
            _set("external-servers", "source-ds", "key-manager-provider", value="Null"),
            "external-servers.source-ds.key-manager-provider: PingDataSync property not used by scimsync",
        ),
        (
            _set("sync-sources", "source", "ldif-file", value="x.ldif"),
            "sync-sources.source.ldif-file: not a property of a ldap sync-source",
        ),
        (_set("sync-pipe", value={}), "sync-pipe: unknown section (did you mean sync-pipes?)"),
        (
            _set("external-servers", "source-ds", "server-port", value="abc"),
            "external-servers.source-ds.server-port: expected an integer, got 'abc'",
        ),
        (
            _set("external-servers", "source-ds", "server-port", value=70000),
            "external-servers.source-ds.server-port: must be at most 65535",
        ),
        (
            _set("sync-pipes", "ldap-to-scim", "num-worker-threads", value=0),
            "sync-pipes.ldap-to-scim.num-worker-threads: must be at least 1",
        ),
        (
            _set("sync-pipes", "ldap-to-scim", "started", value="maybe"),
            "sync-pipes.ldap-to-scim.started: expected true or false",
        ),
        (
            _set("external-servers", "source-ds", "bind-dn", value=["cn=a", "cn=b"]),
            "external-servers.source-ds.bind-dn: expected a single value, got a list",
        ),
        (
            _set("external-servers", "source-ds", "connect-timeout", value=5),
            "external-servers.source-ds.connect-timeout: expected a duration with a unit",
        ),
        (
            _set(
                "sync-pipes", "ldap-to-scim", "change-detection-polling-interval", value="5 parsecs"
            ),
            "change-detection-polling-interval: unknown unit 'parsecs'",
        ),
        (
            _set("external-servers", "source-ds", "connection-security", value="tls"),
            "connection-security: invalid value 'tls': expected none | ssl | starttls",
        ),
        (
            _set("sync-pipes", "ldap-to-scim", "max-deletes", value="120%"),
            "sync-pipes.ldap-to-scim.max-deletes: expected a count",
        ),
        (
            _set("external-servers", "scim", "scim-service-url", value="ftp://x"),
            "external-servers.scim.scim-service-url: invalid URL",
        ),
        (
            _set("external-servers", "scim", "page-size", value=0),
            "external-servers.scim.page-size: must be at least 1, got 0",
        ),
        (
            _set("sync-sources", "source", "read-connections", value=0),
            "sync-sources.source.read-connections: must be at least 1, got 0",
        ),
        (
            _set("sync-sources", "source", "server", value=["source-dss"]),
            "sync-sources.source.server: unknown external server 'source-dss' (did you mean source-ds?)",
        ),
        (
            _set("sync-sources", "source", "server", value=["scim"]),
            "sync-sources.source.server: 'scim' is a scim2 server",
        ),
        (
            _set("sync-destinations", "scim", "server", value=["source-ds"]),
            "sync-destinations.scim.server: 'source-ds' is an LDAP server",
        ),
        (
            _set("sync-pipes", "ldap-to-scim", "sync-source", value="sauce"),
            "sync-pipes.ldap-to-scim.sync-source: unknown sync source 'sauce' (did you mean source?)",
        ),
        (
            _set("sync-pipes", "ldap-to-scim", "sync-destination", value="nowhere"),
            "sync-pipes.ldap-to-scim.sync-destination: unknown sync destination 'nowhere'",
        ),
        (
            _set(
                "sync-sources",
                "source",
                "base-dn",
                value=["dc=example,dc=com", "ou=People,DC=Example,DC=com"],
            ),
            "sync-sources.source.base-dn: base DNs must not overlap: 'dc=example,dc=com' and 'ou=People,DC=Example,DC=com'",
        ),
        (
            _set(
                "sync-pipes",
                "ldap-to-scim",
                "sync-classes",
                "groups",
                "evaluation-order-index",
                value=100,
            ),
            "sync-pipes.ldap-to-scim.sync-classes.groups.evaluation-order-index: duplicate evaluation-order-index 100: also used by sync class 'users'",
        ),
        (
            _set(*CLASS, "include-base-dn", value=["ou=people,dc=other,dc=com"]),
            "users.include-base-dn: 'ou=people,dc=other,dc=com' is outside the base DNs",
        ),
        (
            _set(*CLASS, "include-base-dn", value=["ou=people,dc=example,"]),
            "sync-pipes.ldap-to-scim.sync-classes.users.include-base-dn: invalid DN",
        ),
        (
            _set("sync-destinations", "scim", "resource-mapping-file", value="missing.xml"),
            "sync-destinations.scim.resource-mapping-file: file ",
        ),
        (
            _set("external-servers", "source-ds", "password", value="hunter2"),
            "external-servers.source-ds.password: a literal secret is not allowed",
        ),
        (
            _set("external-servers", "scim", "oauth-token", value="${vault:x}"),
            "external-servers.scim.oauth-token: malformed secret reference",
        ),
        (
            _set("external-servers", "scim", "http-authorization-method", value="basic"),
            "external-servers.scim.user-name: required for http-authorization-method basic",
        ),
        (
            _set("external-servers", "source-ds", "trust-ca-file", value="ca.pem"),
            "external-servers.source-ds.trust-ca-file: file ",
        ),
        (
            lambda d: d["external-servers"]["scim"].pop("scim-service-url"),
            "external-servers.scim.scim-service-url: required property is missing",
        ),
        (
            lambda d: d["external-servers"]["source-ds"].pop("password"),
            "external-servers.source-ds.password: required for authentication-method simple",
        ),
        (
            _set(*CLASS, "destination-correlation-attributes", value=["externalId,,uid"]),
            "destination-correlation-attributes: invalid correlation attribute list",
        ),
    ],
)
def test_each_validation_error(folder, change, expected):
    problems = problems_of(edited(folder, change))
    assert any(expected in p for p in problems), problems
    with pytest.raises(ConfigError) as info:
        load_config(folder / "sync.yaml")
    assert expected in str(info.value)


def test_literal_secret_is_never_echoed(folder):
    path = edited(folder, _set("external-servers", "source-ds", "password", value="hunter2"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "hunter2" not in str(info.value)


def test_mapping_file_that_does_not_validate(folder):
    (folder / "scim-resources.xml").write_text("<resources>\n  <resource name='x'>\n</resources>\n")
    problems = problems_of(folder / "sync.yaml")
    assert any(
        p.startswith("sync-destinations.scim.resource-mapping-file: ")
        and "scim-resources.xml:3:" in p
        for p in problems
    ), problems


def test_inline_list_splits_an_unquoted_dn(folder):
    text = (
        (folder / "sync.yaml")
        .read_text()
        .replace('base-dn: ["dc=example,dc=com"]', "base-dn: [dc=example,dc=com]")
    )
    (folder / "sync.yaml").write_text(text)
    problems = problems_of(folder / "sync.yaml")
    assert any(
        p.startswith("sync-sources.source.base-dn: YAML splits an inline [...] list at commas")
        for p in problems
    ), problems
    block = text.replace("base-dn: [dc=example,dc=com]", "base-dn:\n      - dc=example,dc=com")
    (folder / "sync.yaml").write_text(block)
    assert problems_of(folder / "sync.yaml") == []


def test_all_problems_at_once_with_lines(folder):
    def change(doc: Any) -> None:
        doc["external-servers"]["source-ds"]["server-port"] = "abc"
        doc["sync-pipes"]["ldap-to-scim"]["sync-classes"]["users"]["include-filter"] = ["(cn=a"]
        doc["sync-sources"]["source"]["server"] = ["nope"]

    path = edited(folder, change)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 3
    lines = path.read_text().splitlines()
    for problem in info.value.problems:
        assert problem.line is not None
        key = problem.path.rsplit(".", 1)[1]
        assert lines[problem.line - 1].strip().startswith(key + ":"), (
            problem,
            lines[problem.line - 1],
        )
    message = str(info.value)
    assert f"{path}: 3 configuration problems" in message
    assert f"{path}:6: external-servers.source-ds.server-port: expected an integer" in message


def test_yaml_syntax_error_names_the_line(folder):
    (folder / "sync.yaml").write_text("external-servers:\n  a: [unclosed\nsync-pipes: {}\n")
    problems = validate_file(folder / "sync.yaml")
    assert len(problems) == 1 and problems[0].message.startswith("invalid YAML")
    assert problems[0].line in (2, 3, 4)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_save_refuses_a_literal_secret(folder):
    doc = load_document(folder / "sync.yaml")
    doc["external-servers"]["scim"]["oauth-token"] = "abc123"
    before = (folder / "sync.yaml").read_text()
    with pytest.raises(
        ConfigError, match="external-servers.scim.oauth-token: a literal secret is not written"
    ) as info:
        save_document(doc, folder / "sync.yaml")
    assert "abc123" not in str(info.value)
    assert (folder / "sync.yaml").read_text() == before


def test_empty_file_is_an_empty_valid_config(tmp_path):
    (tmp_path / "sync.yaml").write_text("# nothing yet\n")
    config = load_config(tmp_path / "sync.yaml")
    assert config.sync_pipes == {}
    with pytest.raises(ConfigError, match="no sync pipe is configured"):
        config.pipe()


# --- the CLI --------------------------------------------------------------------------------------


def scimsync(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        cwd=cwd,
        timeout=120,
    )


def test_scim_page_size_is_optional_and_reaches_the_endpoint(folder):
    from toolkit.scim.fromconfig import destination_endpoint

    (folder / "token.txt").write_text("a-token\n")  # the example's bearer token secret
    config = load_config(folder / "sync.yaml")
    assert config.external_servers["scim"].page_size is None
    assert "page-size" not in config.to_dict()["external-servers"]["scim"]
    assert destination_endpoint(config, config.pipe()).page_size == 0  # chosen per read
    path = edited(folder, _set("external-servers", "scim", "page-size", value=500))
    config = load_config(path)
    assert config.external_servers["scim"].page_size == 500
    assert config.to_dict()["external-servers"]["scim"]["page-size"] == 500
    assert destination_endpoint(config, config.pipe()).page_size == 500


def test_config_show_never_prints_a_secret(folder):
    (folder / "token.txt").write_text("file-secret-value\n")
    env = {"SCIMSYNC_SOURCE_PASSWORD": "env-secret-value"}
    for extra in ([], ["--json"]):
        run = scimsync("--config", str(folder / "sync.yaml"), "config", "show", *extra, env=env)
        assert run.returncode == 0, run.stderr
        out = run.stdout + run.stderr
        assert "env-secret-value" not in out and "file-secret-value" not in out
        assert "${env:SCIMSYNC_SOURCE_PASSWORD}" in out and "${file:token.txt}" in out
    data = json.loads(run.stdout)
    assert data["sync-pipes"]["ldap-to-scim"]["max-operation-attempts"] == 5
    assert data["external-servers"]["scim"]["response-timeout"] == "10 s"


def test_config_validate_cli(folder):
    # no directory to ask (its password is not even set): valid as a file, and said to be unchecked
    run = scimsync("--config", str(folder / "sync.yaml"), "config", "validate")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(
        "valid, but the mapping was NOT checked against the directory's schema"
    )
    assert "SCIMSYNC_SOURCE_PASSWORD is not set" in run.stderr
    run = scimsync("--config", str(folder / "sync.yaml"), "config", "validate", "--offline")
    assert run.returncode == 0 and "NOT checked" in run.stdout and "--offline" in run.stderr
    edited(folder, _set(*CLASS, "include-filter", value=["(cn=a"]))
    run = scimsync("config", "validate", env={"SCIMSYNC_CONFIG": str(folder / "sync.yaml")})
    assert run.returncode == 2
    assert (
        "sync-pipes.ldap-to-scim.sync-classes.users.include-filter: unbalanced parenthesis"
        in run.stdout
    )
    run = scimsync("--config", str(folder / "sync.yaml"), "config", "show")
    assert run.returncode == 2 and "unbalanced parenthesis" in run.stderr
