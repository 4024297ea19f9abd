"""Every run checks its mapping against the source directory's schema before reading or
sending anything (real slapd and scim2-server): a mapping typo is refused by dry-run, resync,
realtime and prepare-endpoint-server with the file, line, resource and attribute, and the
SCIM server keeps every value; a schema the sync user cannot read only warns."""

from __future__ import annotations

import logging

import pytest

from tests.support.plan_env import SUFFIX, make_env
from toolkit.lab.slapd import Slapd
from toolkit.mapping import default_mapping_text

TITLE = '<mapping ldapAttribute="title"/>'
TYPO = '<mapping ldapAttribute="noSuchAttrXyz"/>'


def use_mapping(env, old: str, new: str) -> str:
    """The default mapping with `old` replaced, as the pipe's mapping file; its path."""
    text = default_mapping_text(SUFFIX)
    assert old in text
    path = env.folder / "mapping.xml"
    path.write_text(text.replace(old, new, 1))
    config = env.config_path.read_text()
    if "resource-mapping-file" not in config:
        env.config_path.write_text(
            config.replace(
                "    server: [test-scim]\n",
                "    server: [test-scim]\n    resource-mapping-file: mapping.xml\n",
            )
        )
    return str(path)


# (command, exit code, where the message is: "err" for an error, "out" for a checklist)
COMMANDS = [
    (["dry-run"], 2, "err"),
    (["dry-run", "--json"], 2, "err"),
    (["resync"], 2, "err"),
    (["resync", "--allow-deletes"], 2, "err"),
    (["realtime-sync", "start", "--foreground", "--until-idle"], 2, "err"),
    (["prepare-endpoint-server", "--server-name", "test-ldap"], 1, "out"),
]


def test_every_run_refuses_a_mapping_typo_and_scim_keeps_its_values(slapd, scim_server, tmp_path):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    try:
        assert env.cli_json("resync")["failed"] == 0
        before = env.snapshot()
        titled = [u for u in before["users"] if u.get("title")]
        assert len(titled) == len(before["users"])  # every sample user has a title
        mapping = use_mapping(env, TITLE, TYPO)
        line = next(n for n, text in enumerate(open(mapping), 1) if "noSuchAttrXyz" in text)
        expected = (
            f"{mapping}:{line}: resource 'User', attribute 'title': LDAP attribute "
            "'noSuchAttrXyz' is not defined in the directory's schema"
        )
        for command, code, stream in COMMANDS:
            result = env.cli(*command)
            assert result.code == code, (command, result.out, result.err)
            assert expected in getattr(result, stream), (command, result.out, result.err)
            assert "Traceback" not in result.err
        assert env.snapshot() == before  # nothing written, not a title removed
        # the same mapping with the attribute spelt right runs, and finds nothing to change
        use_mapping(env, TITLE, TITLE)
        assert env.cli_json("dry-run")["totals"]["unchanged"] == len(before["users"]) + 2
    finally:
        env.close()


def test_a_schema_the_sync_user_cannot_read_warns_and_the_run_goes_on(
    scim_server, tmp_path, caplog
):
    hidden = Slapd(tmp_path / "slapd").create()
    conf = hidden.conf.read_text()
    hidden.conf.write_text(
        conf.replace(
            "database  mdb", 'access to dn.base="cn=Subschema" by * none\n\ndatabase  mdb', 1
        )
    )
    hidden.start()
    env = make_env(hidden, scim_server, tmp_path / "pipe", users=5, groups=1)
    try:
        use_mapping(env, TITLE, TYPO)
        with caplog.at_level(logging.WARNING):
            dry = env.cli_json("dry-run")
        assert dry["totals"]["create"] == 6
        assert "the mapping was not checked against the directory's schema" in caplog.text
        assert "no attribute types" in caplog.text
        validate = env.cli("config", "validate")
        assert validate.code == 0
        assert "valid, but the mapping was NOT checked" in validate.out
        assert "no attribute types" in validate.err
        prepare = env.cli("prepare-endpoint-server", "--server-name", "test-ldap")
        assert prepare.code == 1
        assert "FAIL  mapped attributes in the schema: cannot read the schema" in prepare.out
    finally:
        env.close()
        hidden.stop()


@pytest.mark.parametrize("command", [["dry-run"], ["config", "validate"]])
def test_default_mapping_passes_on_the_lab_slapd(slapd, scim_server, tmp_path, command, caplog):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=3, groups=1)
    try:
        with caplog.at_level(logging.WARNING):
            result = env.cli(*command)
        assert result.code == 0, result.err
        assert "NOT checked" not in result.out and "not checked" not in result.err
        assert "not checked" not in caplog.text
    finally:
        env.close()
