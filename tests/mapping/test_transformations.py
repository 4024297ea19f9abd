"""Transformations: each direction, round trips, and the comparable forms they give."""

from __future__ import annotations

import pytest

from toolkit.errors import SkippableError
from toolkit.mapping import (
    AccountEnabledTransformation,
    BooleanTransformation,
    DefaultTransformation,
    GeneralizedTimeTransformation,
    NegatedBooleanTransformation,
    PostalAddressTransformation,
    TelephoneNumberTransformation,
    Transformation,
    create_transformation,
    register_transformation,
)
from toolkit.mapping.transformations import normalize_datetime, normalize_phone, normalize_string

# --- Boolean ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ldap", "scim"),
    [
        ("TRUE", True),
        ("FALSE", False),
        ("true", True),
        ("yes", True),
        ("0", False),
        (b"TRUE", True),
    ],
)
def test_boolean_to_scim(ldap, scim):
    assert BooleanTransformation().to_scim(ldap, "boolean") is scim


@pytest.mark.parametrize("value", ["TRUE", "FALSE"])
def test_boolean_round_trip(value):
    t = BooleanTransformation()
    assert t.to_ldap(t.to_scim(value, "boolean"), "boolean") == value
    assert t.to_scim(t.to_ldap(value == "TRUE", "boolean"), "boolean") is (value == "TRUE")


def test_boolean_invert_argument_and_negated_class():
    inverted = BooleanTransformation({"invert": ""})
    negated = NegatedBooleanTransformation()
    for t in (inverted, negated):
        assert t.to_scim("TRUE", "boolean") is False
        assert t.to_scim("FALSE", "boolean") is True
        assert t.to_ldap(False, "boolean") == "TRUE"
        assert t.to_ldap(True, "boolean") == "FALSE"
    assert BooleanTransformation({"invert": "false"}).to_scim("TRUE", "boolean") is True


def test_account_enabled_reads_userAccountControl_disabled_bit():
    t = create_transformation("toolkit.mapping.AccountEnabledTransformation")
    assert isinstance(t, AccountEnabledTransformation)
    assert t.to_scim("512", "boolean") is True  # NORMAL_ACCOUNT
    assert t.to_scim("514", "boolean") is False  # | ACCOUNTDISABLE
    assert t.to_scim(b"66050", "boolean") is False  # | DONT_EXPIRE_PASSWORD, disabled
    assert t.to_scim("544", "boolean") is True  # | PASSWD_NOTREQD
    assert (t.to_ldap(True), t.to_ldap(False)) == ("512", "514")
    assert t.check("string") is not None
    with pytest.raises(SkippableError, match="not an integer"):
        t.to_scim("enabled", "boolean")


def test_boolean_rejects_garbage_and_other_types():
    with pytest.raises(SkippableError, match="not a boolean: 'maybe'"):
        BooleanTransformation().to_scim("maybe", "boolean")
    assert BooleanTransformation().check("string") == (
        "com.unboundid.scim.ldap.BooleanTransformation cannot be used on string data"
    )


# --- GeneralizedTime --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ldap", "scim"),
    [
        ("20240102030405Z", "2024-01-02T03:04:05Z"),
        ("20240102030405.123Z", "2024-01-02T03:04:05.123Z"),
        ("19991231235959.5Z", "1999-12-31T23:59:59.5Z"),
    ],
)
def test_generalized_time_round_trip(ldap, scim):
    t = GeneralizedTimeTransformation()
    assert t.to_scim(ldap, "dateTime") == scim
    assert t.to_ldap(scim, "dateTime") == ldap


