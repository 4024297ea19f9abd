"""The ldif sync source on slapcat exports of the test slapd: same entries as a live read."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from toolkit.lab import sampledata
from toolkit.ldap import (
    LdapOperationError,
    LdapServerSpec,
    LdapSource,
    LdifError,
    LdifSource,
    SourceSpec,
)

PEOPLE = "ou=people,dc=example,dc=com"
GROUPS = "ou=groups,dc=example,dc=com"

FILTERS = [
    "(objectClass=inetOrgPerson)",
    "(nsAccountLock=TRUE)",
    "(&(objectClass=inetOrgPerson)(l=Berlin))",
    "(|(l=Tokyo)(l=São Paulo))",
    "(!(employeeType=Employee))",
    "(mail=*@*)",
    "(cn=a*)",
    "(&(objectClass=groupOfNames)(cn=*staff*))",
    "(&(objectClass=inetOrgPerson)(createTimestamp>=20000101000000Z))",
    "(createTimestamp<=20000101000000Z)",
]


@pytest.fixture
def exported(slapd, tmp_path):
    """The slapd loaded with sample data plus an online-added entry, and its slapcat export."""
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "data.ldif", users=300, groups=10, seed=3))
    conn = slapd.connect()
    conn.add(
        f"uid=binary,{PEOPLE}",
        ["inetOrgPerson"],
        {
            "uid": "binary",
            "cn": "Ægir Øster",
            "sn": "Øster",
            "jpegPhoto": bytes(range(256)) * 4,
            "description": "y" * 300,
        },
    )
    export = tmp_path / "export.ldif"
    done = subprocess.run(
        ["slapcat", "-f", str(slapd.conf), "-b", slapd.suffix, "-l", str(export)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    gz = tmp_path / "export.ldif.gz"
    with open(export, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    live = LdapSource(
        SourceSpec(
            [slapd.suffix],
            [
                LdapServerSpec(
                    slapd.host, slapd.port, bind_dn=slapd.admin_dn, password=slapd.admin_password
                )
            ],
        )
    )
    return live, export, gz


def _by_dn(entries):
    out = {}
    for entry in entries:
        out[entry["dn"].lower()] = entry
    return out


@pytest.mark.parametrize("which", ["plain", "gzip"])
def test_ldif_source_reads_the_same_entries_as_the_server(exported, which):
    live, export, gz = exported
    source = LdifSource(export if which == "plain" else gz, [live.spec.base_dns[0]])
    for base in (PEOPLE, GROUPS):
        from_file = _by_dn(source.iter_entries(base))
        from_server = _by_dn(live.iter_entries(base))
        assert from_file.keys() == from_server.keys()
        for dn, entry in from_server.items():
            mine = from_file[dn]
            for attribute, values in entry.items():
                if attribute != "dn":
                    assert sorted(map(repr, mine[attribute])) == sorted(map(repr, values)), (
                        dn,
                        attribute,
                    )
    binary = next(source.iter_entries(PEOPLE, "(uid=binary)"))
    assert binary["jpegphoto"] == [bytes(range(256)) * 4]
    assert binary["cn"] == ["Ægir Øster"]


@pytest.mark.parametrize("search_filter", FILTERS)
def test_filters_select_what_the_server_selects(exported, search_filter):
    live, export, _ = exported
    source = LdifSource(export, [live.spec.base_dns[0]])
    from_file = sorted(
        e["dn"].lower() for e in source.iter_entries(live.spec.base_dns[0], search_filter)
    )
    from_server = sorted(
        e["dn"].lower() for e in live.iter_entries(live.spec.base_dns[0], search_filter, ["1.1"])
    )
    assert from_file == from_server
    assert from_file or search_filter in ("(cn=a*)", "(createTimestamp<=20000101000000Z)")


def test_attribute_selection_and_lookup(exported):
    live, export, _ = exported
    source = LdifSource(export, [live.spec.base_dns[0]])
    entry = next(source.iter_entries(PEOPLE, "(uid=binary)", ["uid", "entryUUID"]))
    assert set(entry) == {"dn", "uid", "entryuuid"}
    assert source.get_entry(f"UID=binary, {PEOPLE}")["uid"] == ["binary"]
    assert source.get_entry(f"uid=nobody,{PEOPLE}") is None
    assert sum(1 for _ in source.iter_all("(objectClass=*)")) == sum(1 for _ in live.iter_all())


def test_missing_base_dn_raises(exported):
    _, export, _ = exported
    with pytest.raises(LdapOperationError, match="no entry at or below ou=nowhere"):
        list(LdifSource(export).iter_entries("ou=nowhere,dc=example,dc=com"))


def test_change_records_are_refused_with_file_and_line(tmp_path, exported):
    _, export, _ = exported
    lines = export.read_text().splitlines()
    changed = tmp_path / "changes.ldif"
    changed.write_text(
        "\n".join(lines[:20])
        + "\n\n# a change record among entries\ndn: uid=x,ou=people,dc=example,dc=com\nchangetype: add\ncn: x\n"
    )
    with pytest.raises(LdifError) as err:
        list(LdifSource(changed).iter_entries("dc=example,dc=com"))
    text = changed.read_text().splitlines()
    line = text.index("changetype: add") + 1
    assert f"{changed}:{line}:" in str(err.value) and "change record (add)" in str(err.value)


def test_missing_file_is_reported():
    with pytest.raises(LdifError, match="does not exist"):
        LdifSource("/nonexistent/export.ldif")
