"""DN normal form (ids of DN-based mappings, resolver keys) and uniqueMember values."""

from __future__ import annotations

import pytest

from toolkit.config.dn import normalize_dn
from toolkit.mapping.dn import strip_unique_member_uid


@pytest.mark.parametrize(
    ("dn", "normal"),
    [
        ("UID=BJensen, OU=People,DC=Example,DC=COM", "uid=bjensen,ou=people,dc=example,dc=com"),
        (
            "cn=Smith\\, John,ou=people,dc=example,dc=com",
            "cn=smith\\, john,ou=people,dc=example,dc=com",
        ),
        (
            "cn=Smith\\2C John,ou=people,dc=example,dc=com",
            "cn=smith\\, john,ou=people,dc=example,dc=com",
        ),
        (
            'cn="Smith, John",ou=people,dc=example,dc=com',
            "cn=smith\\, john,ou=people,dc=example,dc=com",
        ),
        ("cn=Ana  Müller ,dc=example,dc=com", "cn=ana müller,dc=example,dc=com"),
        ("cn=M\\C3\\BCller,dc=example,dc=com", "cn=müller,dc=example,dc=com"),
        ("uid=a+cn=B,dc=example,dc=com", "cn=b+uid=a,dc=example,dc=com"),
        ("cn=B + uid=a,dc=example,dc=com", "cn=b+uid=a,dc=example,dc=com"),
        ("cn=\\#hash,dc=example,dc=com", "cn=\\#hash,dc=example,dc=com"),
        ("", ""),
    ],
)
def test_normalize_dn(dn, normal):
    assert normalize_dn(dn) == normal
    assert normalize_dn(normal) == normal


def test_different_dns_stay_different():
    assert normalize_dn("uid=a,ou=people,dc=example,dc=com") != normalize_dn(
        "uid=a,ou=groups,dc=example,dc=com"
    )
    assert normalize_dn("cn=a\\,b,dc=x") != normalize_dn("cn=a,b=,dc=x")


@pytest.mark.parametrize(
    ("value", "dn"),
    [
        ("cn=Nested,ou=groups,dc=example,dc=com#'0101'B", "cn=Nested,ou=groups,dc=example,dc=com"),
        ("uid=a,dc=example,dc=com", "uid=a,dc=example,dc=com"),
        ("cn=tag\\#1,dc=example,dc=com", "cn=tag\\#1,dc=example,dc=com"),
    ],
)
def test_strip_unique_member_uid(value, dn):
    assert strip_unique_member_uid(value) == dn


def test_plain_dns_take_the_short_path_to_the_same_form():
    """The split-only path for plain DNs gives exactly what the full parser gives."""
    import random

    from toolkit.config.dn import _normalize_parsed

    rnd = random.Random(7)
    alphabet = 'abcXY =,+#\\;"<> \té1'
    samples = [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 16))) for _ in range(5000)
    ]
    samples += ["UID=BJensen, OU=People,dc=Example,dc=COM", "cn=x,,dc=y", "cn=a=b,dc=x", " ,cn=x"]
    for dn in samples:
        assert normalize_dn(dn) == _normalize_parsed(dn), dn
