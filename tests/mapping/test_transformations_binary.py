"""Values as they are: an LDAP value that is not UTF-8 text never becomes a SCIM string of
replacement signs. Each such entry is refused (its row names the LDAP attribute) unless the
mapping declares Base64Transformation or dataType="binary"; then the value goes as base64."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import ldap3
import pytest

from tests.support.plan_env import SUFFIX, make_env, totals
from tests.support.realtime_env import make_rt
from toolkit.config.dn import normalize_dn
from toolkit.mapping import (
    Base64Transformation,
    MappingValueError,
    TransformationError,
    create_transformation,
    default_mapping_text,
    load_mapping,
)
from toolkit.plan.plan import Plan
from toolkit.sync import synclog

DN = "uid=ann,ou=people,dc=example,dc=com"
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
B64 = "toolkit.mapping.Base64Transformation"
TITLE = '<mapping ldapAttribute="title"/>'
TITLE_BLOCK = '<simple dataType="string">\n        <mapping ldapAttribute="title"/>'


def mapping_with(tmp_path: Path, old: str = TITLE, new: str = TITLE):
    text = default_mapping_text(SUFFIX)
    assert old in text
    path = tmp_path / "mapping.xml"
    path.write_text(text.replace(old, new, 1))
    return load_mapping(path)["User"]


def entry(**values) -> dict:
    return {"dn": DN, "uid": ["ann"], "entryuuid": ["u-1"], **values}


# (case, mapping edit (old, new) or None, entry values, SCIM path, expected value or error text)
CASES = [
    ("text", None, {"title": ["Boss"]}, "title", "Boss"),
    ("UTF-8 given as bytes", None, {"title": ["Caf\u00e9".encode()]}, "title", "Caf\u00e9"),
    ("binary title", None, {"title": [PHOTO]}, "title", "LDAP attribute title holds a binary"),
    (
        "binary givenName (complex)",
        None,
        {"givenname": [b"\xe9ric"]},
        "name",
        "LDAP attribute givenName holds a binary value (4 bytes",
    ),
    (
        "binary mail among text ones",
        None,
        {"mail": ["a@example.com", b"b\xff@example.com"]},
        "emails",
        "LDAP attribute mail holds a binary",
    ),
    (
        "binary phone (TelephoneNumberTransformation)",
        None,
        {"telephonenumber": [b"+1 555 \xff"]},
        "phoneNumbers",
        "LDAP attribute telephoneNumber holds a binary",
    ),
    (
        "binary locality (complexMultiValued)",
        None,
        {"l": [b"M\xfcnchen"]},
        "addresses",
        "LDAP attribute l holds a binary",
    ),
    (
        "binary boolean (NegatedBooleanTransformation)",
        None,
        {"nsaccountlock": [b"\xff"]},
        "active",
        "LDAP attribute nsAccountLock holds a binary",
    ),
    (
        "Base64Transformation on bytes",
        (TITLE, f'<mapping ldapAttribute="title" transform="{B64}"/>'),
        {"title": [PHOTO]},
        "title",
        base64.b64encode(PHOTO).decode(),
    ),
    (
        "Base64Transformation on text",
        (TITLE, f'<mapping ldapAttribute="title" transform="{B64}"/>'),
        {"title": ["Caf\u00e9"]},
        "title",
        base64.b64encode("Caf\u00e9".encode()).decode(),
    ),
    (
        "dataType binary",
        (TITLE_BLOCK, TITLE_BLOCK.replace('"string"', '"binary"')),
        {"title": [PHOTO]},
        "title",
        base64.b64encode(PHOTO).decode(),
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "values", "path", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_values_as_they_are(tmp_path, case, edit, values, path, expected):
    users = mapping_with(tmp_path, *(edit or ()))
    if "holds a binary" in expected:
        with pytest.raises(MappingValueError) as info:
            users.to_scim(entry(**values))
        message = str(info.value)
        assert message.startswith(f"{DN}: SCIM attribute {path}: {expected}"), message
        assert f'declare transform="{B64}"' in message
        assert "\ufffd" not in message
        return
    resource = users.to_scim(entry(**values))
    assert resource[path] == expected
    # the comparable form of what a server returns equals the mapped one
    assert users.normalize(resource)[path] == users.normalize({path: expected})[path]


def test_base64_transformation_both_ways_and_its_types():
    transformation = create_transformation(B64)
    assert isinstance(transformation, Base64Transformation)
    assert transformation.to_scim(PHOTO) == base64.b64encode(PHOTO).decode()
    assert transformation.to_ldap(base64.b64encode(PHOTO).decode()) == PHOTO
    with pytest.raises(TransformationError, match="not base64"):
        transformation.to_ldap("not base64!")
    assert transformation.check("string") is None and transformation.check("binary") is None
    assert "cannot be used on boolean data" in transformation.check("boolean")
    # whitespace a server may add inside base64 is no change
    encoded = base64.b64encode(PHOTO).decode()
    assert transformation.normalize(encoded) == transformation.normalize(
        encoded[:8] + "\n" + encoded[8:]
    )


def test_binary_value_is_a_problem_of_its_object_only(slapd, scim_server, tmp_path):
    """title <- jpegPhoto: one user holds a JPEG; that user's row names the attribute and
    resync sends nothing for it while the others go through; with Base64Transformation
    declared, the photo goes as base64 and a second dry run finds it unchanged."""
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=8, groups=1)
    try:
        mapping = env.folder / "mapping.xml"
        text = default_mapping_text(SUFFIX)
        mapping.write_text(text.replace(TITLE, '<mapping ldapAttribute="jpegPhoto"/>', 1))
        env.config_path.write_text(
            env.config_path.read_text().replace(
                "    server: [test-scim]\n",
                "    server: [test-scim]\n    resource-mapping-file: mapping.xml\n",
            )
        )
        person = env.people()[3]
        dn = person["dn"][0]
        env.ldap.modify(dn, {"jpegPhoto": [(ldap3.MODIFY_REPLACE, [PHOTO])]})

        report = env.folder / "plan.json"
        dry = env.cli("dry-run", "--output", str(report))
        assert dry.code == 0, dry.err
        rows = {row.dn: row for row in Plan.load(report).rows}
        row = rows[dn]
        assert row.situation == "conflict" and not row.requests
        assert f"cannot map: {dn}: SCIM attribute title: LDAP attribute jpegPhoto holds" in (
            row.reason
        )
        others = [r for d, r in rows.items() if d != dn]
        assert all(r.situation == "create" for r in others)
        assert f"{dn}: " in dry.out  # the dry run lists the object it cannot map

        result = env.cli_json("resync")
        assert (result["applied"], result["failed"]) == (len(others), 0)
        users = env.scim_users()
        assert person["uid"][0] not in users and len(users) == env.users - 1
        assert all("title" not in u for u in users.values())  # no photo, no title

        mapping.write_text(
            text.replace(TITLE, f'<mapping ldapAttribute="jpegPhoto" transform="{B64}"/>', 1)
        )
        result = env.cli_json("resync")
        assert result["classes"]["users"] == totals(create=1, unchanged=env.users - 1)
        # the groups holding that user gain it as a member now that it exists
        member = normalize_dn(dn) in env.member_dns()
        assert result["classes"]["groups"] == totals(modify=int(member), unchanged=1 - member)
        assert (result["applied"], result["failed"]) == (1 + member, 0)
        assert env.scim_users()[person["uid"][0]]["title"] == base64.b64encode(PHOTO).decode()
        assert env.cli_json("dry-run")["totals"]["unchanged"] == env.users + env.groups
    finally:
        env.close()


def test_realtime_records_the_binary_value_as_that_change_failing(slapd, scim_server, tmp_path):
    """The same refusal on the change feed: the change adding the photo fails (logged with the
    attribute, kept for retry); a change to another user in the same batch goes through."""
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=6, groups=1)
    try:
        text = default_mapping_text(SUFFIX)
        (rt.folder / "mapping.xml").write_text(
            text.replace(TITLE, '<mapping ldapAttribute="jpegPhoto"/>', 1)
        )
        rt.config_path.write_text(
            rt.config_path.read_text().replace(
                "    server: [rt-scim]\n",
                "    server: [rt-scim]\n    resource-mapping-file: mapping.xml\n",
            )
        )
        mark = len(rt.log())
        photo_dn = rt.add_user("photo.holder", jpegPhoto=[PHOTO])
        plain_dn = rt.add_user("plain.user")
        run = rt.cli("realtime-sync", "start", "--foreground", "--until-idle")
        assert run.code == 1 and "1 entries failed" in run.err  # as resync: a failure says so
        lines = [line for line in rt.log()[mark:] if line["type"] in synclog.OUTCOMES]
        by_dn = {line["dn"].lower(): line for line in lines}
        failed = by_dn[photo_dn.lower()]
        assert failed["type"] == synclog.CHANGE_FAILED, failed
        assert "LDAP attribute jpegPhoto holds a binary value" in json.dumps(failed), failed
        assert by_dn[plain_dn.lower()]["type"] == synclog.CHANGE_APPLIED
        users = rt.users()
        assert "plain.user" in users and "photo.holder" not in users
    finally:
        rt.close()


def test_resource_id_of_octets_is_their_base64(tmp_path):
    # an id attribute holding octets (a GUID) gives distinct ids, never replacement signs
    users = mapping_with(tmp_path)
    guid = b"\x8a\xff\x00\x10" * 4
    other = b"\x8a\xfe\x00\x10" * 4
    ids = {users.resource_id(entry(entryuuid=[g])) for g in (guid, other)}
    assert ids == {base64.b64encode(g).decode() for g in (guid, other)}
    assert users.resource_id(entry(entryuuid=[b"abc"])) == "abc"
