"""A pipe's scope: which class takes an entry. The base-DN shortcut for a DN that ends with
a base as spelled must never say "within" where parsing the DNs says otherwise (pure logic)."""

from __future__ import annotations

import pytest

from toolkit.config.dn import is_within
from toolkit.plan.scope import _ends_with

BASE = "ou=people,dc=example,dc=com"


@pytest.mark.parametrize(
    ("dn", "shortcut", "parsed"),
    [
        (BASE, True, True),
        ("uid=jdoe,ou=people,dc=example,dc=com", True, True),
        ("UID=JDoe,OU=People,DC=Example,DC=com", True, True),  # the caller lower-cases both
        ("cn=a\\,ou=people,dc=example,dc=com", False, False),  # an escaped comma: in a value
        ("cn=a\\\\,ou=people,dc=example,dc=com", True, True),  # an escaped backslash, an RDN
        ("cn=a\\\\\\,ou=people,dc=example,dc=com", False, False),
        ("uid=jdoe,xou=people,dc=example,dc=com", False, False),
        ("uid=jdoe+ou=people,dc=example,dc=com", False, False),
        ("uid=jdoe, ou=people,dc=example,dc=com", False, True),  # another spelling: parsed
        ("ou=people,dc=example,dc=org", False, False),
        ("dc=example,dc=com", False, False),
    ],
)
def test_a_dn_ends_with_a_base_only_where_an_rdn_ends(dn, shortcut, parsed):
    assert _ends_with(dn.lower(), BASE) is shortcut
    assert is_within(dn, BASE) is parsed  # the shortcut never says "within" where parsing denies
