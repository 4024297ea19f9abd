"""Pure syntax of config values: LDAP filters (RFC 4515), DNs (RFC 4514), durations, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config import ConfigError, SecretRef, parse_duration, resolve_secret
from toolkit.config.dn import DNError, dn_key, is_within, normalize_dn, parse_dn
from toolkit.config.durations import DurationError, format_duration
from toolkit.config.ldapfilter import (
    And,
    Compare,
    Extensible,
    FilterError,
    Not,
    Or,
    Present,
    Substring,
    filter_attributes,
    parse_filter,
)
from toolkit.config.secrets import env_name_for, is_secret_property, parse_secret, redact

# --- LDAP filters -----------------------------------------------------------------------------


def test_filter_tree_of_a_nested_filter():
    tree = parse_filter("(&(objectClass=inetOrgPerson)(!(nsAccountLock=TRUE))(|(cn=A*)(sn=*b*c)))")
    assert tree == And(
        (
            Compare("objectClass", "=", "inetOrgPerson"),
            Not(Compare("nsAccountLock", "=", "TRUE")),
            Or((Substring("cn", "A", (), None), Substring("sn", None, ("b",), "c"))),
        )
    )
    assert filter_attributes(tree) == {"objectclass", "nsaccountlock", "cn", "sn"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(cn=*)", Present("cn")),
        ("(cn=a\\2ab)", Compare("cn", "=", "a*b")),
        ("(cn=\\c3\\a9)", Compare("cn", "=", "é")),
        ("(uidNumber>=1000)", Compare("uidNumber", ">=", "1000")),
        ("(cn~=smith)", Compare("cn", "~=", "smith")),
        ("(cn;lang-de=x)", Compare("cn;lang-de", "=", "x")),
        ("(2.5.4.3=x)", Compare("2.5.4.3", "=", "x")),
        ("(cn=)", Compare("cn", "=", "")),
        ("(cn:caseExactMatch:=Fred)", Extensible("cn", "caseExactMatch", False, "Fred")),
        ("(cn:dn:=x)", Extensible("cn", None, True, "x")),
        ("(:dn:2.4.6.8.10:=Dino)", Extensible(None, "2.4.6.8.10", True, "Dino")),
        ("(cn=a*b*c*d)", Substring("cn", "a", ("b", "c"), "d")),
    ],
)
def test_valid_filters(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(cn=a", "unbalanced parenthesis"),
        ("(&(cn=a)(sn=b)", "unbalanced parenthesis"),
        ("(cn=a))", "unbalanced parenthesis"),
        ("cn=a", "must start with '('"),
        ("", "empty filter"),
        ("(c n=a)", "invalid attribute description"),  # ldap3 accepts this one
        ("(cn=a\\4)", "invalid escape"),  # and this one
        ("(cn=a\\zz)", "invalid escape"),
        ("((cn=a))", "nested parenthesis"),
        ("(cn=a)(sn=b)", "unexpected text after the filter"),
        ("(&)", "needs at least one filter"),
        ("(!cn=a)", "'!' must be followed"),
        ("(cn>=a*)", "expected ')'"),
        ("(cn=a**b)", "empty substring"),
        ("()", "empty filter"),
        ("(=a)", "invalid attribute description"),
        ("(1cn=a)", "invalid attribute description"),
        ("(01.2=a)", "invalid attribute description"),
        ("(:=a)", "needs an attribute or a matching rule"),
    ],
)
def test_invalid_filters(text, reason):
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert reason in str(info.value)
    assert repr(text) in str(info.value)


def test_ldap3_is_more_lenient_than_the_config_check():
    """Why the config has its own parser: ldap3 takes a filter a directory would refuse."""
    from ldap3.operation.search import parse_filter as ldap3_parse

    ldap3_parse("(c n=a)", None, False, None, None, False)  # no exception from ldap3
    with pytest.raises(FilterError):
        parse_filter("(c n=a)")


# --- DNs --------------------------------------------------------------------------------------


def test_dn_parsing_and_normalising():
    assert parse_dn("cn=Sync User,cn=Root DNs,cn=config") == (
        (("cn", "Sync User"),),
        (("cn", "Root DNs"),),
        (("cn", "config"),),
    )
    assert parse_dn("cn=a\\,b+uid=x , dc=com") == ((("cn", "a,b"), ("uid", "x")), (("dc", "com"),))
    assert dn_key("OU=People, DC=Example,dc=com") == dn_key("ou=people,dc=example,dc=com")
    assert normalize_dn("OU=People, DC=Example,dc=com") == "ou=people,dc=example,dc=com"
    assert is_within("uid=a,ou=people,dc=example,dc=com", "DC=Example,DC=com")
    assert is_within("dc=example,dc=com", "dc=example,dc=com")
    assert not is_within("dc=example,dc=com", "ou=people,dc=example,dc=com")
    assert not is_within("dc=myexample,dc=com", "dc=example,dc=com")


@pytest.mark.parametrize(
    "text", ["", "dc=example,", "dc", "=x", "cn=a\\q", "cn=a<b", "dc=example,,dc=com"]
)
def test_invalid_dns(text):
    with pytest.raises(DNError):
        parse_dn(text)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5 s", 5),
        ("500 ms", 0.5),
        ("1 min", 60),
        ("2 h", 7200),
        ("1 d", 86400),
        ("2h30m", 9000),
        ("1 week", 604800),
        ("10 seconds", 10),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [5, "5", "5 parsecs", "s", "", True])
def test_bad_durations(value):
    with pytest.raises(DurationError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500 ms"), (60, "1 min"), (90, "90 s"), (86400, "1 d"), (30, "30 s")],
)
def test_duration_formatting_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- secrets ----------------------------------------------------------------------------------


def test_secret_property_names():
    for name in (
        "password",
        "oauth-token",
        "oauth-client-secret",
        "admin-password",
        "api-secret",
        "refresh-token",
    ):
        assert is_secret_property(name)
    for name in ("user-name", "oauth-server-token-endpoint-url", "oauth-client-id", "bind-dn"):
        assert not is_secret_property(name)


def test_resolve_env_and_file_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIMSYNC_TEST_SECRET", "s3cret")
    assert resolve_secret("${env:SCIMSYNC_TEST_SECRET}") == "s3cret"
    (tmp_path / "token.txt").write_text("tok\n")
    assert resolve_secret("${file:token.txt}", tmp_path) == "tok"
    assert resolve_secret(SecretRef("file", str(tmp_path / "token.txt"))) == "tok"


def test_resolve_secret_errors_name_property_and_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("SCIMSYNC_NOT_SET", raising=False)
    with pytest.raises(
        ConfigError,
        match=r"external-servers\.ds\.password: environment variable SCIMSYNC_NOT_SET is not set",
    ):
        resolve_secret("${env:SCIMSYNC_NOT_SET}", tmp_path, name="external-servers.ds.password")
    with pytest.raises(
        ConfigError, match=r"oauth-token: secret file .*missing\.txt does not exist"
    ):
        resolve_secret("${file:missing.txt}", tmp_path, name="oauth-token")
    with pytest.raises(ConfigError, match="literal secret is not allowed") as info:
        resolve_secret("hunter2", tmp_path, name="password")
    assert "hunter2" not in str(info.value)


def test_secret_reference_never_shows_the_secret(tmp_path):
    (tmp_path / "pw").write_text("topsecret")
    ref = parse_secret("${file:pw}", tmp_path, "password")
    assert str(ref) == repr(ref).split("'")[1] == "${file:pw}"
    assert redact(ref) == "${file:pw}"
    assert redact("topsecret") == "<redacted>"
    with pytest.raises(ValueError, match="malformed"):
        parse_secret("${env:}", Path("."))
    assert env_name_for("source-ds", "password") == "SCIMSYNC_SOURCE_DS_PASSWORD"


def test_delete_limits():
    from toolkit.config.properties import parse_delete_limit

    assert parse_delete_limit("10%").allowed(1000) == 100
    assert parse_delete_limit(" 2.5 % ").allowed(1000) == 25
    assert parse_delete_limit("500").allowed(10) == 500
    assert str(parse_delete_limit(7)) == "7"
    for bad in ("lots", "150%", "-1"):
        with pytest.raises(ConfigError, match="max-deletes: expected a count"):
            parse_delete_limit(bad)
