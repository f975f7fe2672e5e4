"""Validation, normalisation and masking of the identifiers used in card reissue.

Every ``normalise_*`` function takes raw user input, returns the canonical form
of the identifier and raises :class:`ValueError` with a message naming the rule
that failed.  Normalisers are idempotent: feeding a returned value back in
returns it unchanged.

The ``Annotated`` aliases (:data:`ResidentId`, :data:`CreditCode`,
:data:`MobileNumber`, :data:`CardNumber`, :data:`DistrictCode`) wrap the
normalisers for use as pydantic v2 field types, so a bad value surfaces as a
``pydantic.ValidationError`` on the field that holds it.

The ``mask_*`` helpers produce display/log-safe forms of personal data.

Only ASCII letters are upper-cased during normalisation (``str.upper`` would
turn e.g. the ligature ``"ﬀ"`` into ``"FF"``), and only ASCII digits count as
digits, so a normalised value is always plain ASCII.
"""

from __future__ import annotations

import datetime
import json
import re
import types
import unicodedata
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Final

from pydantic import AfterValidator, Field
from temporalio import workflow

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "CURRENT_DISTRICTS",
    "HISTORIC_DISTRICTS",
    "CardNumber",
    "CreditCode",
    "DistrictCode",
    "MobileNumber",
    "ResidentId",
    "credit_code_check_char",
    "mask_card_id_code",
    "mask_card_number",
    "mask_mobile",
    "mask_name",
    "mask_personal_text",
    "mask_resident_id",
    "normalise_card_number",
    "normalise_credit_code",
    "normalise_district",
    "normalise_mobile",
    "normalise_resident_id",
    "now_for_validation",
    "resident_id_check_char",
    "today_for_validation",
]

# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------

_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _clean_upper(value: str) -> str:
    """Strip surrounding whitespace and upper-case ASCII letters only."""
    return value.strip().translate(_ASCII_UPPER)


def now_for_validation() -> datetime.datetime:
    """Return the moment that "now" means when validating input.

    Inside a Temporal workflow the wall clock must not be read (it would make
    the workflow non-deterministic on replay), so the workflow's deterministic
    clock ``temporalio.workflow.now()`` is used there.  Everywhere else this is
    the current UTC time.
    """
    if workflow.in_workflow():
        return workflow.now()
    return datetime.datetime.now(datetime.UTC)


def today_for_validation() -> datetime.date:
    """Return the date that "today" means when validating birth dates (see above)."""
    return now_for_validation().date()


# --------------------------------------------------------------------------
# Resident ID number (GB 11643-1999)
# --------------------------------------------------------------------------

_RESIDENT_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_CHARS: Final = "10X98765432"
_RESIDENT_ID_SHAPE: Final = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS_17: Final = re.compile(r"[0-9]{17}")
_EARLIEST_BIRTH_DATE: Final = datetime.date(1800, 1, 1)


