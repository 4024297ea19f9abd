"""Value transformations between LDAP and SCIM (the `transform="..."` attribute of a mapping).

Each class re-creates the behaviour of the UnboundID SCIM SDK class of the same name (see
pingdatasync.md, section 5.3), in both directions, and adds `normalize`: the canonical form of a
SCIM value, used to compare values from our mapping with values a SCIM server returns.

For speed a mapping asks a transformation once for plain functions bound to one data type
(`scim_converter`, `normalizer`) and then calls only those per value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from toolkit.errors import SkippableError

DATA_TYPES = ("binary", "boolean", "dateTime", "integer", "string")

LdapValue = str | bytes
ToScim = Callable[[LdapValue], Any]
Normalize = Callable[[Any], Any]


class TransformationError(SkippableError):
    """One value cannot be transformed; the caller adds the entry and attribute to the message."""


class BinaryValueError(TransformationError):
    """An LDAP value that is not UTF-8 text, where the mapping makes text of it."""


#: How a mapping declares that an attribute's values go as base64 (see Base64Transformation).
BASE64_TRANSFORMATION = "toolkit.mapping.Base64Transformation"


class Transformation:
    """Base class: a bidirectional LDAP <-> SCIM value conversion for some data types."""

    #: The class names a scim-resources.xml may use for this transformation.
    names: ClassVar[tuple[str, ...]] = ()
    #: The SCIM data types this transformation accepts.
    data_types: ClassVar[tuple[str, ...]] = DATA_TYPES

    def __init__(self, args: Mapping[str, str] | None = None) -> None:
        #: Child elements of <mapping>/<subMapping>: element name -> text.
        self.args: dict[str, str] = dict(args or {})

    def __repr__(self) -> str:  # stable across runs: mapping fingerprints include it
        return f"{type(self).__module__}.{type(self).__qualname__}({self.args!r})"

    @property
    def name(self) -> str:
        return self.names[0] if self.names else type(self).__name__

    def accepts_bytes(self, data_type: str) -> bool:
        """True if `scim_converter(data_type)` takes any octets (else only UTF-8 text, and the
        mapping refuses an entry whose value is not: never text made of replacement signs)."""
        return False

    def check(self, data_type: str) -> str | None:
        """Why this transformation cannot serve `data_type`, or None if it can."""
        if data_type not in self.data_types:
            return f"{self.name} cannot be used on {data_type} data"
        return None

    def to_scim(self, value: LdapValue, data_type: str = "string") -> Any:
        return self.scim_converter(data_type)(value)

    def to_ldap(self, value: Any, data_type: str = "string") -> LdapValue:
        raise NotImplementedError

    def normalize(self, value: Any, data_type: str = "string") -> Any:
        return self.normalizer(data_type)(value)

    def to_ldap_filter_value(self, value: str, data_type: str = "string") -> str:
        out = self.to_ldap(value, data_type)
        return out.decode("utf-8", "replace") if isinstance(out, bytes) else out

    def scim_converter(self, data_type: str) -> ToScim:
        """A function turning one LDAP value into its SCIM value."""
        raise NotImplementedError

    def normalizer(self, data_type: str) -> Normalize:
        """A function turning a SCIM value into its canonical comparable form (None = absent)."""
        return NORMALIZERS[data_type]


# --- helpers shared by the transformations --------------------------------------------------


def as_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def ldap_text(value: Any, attribute: str = "") -> str:
    """An LDAP value as text. The reader gives values that are not UTF-8 as bytes (a photo, a
    certificate, a mis-encoded name): those raise BinaryValueError naming `attribute`."""
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BinaryValueError(
                f"LDAP attribute {attribute or '(unnamed)'} holds a binary value "
                f"({len(value)} bytes that are not UTF-8 text), which is never sent as text; "
                f'to send it as base64, declare transform="{BASE64_TRANSFORMATION}" on its mapping'
            ) from None
    return str(value)


_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def parse_boolean(value: Any) -> bool:
    """LDAP and JSON spellings of a boolean (as the UnboundID LDAP SDK reads them)."""
    if isinstance(value, bool):
        return value
    text = as_text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformationError(f"not a boolean: {as_text(value)!r}")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def normalize_string(value: Any) -> str | None:
    """Whitespace-insensitive form: trimmed, runs of blanks collapsed, line by line."""
    if value is None:
        return None
    text = value if type(value) is str else as_text(value)
    if "\n" in text or "\r" in text:
        lines = [" ".join(line.split()) for line in _LINE_BREAK.split(text)]
        text = "\n".join(lines).strip("\n")
    else:
        text = " ".join(text.split())
    return text or None


def normalize_boolean(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    return parse_boolean(value)


def normalize_integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(as_text(value).strip())
    except ValueError as exc:
        raise TransformationError(f"not an integer: {value!r}") from exc


def normalize_binary(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    try:
        return base64.b64encode(base64.b64decode(as_text(value).strip(), validate=False)).decode(
            "ascii"
        )
    except (binascii.Error, ValueError) as exc:
        raise TransformationError(f"not base64 data: {value!r}") from exc


# --- date and time ----------------------------------------------------------------------------

_GENERALIZED_TIME = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:[.,](?P<f>\d+))?(?P<tz>Z|[+-]\d{2}(?:\d{2})?)?$",
    re.IGNORECASE,
)


def parse_generalized_time(text: str) -> datetime:
    """RFC 4517 GeneralizedTime -> aware datetime (a missing zone is read as UTC)."""
    match = _GENERALIZED_TIME.match(text.strip())
    if not match:
        raise TransformationError(f"not a generalized time: {text!r}")
    g = match.groupdict()
    base = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), tzinfo=UTC)
    # The fraction applies to the last unit given (hour, minute or second).
    fraction = float(f"0.{g['f']}") if g["f"] else 0.0
    if g["mi"] is None:
        delta = timedelta(hours=fraction)
    elif g["s"] is None:
        delta = timedelta(minutes=int(g["mi"]) + fraction)
    else:
        delta = timedelta(minutes=int(g["mi"]), seconds=int(g["s"]) + fraction)
    moment = base + delta
    tz = (g["tz"] or "Z").upper()
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5] or 0))
        moment = moment.replace(tzinfo=timezone(sign * offset))
    return moment.astimezone(UTC)


def parse_datetime(value: Any) -> datetime:
    """A SCIM dateTime (RFC 3339 / xsd:dateTime), lenient about case, 'Z' and a space separator.

    A value without a zone is read as UTC; LDAP generalized time is accepted too.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = as_text(value).strip()
        if _GENERALIZED_TIME.match(text):
            return parse_generalized_time(text)
        iso = text.upper().replace(" ", "T", 1)
        if iso.endswith("Z"):
            iso = iso[:-1] + "+00:00"
        # fromisoformat takes at most 6 fraction digits.
        iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError as exc:
            raise TransformationError(f"not a dateTime: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_rfc3339(moment: datetime) -> str:
    """UTC, 'Z', and fractional seconds only when there are any (trailing zeros dropped)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_generalized_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def normalize_datetime(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return format_rfc3339(parse_datetime(value))


NORMALIZERS: dict[str, Normalize] = {
    "string": normalize_string,
    "boolean": normalize_boolean,
    "integer": normalize_integer,
    "binary": normalize_binary,
    "dateTime": normalize_datetime,
}


# --- the transformations ----------------------------------------------------------------------


def _to_int(value: LdapValue) -> int:
    try:
        return int(as_text(value).strip())
    except ValueError as exc:
        raise TransformationError(f"not an integer: {as_text(value)!r}") from exc


def _to_base64(value: LdapValue) -> str:
    raw = value if isinstance(value, bytes) else as_text(value).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _to_datetime(value: LdapValue) -> str:
    return format_rfc3339(parse_generalized_time(as_text(value)))


class DefaultTransformation(Transformation):
    """Values copied; booleans, integers and base64 binary converted by data type.

    Ping's class refuses dateTime; we read dateTime values as generalized time instead, since
    that is the only time syntax an LDAP attribute has.
    """

    names = ("com.unboundid.scim.ldap.DefaultTransformation", "DefaultTransformation")

    def accepts_bytes(self, data_type: str) -> bool:
        return data_type == "binary"

    def scim_converter(self, data_type: str) -> ToScim:
        return {
            "string": ldap_text,
            "boolean": parse_boolean,
            "integer": _to_int,
            "binary": _to_base64,
            "dateTime": _to_datetime,
        }[data_type]

    def to_ldap(self, value: Any, data_type: str = "string") -> LdapValue:
        if data_type == "boolean":
            return "TRUE" if parse_boolean(value) else "FALSE"
        if data_type == "binary":
            return value if isinstance(value, bytes) else base64.b64decode(as_text(value))
        if data_type == "dateTime":
            return format_generalized_time(parse_datetime(value))
        return as_text(value)


class Base64Transformation(Transformation):
    """Our own addition (Ping's SDK has none): every LDAP value as its base64 text.

    For attributes that hold octets (jpegPhoto, userCertificate, values that are not UTF-8)
    mapped to a SCIM string or binary attribute: the value goes as it is, never as text made
    of replacement signs. A text value is encoded from its UTF-8 form.
    """

    names = (BASE64_TRANSFORMATION, "Base64Transformation")
    data_types = ("string", "binary")

    def accepts_bytes(self, data_type: str) -> bool:
        return True

    def scim_converter(self, data_type: str) -> ToScim:
        return _to_base64

    def to_ldap(self, value: Any, data_type: str = "string") -> bytes:
        try:
            return base64.b64decode(as_text(value).strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TransformationError(f"not base64 data: {value!r}") from exc

    def normalizer(self, data_type: str) -> Normalize:
        return normalize_binary


class BooleanTransformation(Transformation):
    """LDAP Boolean syntax (TRUE/FALSE) <-> JSON boolean; a child element `<invert/>` negates."""

    names = ("com.unboundid.scim.ldap.BooleanTransformation", "BooleanTransformation")
    data_types = ("boolean",)
    inverted: ClassVar[bool] = False

    def __init__(self, args: Mapping[str, str] | None = None) -> None:
        super().__init__(args)
        invert = self.args.get("invert")
        self.invert = self.inverted or (invert is not None and invert.strip().lower() not in _FALSE)

    def scim_converter(self, data_type: str) -> ToScim:
        if self.invert:
            return lambda value: not parse_boolean(value)
        return parse_boolean

    def to_ldap(self, value: Any, data_type: str = "boolean") -> str:
        return "TRUE" if parse_boolean(value) != self.invert else "FALSE"


class NegatedBooleanTransformation(BooleanTransformation):
    """Our own addition: LDAP TRUE <-> SCIM false (e.g. `active` from `nsAccountLock`)."""

    names = ("toolkit.mapping.NegatedBooleanTransformation", "NegatedBooleanTransformation")
    inverted = True


class AccountEnabledTransformation(Transformation):
    """Our own addition: Active Directory's userAccountControl -> SCIM `active`, true unless
    the ACCOUNTDISABLE bit (0x2) is set. Back to LDAP a normal account (512), disabled or
    not (514): the other bits are AD's to keep, so a mapping should not write this back."""

    names = ("toolkit.mapping.AccountEnabledTransformation", "AccountEnabledTransformation")
    data_types = ("boolean",)
    DISABLED = 0x2

    def scim_converter(self, data_type: str) -> ToScim:
        return self._active

    def _active(self, value: LdapValue) -> bool:
        try:
            return not int(as_text(value).strip()) & self.DISABLED
        except ValueError:
            raise TransformationError(
                f"userAccountControl value {as_text(value)!r} is not an integer"
            ) from None

    def to_ldap(self, value: Any, data_type: str = "boolean") -> str:
        return "512" if parse_boolean(value) else "514"


class GeneralizedTimeTransformation(Transformation):
    """LDAP GeneralizedTime <-> SCIM dateTime (RFC 3339, always given in UTC)."""

    names = (
        "com.unboundid.scim.ldap.GeneralizedTimeTransformation",
        "GeneralizedTimeTransformation",
    )
    data_types = ("dateTime",)

    def scim_converter(self, data_type: str) -> ToScim:
        return _to_datetime

    def to_ldap(self, value: Any, data_type: str = "dateTime") -> str:
        return format_generalized_time(parse_datetime(value))


class PostalAddressTransformation(Transformation):
    """RFC 4517 Postal Address: `$` separates lines; `\\` and `$` inside a line are `\\5C`, `\\24`."""

    names = (
        "com.unboundid.scim.ldap.PostalAddressTransformation",
        "PostalAddressTransformation",
    )
    data_types = ("string",)

    def scim_converter(self, data_type: str) -> ToScim:
        return postal_to_scim

    def to_ldap(self, value: Any, data_type: str = "string") -> str:
        return postal_to_ldap(as_text(value))


def postal_to_ldap(text: str) -> str:
    out = text.replace("\\", "\\5C").replace("$", "\\24")
    return _LINE_BREAK.sub("$", out)


_POSTAL_TOKEN = re.compile(r"\\(5C|24)|\$", re.IGNORECASE)


def postal_to_scim(value: LdapValue) -> str:
    text = as_text(value)
    if "\\" not in text:
        return text.replace("$", "\n")

    def token(match: re.Match[str]) -> str:
        code = match.group(1)
        if code is None:
            return "\n"
        return "\\" if code.upper() == "5C" else "$"

    # An invalid escape (a backslash not followed by 5C or 24) passes untouched, as in Ping.
    return _POSTAL_TOKEN.sub(token, text)


class TelephoneNumberTransformation(Transformation):
    """LDAP Telephone Number (E.123, `+1 512 555 1234 ext. 56`) <-> RFC 3966 (`tel:+1-512-...`).

    Spaces become hyphens and back, only digits, hyphens/spaces and a leading `+` are kept, and
    an extension in any of libphonenumber's spellings (`ext`, `x`, `#`, `;ext=`, ...) is kept.
    """

    names = (
        "com.unboundid.scim.ldap.TelephoneNumberTransformation",
        "TelephoneNumberTransformation",
    )
    data_types = ("string",)

    def scim_converter(self, data_type: str) -> ToScim:
        return phone_to_rfc3966

    def to_ldap(self, value: Any, data_type: str = "string") -> str:
        return phone_to_e123(as_text(value))

    def normalizer(self, data_type: str) -> Normalize:
        return normalize_phone


# The extension patterns of libphonenumber, as used by the SDK's TelephoneNumberTransformation.
_EXT_DIGITS = r"(\d{1,7})"
_EXTENSION = re.compile(
    r"(?:;ext="
    + _EXT_DIGITS
    + r"|[ \u00a0\t,]*"
    + r"(?:e?xt(?:ensi(?:o\u0301?|\u00f3))?n?|\uff45?\uff58\uff54\uff4e?"
    + r"|[,x\uff58#\uff03~\uff5e]|int|anexo|\uff49\uff4e\uff54)"
    + r"[:\.\uff0e]?[ \u00a0\t,-]*"
    + _EXT_DIGITS
    + r"#?|[- ]+(\d{1,5})#)$",
    re.IGNORECASE,
)


def split_extension(number: str) -> tuple[str, str]:
    """(number without extension, extension digits or "")."""
    match = _EXTENSION.search(number)
    if match and match.start() >= 2:
        extension = next((group for group in match.groups() if group), "")
        if extension:
            return number[: match.start()], extension
    return number, ""


# Characters that can never start an extension: numbers made of these alone skip the regex.
_PLAIN_PHONE = str.maketrans("", "", "0123456789 +-().")
# ASCII digits and '-' stay, ' ' becomes '-', everything else goes.
_TO_RFC3966: dict[int, str | None] = {
    c: None for c in range(128) if not chr(c).isdigit() and chr(c) != "-"
}
_TO_RFC3966[ord(" ")] = "-"
_DIGITS_ONLY: dict[int, str | None] = {c: None for c in range(128) if not chr(c).isdigit()}


def phone_to_rfc3966(value: LdapValue) -> str:
    text = as_text(value)
    if text.translate(_PLAIN_PHONE):
        number, extension = split_extension(text)
    else:
        number, extension = text, ""
    # A value already in RFC 3966 form stays as it is (Ping would drop its `+`).
    number = _strip_tel(number.strip())
    if number.isascii():
        plus = "+" if number.startswith("+") else ""
        text = "tel:" + plus + (number[1:] if plus else number).translate(_TO_RFC3966)
    else:
        out = []
        for i, char in enumerate(number):
            if char == " ":
                out.append("-")
            elif (i == 0 and char == "+") or char == "-" or char.isdecimal():
                out.append(char)
        text = "tel:" + "".join(out)
    return f"{text};ext={extension}" if extension else text


def _strip_tel(number: str) -> str:
    return number[4:] if number[:4].lower() == "tel:" else number


def phone_to_e123(text: str) -> str:
    number, extension = split_extension(text)
    number = _strip_tel(number.strip())
    out = []
    for i, char in enumerate(number):
        if char == "-":
            out.append(" ")
        elif (i == 0 and char == "+") or char == " " or char.isdecimal():
            out.append(char)
    result = "".join(out)
    return f"{result} ext. {extension}" if extension else result


def normalize_phone(value: Any) -> str | None:
    """`tel:` + a leading `+` and digits only (+ `;ext=N`): formatting never counts as a change."""
    if value is None:
        return None
    text = _strip_tel(as_text(value).strip())
    if text.translate(_PLAIN_PHONE):
        number, extension = split_extension(text)
        number = number.strip()
        # RFC 3966 parameters other than the extension (e.g. ;phone-context=) are not the number.
        number = number.split(";", 1)[0]
    else:
        number, extension = text, ""
    if number.isascii():
        digits = number.translate(_DIGITS_ONLY)
    else:
        digits = "".join(c for c in number if c.isdecimal())
    if not digits:
        return normalize_string(value)
    plus = "+" if number.lstrip().startswith("+") else ""
    text = f"tel:{plus}{digits}"
    return f"{text};ext={extension}" if extension else text


# --- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, type[Transformation]] = {}


def register_transformation(cls: type[Transformation], *names: str) -> type[Transformation]:
    """Make a transformation class usable in `transform="NAME"` (its `names` and any others)."""
    for name in (*cls.names, *names):
        _REGISTRY[name] = cls
    return cls


for _cls in (
    DefaultTransformation,
    Base64Transformation,
    BooleanTransformation,
    NegatedBooleanTransformation,
    AccountEnabledTransformation,
    GeneralizedTimeTransformation,
    PostalAddressTransformation,
    TelephoneNumberTransformation,
):
    register_transformation(_cls)


def transformation_class(name: str) -> type[Transformation] | None:
    return _REGISTRY.get(name.strip())


def create_transformation(
    name: str | None, args: Mapping[str, str] | None = None
) -> Transformation:
    """An instance for a `transform` attribute value (None = DefaultTransformation)."""
    if not name:
        return DefaultTransformation(args)
    cls = transformation_class(name)
    if cls is None:
        known = ", ".join(sorted(n for n in _REGISTRY if "." in n))
        raise KeyError(f"unknown transformation class {name!r} (known: {known})")
    return cls(args)