@pytest.mark.parametrize(
    ("ldap", "scim"),
    [
        ("20240102030405+0200", "2024-01-02T01:04:05Z"),
        ("20240102030405-0130", "2024-01-02T04:34:05Z"),
        ("202401020304Z", "2024-01-02T03:04:00Z"),
        ("2024010203Z", "2024-01-02T03:00:00Z"),
        ("2024010203.5Z", "2024-01-02T03:30:00Z"),
    ],
)
def test_generalized_time_zones_and_precision_to_utc(ldap, scim):
    t = GeneralizedTimeTransformation()
    assert t.to_scim(ldap, "dateTime") == scim
    # Back to LDAP the same instant, in UTC.
    assert t.to_scim(t.to_ldap(scim, "dateTime"), "dateTime") == scim


def test_generalized_time_from_rfc3339_with_offset():
    t = GeneralizedTimeTransformation()
    assert t.to_ldap("2024-01-02T03:04:05+01:00", "dateTime") == "20240102020405Z"
    assert t.to_ldap("2024-01-02T03:04:05.250-05:00", "dateTime") == "20240102080405.25Z"


def test_generalized_time_rejects_garbage():
    with pytest.raises(SkippableError, match="not a generalized time"):
        GeneralizedTimeTransformation().to_scim("yesterday", "dateTime")
    with pytest.raises(SkippableError, match="not a dateTime"):
        GeneralizedTimeTransformation().to_ldap("yesterday", "dateTime")


# --- PostalAddress ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ldap", "scim"),
    [
        ("1 Main St$Austin, TX 78701", "1 Main St\nAustin, TX 78701"),
        ("c/o Cash \\24 Carry GmbH$Hauptstr. 1", "c/o Cash $ Carry GmbH\nHauptstr. 1"),
        ("C:\\5CUsers$Back\\5Cslash \\24\\24", "C:\\Users\nBack\\slash $$"),
        ("no separators at all", "no separators at all"),
    ],
)
def test_postal_address_round_trip_with_escapes(ldap, scim):
    t = PostalAddressTransformation()
    assert t.to_scim(ldap) == scim
    assert t.to_ldap(scim) == ldap


def test_postal_address_lowercase_escapes_and_invalid_escapes():
    t = PostalAddressTransformation()
    assert t.to_scim("a\\5cb\\24c") == "a\\b$c"
    # A backslash that starts no valid escape passes untouched (as in Ping's class).
    assert t.to_scim("a\\zz$b") == "a\\zz\nb"
    assert t.to_ldap("line 1\r\nline 2") == "line 1$line 2"


# --- TelephoneNumber --------------------------------------------------------------------------

PHONES = [
    ("+1 512 555 1234", "tel:+1-512-555-1234"),
    ("+1 512 555 1234 ext. 56", "tel:+1-512-555-1234;ext=56"),
    ("+44 20 7946 0958", "tel:+44-20-7946-0958"),
    ("+49 30 5550 1234 ext. 1234567", "tel:+49-30-5550-1234;ext=1234567"),
]


@pytest.mark.parametrize(("ldap", "scim"), PHONES)
def test_telephone_round_trip(ldap, scim):
    t = TelephoneNumberTransformation()
    assert t.to_scim(ldap) == scim
    assert t.to_ldap(scim) == ldap


@pytest.mark.parametrize(
    ("ldap", "scim"),
    [
        ("+1 (512) 555-1234", "tel:+1-512-555-1234"),
        ("+1 512 555 1234 x56", "tel:+1-512-555-1234;ext=56"),
        ("+1 512 555 1234 extension 56", "tel:+1-512-555-1234;ext=56"),
        ("+1 512 555 1234, ext: 56", "tel:+1-512-555-1234;ext=56"),
        ("+1 512 555 1234 #56", "tel:+1-512-555-1234;ext=56"),
        ("+1 512 555-1234 - 56#", "tel:+1-512-555-1234;ext=56"),
        ("tel:+1-512-555-1234;ext=56", "tel:+1-512-555-1234;ext=56"),
        ("(01) 555 2257", "tel:01-555-2257"),
    ],
)
def test_telephone_extension_spellings_and_formats(ldap, scim):
    t = TelephoneNumberTransformation()
    assert t.to_scim(ldap) == scim
    # The LDAP side comes back in one E.123 spelling, which maps to the same SCIM value.
    assert t.to_scim(t.to_ldap(scim)) == scim