def resident_id_check_char(first17: str) -> str:
    """Return the GB 11643-1999 check character for the first 17 digits of a
    resident ID number (ISO 7064 MOD 11-2): ``'0'``-``'9'`` or ``'X'``.

    Raises :class:`ValueError` unless ``first17`` is exactly 17 ASCII digits.
    """
    if not _DIGITS_17.fullmatch(first17):
        raise ValueError("resident ID body must be exactly 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK_CHARS[total % 11]


def normalise_resident_id(value: str, *, today: datetime.date) -> str:
    """Validate an 18-character resident ID number and return it normalised.

    Surrounding whitespace is stripped and a lowercase ``x`` check character
    becomes ``X``.  The birth date (characters 7-14) must be a real calendar
    date, not before 1800-01-01 and not after ``today``.  The address code is
    not checked against any list (only its first digit must be 1-9), since IDs
    issued under old or other-province codes remain valid.

    Raises :class:`ValueError` naming the rule that failed.
    """
    v = _clean_upper(value)
    if len(v) != 18:
        raise ValueError(f"resident ID must be 18 characters, got {len(v)}")
    if not _RESIDENT_ID_SHAPE.fullmatch(v):
        raise ValueError("resident ID must be 17 digits followed by a digit or 'X'")
    if v[0] == "0":
        raise ValueError("resident ID address code must not start with 0")
    birth = v[6:14]
    try:
        birth_date = datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise ValueError("resident ID birth date (digits 7-14) is not a real date") from None
    if birth_date < _EARLIEST_BIRTH_DATE:
        raise ValueError("resident ID birth date (digits 7-14) is before 1800-01-01")
    if birth_date > today:
        raise ValueError("resident ID birth date (digits 7-14) is in the future")
    expected = resident_id_check_char(v[:17])
    if v[17] != expected:
        raise ValueError(
            "resident ID check character does not match the number (ISO 7064 MOD 11-2)"
        )
    return v


# --------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015)
# --------------------------------------------------------------------------

CREDIT_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of a unified social credit code, in value order 0-30."""

_CREDIT_CODE_VALUES: Final = {c: i for i, c in enumerate(CREDIT_CODE_ALPHABET)}
_CREDIT_CODE_WEIGHTS: Final = (
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
)  # fmt: skip
_CREDIT_CODE_FORBIDDEN: Final = "IOSVZ"


def credit_code_check_char(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters of
    a unified social credit code.

    ``first17`` must be 17 characters from :data:`CREDIT_CODE_ALPHABET`
    (upper case); otherwise :class:`ValueError` is raised.
    """
    if len(first17) != 17 or any(c not in _CREDIT_CODE_VALUES for c in first17):
        raise ValueError(
            f"credit code body must be exactly 17 characters from {CREDIT_CODE_ALPHABET}"
        )
    total = sum(
        _CREDIT_CODE_VALUES[c] * w for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(value: str) -> str:
    """Validate an 18-character unified social credit code and return it
    normalised (whitespace stripped, upper case).

    Only the alphabet and the check character are verified; the structure of
    the body (registration authority, entity type, division code, organisation
    code) is not.  Raises :class:`ValueError` naming the rule that failed.
    """
    v = _clean_upper(value)
    if len(v) != 18:
        raise ValueError(f"credit code must be 18 characters, got {len(v)}")
    forbidden = sorted({c for c in v if c in _CREDIT_CODE_FORBIDDEN})
    if forbidden:
        raise ValueError(
            f"credit code must not contain the letters I, O, S, V or Z "
            f"(found {', '.join(forbidden)})"
        )
    if any(c not in _CREDIT_CODE_VALUES for c in v):
        raise ValueError(f"credit code may only contain characters from {CREDIT_CODE_ALPHABET}")
    expected = credit_code_check_char(v[:17])
    if v[17] != expected:
        raise ValueError(
            f"credit code check character must be {expected!r} for this code (GB 32100-2015 MOD 31)"
        )
    return v


# --------------------------------------------------------------------------
# Mobile number, card number
# --------------------------------------------------------------------------

_MOBILE_SEPARATORS: Final = re.compile(r"[\s-]+")
_MOBILE_SHAPE: Final = re.compile(r"1[3-9][0-9]{9}")
_DIGITS: Final = re.compile(r"[0-9]*")


def normalise_mobile(value: str) -> str:
    """Validate a mainland China mobile number and return its bare 11 digits.

    Spaces and hyphens are removed and an optional ``+86`` or ``86`` country
    prefix is dropped; the rest must match ``1[3-9]`` followed by 9 digits.
    Raises :class:`ValueError` naming the rule that failed.
    """
    v = _MOBILE_SEPARATORS.sub("", value)
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("86") and len(v) == 13:
        v = v[2:]
    if not _DIGITS.fullmatch(v):
        raise ValueError("mobile number may only contain digits, spaces, hyphens and a +86 prefix")
    if len(v) != 11:
        raise ValueError(f"mobile number must be 11 digits, got {len(v)}")
    if not _MOBILE_SHAPE.fullmatch(v):
        raise ValueError("mobile number must start with 13-19")
    return v


_CARD_NUMBER_SHAPE: Final = re.compile(r"[A-Z0-9]{9}")


def normalise_card_number(value: str) -> str:
    """Validate a medical insurance card number and return it normalised.

    A card number is exactly 9 upper-case ASCII letters or digits; whitespace
    around it is stripped and lower-case letters are upper-cased.  Raises
    :class:`ValueError` naming the rule that failed.
    """
    v = _clean_upper(value)
    if len(v) != 9:
        raise ValueError(f"card number must be 9 characters, got {len(v)}")
    if not _CARD_NUMBER_SHAPE.fullmatch(v):
        raise ValueError("card number may only contain letters A-Z and digits")
    return v


# --------------------------------------------------------------------------
# Chongqing district codes (GB/T 2260)
# --------------------------------------------------------------------------


def _load_districts() -> tuple[Mapping[str, str], Mapping[str, str]]:
    # Read once at import time: inside the Temporal workflow sandbox, file
    # access is only refused at run time, not while modules are imported.
    path = resources.files("reissue.schemas").joinpath("data/chongqing-division-codes.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    current = {str(k): str(v) for k, v in data["current"].items()}
    historic = {str(k): str(v) for k, v in data["historic"].items()}
    return types.MappingProxyType(current), types.MappingProxyType(historic)


_DISTRICTS: Final = _load_districts()

CURRENT_DISTRICTS: Final[Mapping[str, str]] = _DISTRICTS[0]
"""Read-only map of current Chongqing district/county code -> Chinese name."""

HISTORIC_DISTRICTS: Final[Mapping[str, str]] = _DISTRICTS[1]
"""Read-only map of superseded Chongqing division code -> name/notes.

A few codes (500110, 500111) appear here and in :data:`CURRENT_DISTRICTS`
because they were reused after a merger; such a code counts as current.
"""

_DISTRICT_SHAPE: Final = re.compile(r"[0-9]{6}")


def normalise_district(value: str, *, reference_data: bool = True) -> str:
    """Validate the handling district and return its 6-digit code.

    The code must be a key of :data:`CURRENT_DISTRICTS`.  Historic codes are
    refused with a message saying so.  With ``reference_data=False`` only the
    shape is checked (a Chongqing code, ``500xxx``): what a recorded case holds
    must keep decoding after the list of current districts changes.  Raises
    :class:`ValueError` naming the rule that failed.
    """
    v = value.strip()
    if not _DISTRICT_SHAPE.fullmatch(v):
        raise ValueError("district code must be 6 digits")
    if not reference_data:
        if not v.startswith("500"):
            raise ValueError(f"district code {v} is not a Chongqing district or county")
        return v
    if v in CURRENT_DISTRICTS:
        return v
    if v in HISTORIC_DISTRICTS:
        raise ValueError(f"district code {v} is a historic code, not a current district")
    raise ValueError(f"district code {v} is not a Chongqing district or county")


# --------------------------------------------------------------------------
# Pydantic annotated types
# --------------------------------------------------------------------------


def _validate_resident_id(value: str) -> str:
    return normalise_resident_id(value, today=today_for_validation())


def _validate_district(value: str) -> str:
    # At the edge the code must be a current district; inside a workflow the
    # input was checked when the case opened (and that is in its history), so
    # only the shape is checked: replay must not depend on today's list.
    return normalise_district(value, reference_data=not workflow.in_workflow())


ResidentId = Annotated[
    str,
    AfterValidator(_validate_resident_id),
    Field(
        description=(
            "Resident ID number (GB 11643-1999): 18 characters, 6-digit address "
            "code, birth date YYYYMMDD, 3-digit sequence and a check character "
            "(digit or X) by ISO 7064 MOD 11-2. The birth date must be real and not "
            "in the future. Lowercase x and surrounding whitespace are accepted "
            "and normalised."
        ),
        examples=["11010519491231002X", "440524188001010014"],
    ),
]
"""Pydantic field type for a resident ID number; see :func:`normalise_resident_id`."""

CreditCode = Annotated[
    str,
    AfterValidator(normalise_credit_code),
    Field(
        description=(
            "Unified social credit code (GB 32100-2015): 18 characters from "
            "0-9 and A-Y without I, O, S, V, Z; the last one is a check "
            "character. Normalised to upper case."
        ),
        examples=["91310110666007217T", "91310115591693856A"],
    ),
]
"""Pydantic field type for a unified social credit code; see :func:`normalise_credit_code`."""

MobileNumber = Annotated[
    str,
    AfterValidator(normalise_mobile),
    Field(
        description=(
            "Mainland China mobile number. An optional +86/86 prefix, spaces "
            "and hyphens are accepted; normalised to the bare 11 digits."
        ),
        examples=["13812345678", "+86 138-1234-5678"],
    ),
]
"""Pydantic field type for a mobile number; see :func:`normalise_mobile`."""

CardNumber = Annotated[
    str,
    AfterValidator(normalise_card_number),
    Field(
        description=(
            "Medical insurance card number: exactly 9 letters or digits, normalised to upper case."
        ),
        examples=["A12345678", "K00001234"],
    ),
]
"""Pydantic field type for a card number; see :func:`normalise_card_number`."""

DistrictCode = Annotated[
    str,
    AfterValidator(_validate_district),
    Field(
        description=(
            "6-digit GB/T 2260 code of a current Chongqing district or county "
            "(historic codes are refused)."
        ),
        examples=["500103", "500112"],
    ),
]
"""Pydantic field type for a handling district; see :func:`normalise_district`."""


# --------------------------------------------------------------------------
# Masking for display and logs
# --------------------------------------------------------------------------


def _mask(value: str, keep_start: int, keep_end: int, length: int) -> str:
    """Keep ``keep_start``/``keep_end`` characters of a value of the expected
    ``length``; a value of any other length is masked entirely."""
    if len(value) != length:
        return "*" * len(value)
    middle = length - keep_start - keep_end
    return value[:keep_start] + "*" * middle + value[length - keep_end :]


def mask_resident_id(v: str) -> str:
    """Mask a normalised resident ID for display: keep the first 6 (address
    code) and the last character, e.g. ``110105***********X``.

    A value that is not 18 characters long is masked entirely.
    """
    return _mask(v, 6, 1, 18)


def mask_mobile(v: str) -> str:
    """Mask a normalised mobile number for display: keep the first 3 and last
    4 digits, e.g. ``138****5678``.

    A value that is not 11 characters long is masked entirely.
    """
    return _mask(v, 3, 4, 11)


def mask_card_number(v: str) -> str:
    """Mask a normalised card number for display: keep the last 4 characters,
    e.g. ``*****1234``.

    A value that is not 9 characters long is masked entirely.
    """
    return _mask(v, 0, 4, 9)


def mask_name(v: str) -> str:
    """Mask a person's name for display: keep the first character and replace
    the rest with ``*`` (``张三丰`` -> ``张**``); a one-character name becomes
    ``*``.  Surrounding whitespace is stripped first.
    """
    name = v.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


def mask_card_id_code(v: str) -> str:
    """Mask a card identification code (识别码, 32 characters) for display: keep the
    last 4 characters. A value that is not 32 characters long is masked entirely."""
    return _mask(v, 0, 4, 32)


# Resident ID numbers and mainland mobile numbers as people type them into free text
# (a mobile perhaps with +86 and spaces or hyphens), standing alone, not inside a
# longer code (Chinese characters may stand right beside them); any script's digits, since a masked look-alike is still personal data.
_ID_IN_TEXT: Final = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_MOBILE_IN_TEXT: Final = re.compile(
    r"(?<![\dA-Za-z+])(?:\+?86[ -]?)?(\d{3})[ -]?(\d{4})[ -]?(\d{4})(?![\dA-Za-z])"
)


def _masked_mobile(m: re.Match[str]) -> str:
    digits = "".join(str(unicodedata.digit(c)) for c in "".join(m.groups()))
    if digits[0] != "1" or digits[1] not in "3456789":
        return m.group(0)  # eleven digits, but not a mobile number
    return mask_mobile(digits)


def mask_personal_text(text: str) -> str:
    """Free text (a note, a reason someone typed) with every resident ID number and
    mobile number in it masked as `mask_resident_id` and `mask_mobile` mask them."""
    text = _ID_IN_TEXT.sub(lambda m: mask_resident_id(m.group(0).upper()), text)
    return _MOBILE_IN_TEXT.sub(_masked_mobile, text)
