"""`scimsync config validate` refuses what a run would refuse: mapping attributes the directory's
schema lacks (read from the real slapd and 389-DS), unknown transformation classes, a config
that configures nothing; and says so when it could not ask the directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.plan_env import SUFFIX, run_cli
from toolkit.lab.dirsrv import DirSrv
from toolkit.lab.syncyaml import default_classes, write_pipe_config
from toolkit.mapping import default_mapping_text

TITLE = '<mapping ldapAttribute="title"/>'
ID_MAPPING = '<resourceIDMapping ldapAttribute="entryUUID" createdBy="directory"/>'
UNKNOWN_CLASS = "com.example.NoSuchTransformation"


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def pipe_folder(server, folder: Path, mapping_edit: tuple[str, str] | None, **options) -> Path:
    """A pipe config for `server`, its mapping (the default one) edited by (old, new)."""
    folder.mkdir(parents=True, exist_ok=True)
    props = {}
    if mapping_edit is not None:
        text = default_mapping_text(SUFFIX)
        old, new = mapping_edit
        assert old in text
        (folder / "mapping.xml").write_text(text.replace(old, new, 1))
        props = {"resource-mapping-file": "mapping.xml"}
    return write_pipe_config(
        folder / "sync.yaml",
        server,
        "http://127.0.0.1:9/v2",  # never contacted by validate
        prefix="test",
        ldap_type="389-ds" if isinstance(server, DirSrv) else "openldap",
        destination_props=props,
        **options,
    )


# (case, mapping edit, exit code, what stdout must hold: FILE and LINE filled in by the test)
CASES = [
    ("default mapping", None, 0, ["{config}: valid"]),
    ("unedited file", (TITLE, TITLE), 0, ["{config}: valid"]),
    (
        "misspelt attribute",
        (TITLE, '<mapping ldapAttribute="noSuchAttrXyz"/>'),
        2,
        [
            "{mapping}:{line}: resource 'User', attribute 'title': LDAP attribute "
            "'noSuchAttrXyz' is not defined in the directory's schema"
        ],
    ),
    (
        "near miss gets a suggestion",
        (TITLE, '<mapping ldapAttribute="titel"/>'),
        2,
        ["{mapping}:{line}: resource 'User', attribute 'title'", "(did you mean title?)"],
    ),
    (
        "misspelt resourceIDMapping",
        (ID_MAPPING, ID_MAPPING.replace("entryUUID", "entryUUIDx")),
        2,
        ["{mapping}:{line}: resource 'User', resourceIDMapping: LDAP attribute 'entryUUIDx'"],
    ),
    ("other case and an alias", (TITLE, '<mapping ldapAttribute="TITLE"/>'), 0, ["valid"]),
    ("attribute options", (TITLE, '<mapping ldapAttribute="title;lang-en"/>'), 0, ["valid"]),
    ("by OID", (TITLE, '<mapping ldapAttribute="2.5.4.12"/>'), 0, ["valid"]),
    ("the entry's DN", (TITLE, '<mapping ldapAttribute="dn"/>'), 0, ["valid"]),
    (
        "unknown transformation class",
        (TITLE, f'<mapping ldapAttribute="title" transform="{UNKNOWN_CLASS}"/>'),
        2,
        [
            "sync-destinations.test-scim.resource-mapping-file: {mapping}:{line}: "
            f"attribute 'title': unknown transformation class '{UNKNOWN_CLASS}'"
        ],
    ),
]


@pytest.mark.parametrize(("case", "edit", "code", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["slapd", "dirsrv"])
def test_validate_checks_the_mapping_against_the_directory(
    request, tmp_path, kind, case, edit, code, expected
):
    server = request.getfixturevalue(kind)
    config = pipe_folder(server, tmp_path / "pipe", edit)
    mapping = tmp_path / "pipe" / "mapping.xml"
    line = line_of(mapping, edit[1]) if edit else 0
    result = run_cli(config, "config", "validate")
    assert result.code == code, (result.out, result.err)
    for text in expected:
        text = text.format(config=config, mapping=mapping, line=line)
        assert text in result.out, (text, result.out)
    if code == 0:
        assert "NOT checked" not in result.out and not result.err, result.err
    else:
        assert f"{config}: valid" not in result.out
        assert f"{config}: 1 problem(s)" in result.err


def test_validate_refuses_the_unknown_class_exactly_as_a_run_does(slapd, tmp_path):
    edit = (TITLE, f'<mapping ldapAttribute="title" transform="{UNKNOWN_CLASS}"/>')
    config = pipe_folder(slapd, tmp_path / "pipe", edit)
    validate = run_cli(config, "config", "validate", "--offline")
    run = run_cli(config, "dry-run")
    assert (validate.code, run.code) == (2, 2)
    run_message = run.err.removeprefix("scimsync: error: ").strip()
    assert run_message in validate.out  # the very message the run gives, with file and line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{config}:1: the config file configures nothing (no sync pipe, no server)"),
        ("# only a comment\n", "{config}:1: the config file configures nothing"),
        ("sync-pipes: {}\nsync-sources: {}\n", "{config}:1: the config file configures nothing"),
        (
            "external-servers:\n  ds:\n    type: ldap\n    server-host-name: h\n"
            "    authentication-method: none\n",
            "{config}: sync-pipes: no sync pipe is configured",
        ),
    ],
    ids=["empty", "comment only", "empty sections", "no pipe"],
)
def test_validate_refuses_a_config_that_configures_no_pipe(tmp_path, text, message):
    config = tmp_path / "sync.yaml"
    config.write_text(text)
    result = run_cli(config, "config", "validate")
    assert result.code == 2, result.out
    assert message.format(config=config) in result.out
    assert f"{config}: valid" not in result.out


def test_validate_says_when_it_could_not_ask_the_directory(slapd, tmp_path):
    edit = (TITLE, '<mapping ldapAttribute="noSuchAttrXyz"/>')
    config = pipe_folder(slapd, tmp_path / "pipe", edit)
    slapd.stop()
    try:
        result = run_cli(config, "config", "validate")
    finally:
        slapd.start()
    assert result.code == 0, result.out
    assert result.out.strip() == (
        f"{config}: valid, but the mapping was NOT checked against the directory's schema"
    )
    assert "the mapping was not checked against the schema of sync source test-source" in (
        result.err
    )
    assert "cannot connect" in result.err or "no LDAP server answered" in result.err
    offline = run_cli(config, "config", "validate", "--offline")
    assert offline.code == 0 and "NOT checked" in offline.out and "--offline" in offline.err


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            {"resource": "Userz"},
            "resource",
            "no resource named 'Userz' (resources: User, Group)",
        ),
        (
            {"include-filter": ["(objectClass=person)"]},
            "include-filter",
            "cannot tell which resource of the mapping its entries become",
        ),
    ],
    ids=["unknown resource", "filter naming no resource"],
)
def test_validate_finds_each_class_resource_as_a_run_does(slapd, tmp_path, change, key, message):
    classes = default_classes(SUFFIX)
    classes["users"].update(change)
    config = pipe_folder(slapd, tmp_path / "pipe", None, classes=classes)
    line = line_of(config, f"{key}:")
    validate = run_cli(config, "config", "validate")
    assert validate.code == 2
    assert f"{config}:{line}: sync-pipes.ldap-to-scim.sync-classes.users.{key}: " in validate.out
    assert message in validate.out
    run = run_cli(config, "dry-run")
    assert run.code == 2 and message in run.err and "Traceback" not in run.err


@pytest.mark.parametrize(
    ("mapping", "warned"),
    [
        ('<mapping ldapAttribute="jpegPhoto"/>', True),
        ('<mapping ldapAttribute="userCertificate;binary"/>', True),
        (
            '<mapping ldapAttribute="jpegPhoto" transform="toolkit.mapping.Base64Transformation"/>',
            False,
        ),
    ],
    ids=["photo as text", "certificate as text", "photo as base64"],
)
def test_validate_warns_of_a_binary_attribute_sent_as_text(slapd, tmp_path, mapping, warned):
    config = pipe_folder(slapd, tmp_path / "pipe", (TITLE, mapping))
    file = tmp_path / "pipe" / "mapping.xml"
    result = run_cli(config, "config", "validate")
    assert result.code == 0 and result.out.strip() == f"{config}: valid"
    warning = (
        f"scimsync: warning: {file}:{line_of(file, mapping)}: resource 'User', attribute "
        f"'title': LDAP attribute {mapping.split(chr(34))[1]!r} has the "
    )
    assert (warning in result.err) == warned, result.err
    if warned:
        assert "entries holding a value that is not UTF-8 will not be sent" in result.err