def test_telephone_to_ldap_extension_spelling():
    t = TelephoneNumberTransformation()
    assert t.to_ldap("tel:+1-512-555-1234;ext=56") == "+1 512 555 1234 ext. 56"
    assert t.to_ldap("+1-512-555-1234 x7") == "+1 512 555 1234 ext. 7"


@pytest.mark.parametrize(
    "spelling",
    [
        "tel:+1-512-555-1234;ext=56",
        "+1 512 555 1234 ext. 56",
        "+1 (512) 555-1234 x56",
        "tel:+15125551234;ext=56",
        " +1.512.555.1234 ext 56 ",
    ],
)
def test_telephone_normalize_ignores_formatting(spelling):
    assert normalize_phone(spelling) == "tel:+15125551234;ext=56"


def test_telephone_normalize_keeps_real_differences():
    assert normalize_phone("+1 512 555 1234") != normalize_phone("+1 512 555 1235")
    assert normalize_phone("+1 512 555 1234") != normalize_phone("+1 512 555 1234 x1")
    assert normalize_phone("+1 512 555 1234") != normalize_phone("1 512 555 1234")


# --- Default and registry ---------------------------------------------------------------------


def test_default_transformation_by_data_type():
    t = DefaultTransformation()
    assert t.to_scim(b"caf\xc3\xa9", "string") == "café"
    assert t.to_scim("42", "integer") == 42
    assert t.to_scim(b"\x00\x01\xff", "binary") == "AAH/"
    assert t.to_ldap("AAH/", "binary") == b"\x00\x01\xff"
    assert t.to_scim("TRUE", "boolean") is True
    assert t.to_ldap(False, "boolean") == "FALSE"
    assert t.to_scim("20240102030405Z", "dateTime") == "2024-01-02T03:04:05Z"
    assert t.to_ldap("2024-01-02T03:04:05Z", "dateTime") == "20240102030405Z"
    with pytest.raises(SkippableError, match="not an integer: 'x1'"):
        t.to_scim("x1", "integer")


def test_string_and_datetime_normal_forms():
    assert normalize_string("  Barbara \t Jensen ") == "Barbara Jensen"
    assert normalize_string("1 Main St \r\n Austin\u00a0 TX\n") == "1 Main St\nAustin TX"
    assert normalize_string("   ") is None
    assert normalize_datetime("2024-01-02T04:04:05+01:00") == "2024-01-02T03:04:05Z"
    assert normalize_datetime("2024-01-02t03:04:05.000z") == "2024-01-02T03:04:05Z"
    assert normalize_datetime("2024-01-02 03:04:05") == "2024-01-02T03:04:05Z"


def test_registry_names_and_plugins():
    assert isinstance(
        create_transformation("com.unboundid.scim.ldap.PostalAddressTransformation"),
        PostalAddressTransformation,
    )
    assert isinstance(create_transformation(None), DefaultTransformation)
    assert isinstance(
        create_transformation("toolkit.mapping.NegatedBooleanTransformation"),
        NegatedBooleanTransformation,
    )
    with pytest.raises(KeyError, match="unknown transformation class 'com.example.Nope'"):
        create_transformation("com.example.Nope")

    class Upper(Transformation):
        names = ("com.example.UpperTransformation",)
        data_types = ("string",)

        def scim_converter(self, data_type):
            return lambda value: str(value).upper()

        def to_ldap(self, value, data_type="string"):
            return str(value).lower()

    register_transformation(Upper)
    upper = create_transformation("com.example.UpperTransformation")
    assert upper.to_scim("abc") == "ABC"
    assert upper.to_ldap("ABC") == "abc"
