"""`scimsync dsconfig`: verbs, property modifiers, batch files and the Ping import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.config import ConfigError, load_config, load_document
from toolkit.config.dsconfig import batch_commands, run_batch, run_batch_file, run_dsconfig
from toolkit.mapping import DEFAULT_MAPPING_PATH

DATA = Path(__file__).parents[1] / "data" / "config"
SECTION4 = DATA / "ping-section4.dsconfig"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copy(DATA / "sync.yaml", tmp_path / "sync.yaml")
    shutil.copy(DEFAULT_MAPPING_PATH, tmp_path / "scim-resources.xml")
    return tmp_path / "sync.yaml"


def scimsync(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def ds(path: Path, command: str) -> list[str]:
    """Run one command written as on a shell line; returns the warnings."""
    import shlex

    return run_dsconfig(path, shlex.split(command)).warnings


# --- the reference sequence --------------------------------------------------------------------


def test_reference_section4_sequence_imports(tmp_path):
    path = tmp_path / "sync.yaml"
    result = run_batch_file(path, SECTION4)
    warnings = "\n".join(result.warnings)
    name = str(SECTION4)
    # SCIM 1.1 becomes SCIM 2.0, for the server and for the destination
    assert f"{name}:5: --type scim (SCIM 1.1) became scim2" in warnings
    assert f"{name}:11: --type scim (SCIM 1.1) became scim2" in warnings
    # options that only make sense inside PingDataSync: one warning each
    for line, option in (
        (1, "key-manager-provider"),
        (1, "trust-manager-provider"),
        (5, "trust-manager-provider"),
        (9, "use-changelog-batch-request"),
    ):
        assert f"{name}:{line}: ignored {option}" in warnings
    assert f"{name}:5: ignored connection-security of external server 'scim'" in warnings
    # literal passwords become environment references, and the warning names the variable
    assert "set the environment variable SCIMSYNC_SOURCE_DS_PASSWORD" in warnings
    assert "set the environment variable SCIMSYNC_SCIM_PASSWORD" in warnings
    assert "secret" not in path.read_text().replace(
        "${env:", ""
    )  # the literal never reaches the file
    # a destination without a mapping file uses the default mapping
    assert (
        f"{name}:11: sync destination 'scim' has no resource-mapping-file: the built-in default"
        in warnings
    )
    # other PingDataSync tools in the sequence are skipped, not failed
    for line, tool in (
        (19, "prepare-endpoint-server"),
        (22, "realtime-sync"),
        (23, "resync"),
        (24, "realtime-sync"),
    ):
        assert f"{name}:{line}: skipped {tool}: not a dsconfig command" in warnings
    # Ping's sequence sets the class indexes later ("+ set-sync-class-prop ..."): both default to 9999
    assert (
        "the config is not valid yet" in warnings
        and "group.evaluation-order-index: duplicate evaluation-order-index 9999" in warnings
    )
    assert len(result.warnings) == 16

    doc = load_document(path)
    ds_server = doc["external-servers"]["source-ds"]
    assert dict(ds_server) == {
        "type": "ping-identity-ds",
        "server-host-name": "ds1.example.com",
        "server-port": 636,
        "bind-dn": "cn=Directory Manager",
        "password": "${env:SCIMSYNC_SOURCE_DS_PASSWORD}",
        "connection-security": "ssl",
    }
    scim = doc["external-servers"]["scim"]
    assert scim["type"] == "scim2"
    assert scim["scim-service-url"] == "https://scim1.example.com:8443"  # kept as is, no path added
    assert scim["http-authorization-method"] == "basic"
    assert scim["user-name"] == "cn=Sync User,cn=Root DNs,cn=config"
    assert doc["sync-sources"]["source"]["type"] == "ldap"  # from --type ping-identity
    assert list(doc["sync-sources"]["source"]["base-dn"]) == ["dc=example,dc=com"]
    assert "resource-mapping-file" not in doc["sync-destinations"]["scim"]
    assert list(doc["sync-pipes"]["ldap-to-scim"]["sync-classes"]) == ["user", "group", "DEFAULT"]

    # finishing the sequence as Ping's documentation does makes it valid
    run_batch(
        path,
        "dsconfig set-sync-class-prop --pipe-name ldap-to-scim --class-name user \\\n"
        "  --set evaluation-order-index:100 --add include-base-dn:ou=people,dc=example,dc=com \\\n"
        "  --set include-filter:(objectClass=inetOrgPerson) --set destination-correlation-attributes:externalId\n"
        "dsconfig set-sync-class-prop --pipe-name ldap-to-scim --class-name group --set evaluation-order-index:200\n",
    )
    config = load_config(path)
    assert [c.name for c in config.pipe().classes_in_order()] == ["user", "group", "DEFAULT"]
    assert config.mapping_file_of(config.destination_of()) is None
    assert config.external_servers["source-ds"].url == "ldaps://ds1.example.com:636"


# --- verbs -------------------------------------------------------------------------------------


def test_create_get_list_delete(config):
    ds(
        config,
        "create-external-server --server-name ds2 --type 389-ds --set server-host-name:ds2.example.com "
        "--set 'bind-dn:cn=Directory Manager' --set 'password:${file:ds2.pw}' --set connection-security:starttls",
    )
    out = run_dsconfig(config, ["get-external-server-prop", "--server-name", "ds2"]).output
    assert out[0].split() == ["Property", ":", "Value(s)"]
    rows = {line.split(" : ")[0].strip(): line.split(" : ")[1].strip() for line in out[2:]}
    assert rows["server-host-name"] == "ds2.example.com"
    assert rows["password"] == "${file:ds2.pw}"
    assert rows["connect-timeout"] == "5 s"  # defaults are shown
    assert rows["server-port"] == "389 (636 with ssl)"
    out = run_dsconfig(
        config, ["get-external-server-prop", "--server-name", "ds2", "--property", "bind-dn"]
    ).output
    assert [line.split(" : ") for line in out[2:]] == [["bind-dn ", "cn=Directory Manager"]]
    out = run_dsconfig(config, ["list-external-servers"]).output
    assert [line.split(" : ")[0].strip() for line in out[2:]] == ["source-ds", "scim", "ds2"]
    assert out[4].split(" : ")[1].strip() == "389-ds"
    ds(config, "set-sync-source-prop --source-name source --add server:ds2")
    assert load_config(config).sync_sources["source"].server == ("source-ds", "ds2")
    with pytest.raises(
        ConfigError,
        match=r"cannot delete external server 'ds2': used by sync-sources\.source\.server",
    ):
        ds(config, "delete-external-server --server-name ds2")
    ds(config, "set-sync-source-prop --source-name source --remove server:ds2")
    ds(config, "delete-external-server --server-name ds2")
    assert "ds2" not in load_document(config)["external-servers"]
    out = run_dsconfig(config, ["list-sync-pipes"]).output
    assert out[2].split() == ["ldap-to-scim", ":", "source", ":", "scim"]


def test_sync_classes(config):
    ds(
        config,
        "create-sync-class --pipe-name ldap-to-scim --class-name admins --set evaluation-order-index:50 "
        "--set include-base-dn:ou=admins,dc=example,dc=com --set 'include-filter:(objectClass=person)' "
        "--set 'include-filter:(uid=admin*)' --set destination-correlation-attributes:userName,emails.value --set synchronize-deletes:false",
    )
    cls = load_config(config).pipe().sync_classes["admins"]
    assert cls.evaluation_order_index == 50
    assert cls.include_filter == (
        "(objectClass=person)",
        "(uid=admin*)",
    )  # --set repeated: multi-valued
    assert cls.destination_correlation_attributes == (("userName", "emails.value"),)
    assert cls.synchronize_deletes is False and cls.synchronize_creates is True
    assert load_config(config).pipe().classes_in_order()[0].name == "admins"
    out = run_dsconfig(config, ["list-sync-classes", "--pipe-name", "ldap-to-scim"]).output
    assert out[2].split(" : ")[0].strip() == "users" and out[-1].split(" : ")[1].strip() == "50"
    ds(config, "delete-sync-class --pipe-name ldap-to-scim --class-name admins")
    assert "admins" not in load_config(config).pipe().sync_classes
    with pytest.raises(
        ConfigError, match="unknown sync pipe 'ldap-to-scm' \\(did you mean ldap-to-scim\\?\\)"
    ):
        ds(config, "create-sync-class --pipe-name ldap-to-scm --class-name x")


def test_set_add_remove_reset(config):
    ds(
        config,
        "set-sync-pipe-prop --pipe-name ldap-to-scim --set num-worker-threads:8 --set 'change-detection-polling-interval:5 s' --set max-deletes:250",
    )
    pipe = load_config(config).pipe()
    assert (
        pipe.num_worker_threads,
        pipe.change_detection_polling_interval,
        pipe.max_deletes.allowed(10**6),
    ) == (8, 5.0, 250)
    assert (
        load_document(config)["sync-pipes"]["ldap-to-scim"]["num-worker-threads"] == 8
    )  # stored as a number
    ds(
        config,
        "set-sync-pipe-prop --pipe-name ldap-to-scim --reset num-worker-threads --reset max-deletes",
    )
    pipe = load_config(config).pipe()
    assert pipe.num_worker_threads == 4 and str(pipe.max_deletes) == "10%"
    assert "num-worker-threads" not in load_document(config)["sync-pipes"]["ldap-to-scim"]

    cls = "set-sync-class-prop --pipe-name ldap-to-scim --class-name users"
    ds(config, f"{cls} --add 'include-filter:(!(nsAccountLock=TRUE))'")
    assert load_config(config).pipe().sync_classes["users"].include_filter == (
        "(objectClass=inetOrgPerson)",
        "(!(nsAccountLock=TRUE))",
    )
    ds(config, f"{cls} --remove 'include-filter:(objectClass=inetOrgPerson)'")
    assert load_config(config).pipe().sync_classes["users"].include_filter == (
        "(!(nsAccountLock=TRUE))",
    )
    ds(
        config,
        f"{cls} --set destination-correlation-attributes:uid --add destination-correlation-attributes:mail",
    )
    assert load_config(config).pipe().sync_classes["users"].destination_correlation_attributes == (
        ("uid",),
        ("mail",),
    )
    assert (
        "already has the value 'mail'"
        in ds(config, f"{cls} --add destination-correlation-attributes:mail")[0]
    )
    with pytest.raises(ConfigError, match="does not have the value 'nope'"):
        ds(config, f"{cls} --remove destination-correlation-attributes:nope")
    with pytest.raises(ConfigError, match="single-valued: use --set"):
        ds(config, f"{cls} --add evaluation-order-index:5")
    with pytest.raises(ConfigError, match="single-valued but --set twice"):
        ds(config, f"{cls} --set evaluation-order-index:5 --set evaluation-order-index:6")
    ds(config, f"{cls} --reset include-filter")
    assert load_config(config).pipe().sync_classes["users"].include_filter == ()


def test_values_are_checked_before_writing(config):
    before = config.read_text()
    cls = "set-sync-class-prop --pipe-name ldap-to-scim --class-name users"
    cases = [
        (
            f"{cls} --set 'include-filter:(cn=a'",
            "sync-pipes.ldap-to-scim.sync-classes.users.include-filter: unbalanced parenthesis",
        ),
        (
            f"{cls} --set evaluation-order-index:first",
            "evaluation-order-index: expected an integer",
        ),
        (
            "set-external-server-prop --server-name source-ds --set connect-timeout:5",
            "connect-timeout: expected a duration with a unit",
        ),
        (
            "set-external-server-prop --server-name source-ds --set server-hostname:x",
            "unknown property 'server-hostname' for external server 'source-ds' (did you mean server-host-name?)",
        ),
        (
            "set-sync-source-prop --source-name source --set server:nope",
            "sync-sources.source.server: unknown external server 'nope'",
        ),
        (
            "set-sync-pipe-prop --pipe-name ldap-to-scim --set sync-source:x",
            "unknown sync source 'x'",
        ),
        (
            "set-sync-source-prop --source-name sauce --set page-size:5",
            "unknown sync source 'sauce' (did you mean source?)",
        ),
        (
            "create-external-server --server-name x --type jdbc",
            "external server type 'jdbc' is not supported",
        ),
        ("create-external-server --server-name x", "create-external-server needs --type"),
        (
            "create-sync-destination --destination-name d --type ldap",
            "scimsync synchronizes to scim2 only",
        ),
        (
            "create-sync-source --source-name source --set base-dn:o=x",
            "sync source 'source' already exists",
        ),
        ("set-sync-source-prop --source-name source --set type:ldif", "the type cannot be changed"),
        (
            "create-sync-clas --pipe-name ldap-to-scim --class-name x",
            "unknown dsconfig verb 'create-sync-clas' (did you mean create-sync-class?)",
        ),
        ("set-sync-pipe-prop --pipe-name ldap-to-scim --bogus", "unknown option '--bogus'"),
        ("set-sync-pipe-prop --pipe-name ldap-to-scim --set started", "expected PROPERTY:VALUE"),
        ("delete-sync-source --source-name source", "used by sync-pipes.ldap-to-scim.sync-source"),
    ]
    for command, message in cases:
        with pytest.raises(ConfigError) as info:
            ds(config, command)
        assert message in str(info.value), command
    assert config.read_text() == before


def test_literal_secret_becomes_an_env_reference(config):
    warnings = ds(
        config,
        "set-external-server-prop --server-name scim --set http-authorization-method:oauth2 "
        "--set oauth-server-token-endpoint-url:https://idp.example.com/token --set oauth-client-id:sync "
        "--set oauth-client-secret:s3cr3t-value",
    )
    assert any(
        "set the environment variable SCIMSYNC_SCIM_OAUTH_CLIENT_SECRET" in w for w in warnings
    )
    assert not any("s3cr3t-value" in w for w in warnings)
    assert "s3cr3t-value" not in config.read_text()
    server = load_config(config).external_servers["scim"]
    assert str(server.oauth_client_secret) == "${env:SCIMSYNC_SCIM_OAUTH_CLIENT_SECRET}"
    ds(
        config,
        "set-external-server-prop --server-name scim --set 'oauth-client-secret:${file:client.secret}'",
    )
    assert (
        str(load_config(config).external_servers["scim"].oauth_client_secret)
        == "${file:client.secret}"
    )


def test_edits_keep_comments_and_order(config):
    before = config.read_text()
    ds(config, "set-external-server-prop --server-name source-ds --set server-port:1389")
    ds(
        config,
        "set-sync-class-prop --pipe-name ldap-to-scim --class-name groups --add include-base-dn:ou=teams,dc=example,dc=com",
    )
    after = config.read_text()
    assert after == before.replace("server-port: 389", "server-port: 1389").replace(
        "          - ou=groups,dc=example,dc=com\n",
        "          - ou=groups,dc=example,dc=com\n          - ou=teams,dc=example,dc=com\n",
    )
    ds(config, "create-sync-source --source-name dump --type ldif --set ldif-file:export.ldif")
    text = config.read_text()
    assert text.startswith(
        before.split("sync-destinations:")[0].replace("server-port: 389", "server-port: 1389")
    )
    assert (
        "# nothing else leaks through" in text
        and "# a failover SCIM server would follow here" in text
    )
    assert text.index("dump:") < text.index(
        "sync-destinations:"
    )  # new objects go into their section


def test_ping_only_verbs_and_connection_options(config):
    result = run_batch(
        config,
        "dsconfig set-global-sync-configuration-prop --set started:true\n"
        "dsconfig create-attribute-map --map-name m --hostname sync1 --port 389 --bindDN cn=x --bindPassword pw --no-prompt\n"
        "dsconfig set-sync-pipe-prop --pipe-name ldap-to-scim --set started:true --applyChangeTo single-server -X -n\n",
        "ping.dsconfig",
    )
    assert (
        result.warnings[0]
        == "ping.dsconfig:1: skipped set-global-sync-configuration-prop: scimsync has no such PingDataSync objects"
    )
    assert (
        result.warnings[1]
        == "ping.dsconfig:2: skipped create-attribute-map: scimsync has no such PingDataSync objects"
    )
    assert result.warnings[2].startswith(
        "ping.dsconfig:3: ignored --applyChangeTo (and other connection options)"
    )
    assert load_config(config).pipe().started is True


# --- batch files -------------------------------------------------------------------------------


def test_batch_file_syntax():
    text = (
        "# a comment\n"
        "\n"
        "dsconfig create-sync-pipe --pipe-name p \\\n"
        "    --set sync-source:s   # trailing comment\n"
        "   # indented comment\n"
        "set-sync-pipe-prop --pipe-name p --set 'change-detection-polling-interval:5 s' --set \"x:a#b\"\n"
    )
    assert batch_commands(text) == [
        (3, ["dsconfig", "create-sync-pipe", "--pipe-name", "p", "--set", "sync-source:s"]),
        (
            6,
            [
                "set-sync-pipe-prop",
                "--pipe-name",
                "p",
                "--set",
                "change-detection-polling-interval:5 s",
                "--set",
                "x:a#b",
            ],
        ),
    ]


def test_batch_errors_name_the_line_and_write_nothing(config, tmp_path):
    before = config.read_text()
    batch = tmp_path / "changes.dsconfig"
    batch.write_text(
        "dsconfig set-sync-pipe-prop --pipe-name ldap-to-scim --set num-worker-threads:2\n"
        "# comment\n"
        "dsconfig set-sync-class-prop --pipe-name ldap-to-scim \\\n"
        "   --class-name users \\\n"
        "   --set 'include-filter:(objectClass=inetOrgPerson'\n"
    )
    with pytest.raises(ConfigError) as info:
        run_batch_file(config, batch)
    assert str(info.value).startswith(
        f"{batch}:3: sync-pipes.ldap-to-scim.sync-classes.users.include-filter: unbalanced parenthesis"
    )
    assert config.read_text() == before
    batch.write_text("dsconfig set-sync-pipe-prop --pipe-name ldap-to-scim --set 'started:true\n")
    with pytest.raises(
        ConfigError, match=f"{batch}:1: cannot read the command: No closing quotation"
    ):
        run_batch_file(config, batch)
    batch.write_text("\n\ndsconfig frobnicate-things\n")
    with pytest.raises(ConfigError, match=f"{batch}:3: unknown dsconfig verb 'frobnicate-things'"):
        run_batch_file(config, batch)


# --- the command line ----------------------------------------------------------------------------


def test_dsconfig_cli(config, tmp_path):
    base = ["--config", str(config), "dsconfig"]
    run = scimsync(
        *base,
        "set-sync-pipe-prop",
        "--pipe-name",
        "ldap-to-scim",
        "--set",
        "max-rate-per-second:100",
        "--no-prompt",
    )
    assert run.returncode == 0, run.stderr
    assert load_config(config).pipe().max_rate_per_second == 100
    run = scimsync(
        *base,
        "get-sync-pipe-prop",
        "--pipe-name",
        "ldap-to-scim",
        "--property",
        "max-rate-per-second",
    )
    assert run.stdout.splitlines()[2] == "max-rate-per-second : 100"
    run = scimsync(*base, "--batch-file", str(SECTION4), env={}, cwd=tmp_path)
    assert run.returncode == 2 and "external server 'source-ds' already exists" in run.stderr
    fresh = tmp_path / "fresh.yaml"
    run = scimsync("--config", str(fresh), "dsconfig", "--no-prompt", "--batch-file", str(SECTION4))
    assert run.returncode == 0, run.stderr
    assert "scimsync: warning: " in run.stderr and "SCIMSYNC_SOURCE_DS_PASSWORD" in run.stderr
    run = scimsync(*base, "--help")
    assert run.returncode == 0 and "create-sync-class" in run.stdout
    run = scimsync(*base, "list-sync-pipes", "--hostname", "x")
    assert run.returncode == 0 and "ldap-to-scim" in run.stdout
    run = scimsync("--config", str(tmp_path / "none.yaml"), "dsconfig", "list-sync-pipes")
    assert run.returncode == 2 and "config file not found" in run.stderr
