"""Tests for schemas.identifiers: rules, property tests, pydantic types, masking."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reissue.schemas.identifiers import (
    CREDIT_CODE_ALPHABET,
    CURRENT_DISTRICTS,
    HISTORIC_DISTRICTS,
    CardNumber,
    CreditCode,
    DistrictCode,
    MobileNumber,
    ResidentId,
    credit_code_check_char,
    mask_card_number,
    mask_mobile,
    mask_name,
    mask_personal_text,
    mask_resident_id,
    normalise_card_number,
    normalise_credit_code,
    normalise_district,
    normalise_mobile,
    normalise_resident_id,
    resident_id_check_char,
    today_for_validation,
)
from reissue.workers.logging import mask_text

TODAY = datetime.date(2025, 6, 1)
VALID_IDS = ["11010519491231002X", "440524188001010014"]
VALID_CREDIT_CODES = ["91310110666007217T", "91310115591693856A"]
ID_CHECK_CHARS = "0123456789X"


def _nid(value: str) -> str:
    return normalise_resident_id(value, today=TODAY)


# --------------------------------------------------------------------------
# Resident ID
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_resident_ids_accepted(value: str) -> None:
    assert _nid(value) == value
    assert resident_id_check_char(value[:17]) == value[17]


def test_resident_id_lowercase_x_and_whitespace_normalised() -> None:
    assert _nid("  11010519491231002x\n") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010519491231002", "must be 18 characters"),
        ("11010519491231002XX", "must be 18 characters"),
        ("", "must be 18 characters"),
        ("1101051949123100AX", "17 digits followed by a digit or 'X'"),
        ("11010519491231002Y", "17 digits followed by a digit or 'X'"),
        ("１１0105194912310024", "17 digits followed by a digit or 'X'"),  # full-width
        ("11010519491231002X".replace("1", "0", 1), "address code must not start with 0"),
        ("110105194912310021", "check character does not match the number (ISO 7064 MOD 11-2)"),
        ("440524188001010015", "check character does not match"),
    ],
)
def test_resident_id_rules(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _nid(value)


def _with_check(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def test_resident_id_impossible_date() -> None:
    with pytest.raises(ValueError, match=r"birth date \(digits 7-14\) is not a real date"):
        _nid(_with_check("11010519990230001"))
    with pytest.raises(ValueError, match=r"birth date \(digits 7-14\) is not a real date"):
        _nid(_with_check("11010519991301001"))


def test_resident_id_future_date_uses_explicit_today() -> None:
    value = _with_check("11010520250602001")
    with pytest.raises(ValueError, match=r"birth date \(digits 7-14\) is in the future"):
        normalise_resident_id(value, today=datetime.date(2025, 6, 1))
    # Born on "today" is fine.
    assert normalise_resident_id(value, today=datetime.date(2025, 6, 2)) == value


def test_resident_id_before_1800_refused() -> None:
    with pytest.raises(ValueError, match="before 1800-01-01"):
        _nid(_with_check("11010517991231001"))
    assert _nid(_with_check("11010518000101001")).startswith("110105")


def test_resident_id_region_code_not_checked() -> None:
    # Any 6 digits starting 1-9 are fine, including codes that do not exist.
    value = _with_check("99999919800101001")
    assert _nid(value) == value


def test_resident_id_check_char_rejects_bad_body() -> None:
    for body in ["1234", "1101051949123100X", "1101051949123100２"]:
        with pytest.raises(ValueError):
            resident_id_check_char(body)


@st.composite
def resident_id_bodies(draw: st.DrawFn) -> str:
    address = draw(st.from_regex(r"[1-9][0-9]{5}", fullmatch=True))
    birth = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2020, 12, 31)))
    sequence = draw(st.integers(0, 999))
    return f"{address}{birth:%Y%m%d}{sequence:03d}"


@given(resident_id_bodies(), st.sampled_from(ID_CHECK_CHARS))
def test_resident_id_check_char_property(body: str, other: str) -> None:
    check = resident_id_check_char(body)
    # Independent oracle (ISO 7064 MOD 11-2): with weights 2**(17 - i) mod 11 and
    # X = 10, the weighted sum over all 18 characters is 1 mod 11.
    digits = [int(c) for c in body] + [10 if check == "X" else int(check)]
    assert sum(d * pow(2, 17 - i, 11) for i, d in enumerate(digits)) % 11 == 1
    assert _nid(body + check) == body + check
    if check == "X":
        assert _nid(body + "x") == body + "X"
    if other != check:
        with pytest.raises(ValueError, match="check character"):
            _nid(body + other)


# --------------------------------------------------------------------------
# Unified social credit code
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_CREDIT_CODES)
def test_valid_credit_codes_accepted(value: str) -> None:
    assert normalise_credit_code(value) == value
    assert normalise_credit_code(f" {value.lower()} ") == value
    assert credit_code_check_char(value[:17]) == value[17]


def test_credit_code_alphabet() -> None:
    assert len(CREDIT_CODE_ALPHABET) == 31
    assert not set("IOSVZ") & set(CREDIT_CODE_ALPHABET)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("91310110666007217", "must be 18 characters"),
        ("91310110666007217TT", "must be 18 characters"),
        ("91310110666007217A", "check character must be 'T'"),
        ("91310115591693856B", "check character must be 'A'"),
        ("9131011066600721-T", "may only contain characters from"),
        ("91310110666007217é", "may only contain characters from"),
    ],
)
def test_credit_code_rules(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_credit_code(value)


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_credit_code_forbidden_letters(letter: str) -> None:
    value = "9131011066600721" + letter + "T"
    with pytest.raises(ValueError, match=f"must not contain the letters I, O, S, V or Z.*{letter}"):
        normalise_credit_code(value)
    with pytest.raises(ValueError, match="must not contain"):
        normalise_credit_code(value.lower())


def test_credit_code_check_char_rejects_bad_body() -> None:
    for body in ["913101106660072", "9131011066600721I", "9131011066600721t"]:
        with pytest.raises(ValueError):
            credit_code_check_char(body)


@given(
    st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=17, max_size=17),
    st.sampled_from(CREDIT_CODE_ALPHABET),
)
def test_credit_code_check_char_property(body: str, other: str) -> None:
    check = credit_code_check_char(body)
    assert check in CREDIT_CODE_ALPHABET
    # Independent oracle: weights are 3**i mod 31 and the check value makes the
    # weighted body sum plus the check value a multiple of 31.
    values = [CREDIT_CODE_ALPHABET.index(c) for c in body]
    total = sum(v * pow(3, i, 31) for i, v in enumerate(values))
    assert (total + CREDIT_CODE_ALPHABET.index(check)) % 31 == 0
    assert normalise_credit_code(body + check) == body + check
    assert normalise_credit_code((body + check).lower()) == body + check
    if other != check:
        with pytest.raises(ValueError, match="check character"):
            normalise_credit_code(body + other)


# --------------------------------------------------------------------------
# Mobile number, card number, district
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        " 138 1234 5678 ",
        "138-1234-5678",
        "+8613812345678",
        "+86 138-1234-5678",
        "86 13812345678",
        "8613812345678",
    ],
)
def test_mobile_accepted_and_normalised(value: str) -> None:
    assert normalise_mobile(value) == "13812345678"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12812345678", "must start with 13-19"),
        ("10812345678", "must start with 13-19"),
        ("+8612812345678", "must start with 13-19"),
        ("86123456789", "must start with 13-19"),
        ("1381234567", "must be 11 digits"),
        ("138123456789", "must be 11 digits"),
        ("", "must be 11 digits"),
        ("138.1234.5678", "may only contain digits"),
        ("(+86)13812345678", "may only contain digits"),
        ("１３８12345678", "may only contain digits"),
    ],
)
def test_mobile_rules(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_mobile(value)


def test_card_number_accepted_and_normalised() -> None:
    assert normalise_card_number("A12345678") == "A12345678"
    assert normalise_card_number(" a1234567b\t") == "A1234567B"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("A1234567", "must be 9 characters"),
        ("A123456789", "must be 9 characters"),
        ("A1234-678", "may only contain letters A-Z and digits"),
        ("A1234 678", "may only contain letters A-Z and digits"),
        ("Ä12345678", "may only contain letters A-Z and digits"),
    ],
)
def test_card_number_rules(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_card_number(value)


def test_district_tables_loaded() -> None:
    assert len(CURRENT_DISTRICTS) == 38
    assert CURRENT_DISTRICTS["500103"] == "渝中区"
    assert "500222" in HISTORIC_DISTRICTS
    with pytest.raises(TypeError):
        CURRENT_DISTRICTS["500999"] = "x"  # type: ignore[index]


def test_district_current_accepted() -> None:
    assert normalise_district("500103") == "500103"
    assert normalise_district(" 500112 ") == "500112"
    # Codes reused after a merger are current even though also listed as historic.
    assert normalise_district("500110") == "500110"


def test_district_historic_refused() -> None:
    with pytest.raises(ValueError, match="historic code, not a current district"):
        normalise_district("500222")


def test_district_unknown_refused() -> None:
    with pytest.raises(ValueError, match="500999 is not a Chongqing district"):
        normalise_district("500999")


@pytest.mark.parametrize("value", ["50010", "5001033", "50010A", ""])
def test_district_shape(value: str) -> None:
    with pytest.raises(ValueError, match="must be 6 digits"):
        normalise_district(value)


# --------------------------------------------------------------------------
# Any text: a normaliser returns a fixed point or raises ValueError
# --------------------------------------------------------------------------

NORMALISERS: list[Callable[[str], str]] = [
    _nid,
    normalise_credit_code,
    normalise_mobile,
    normalise_card_number,
    normalise_district,
]


@pytest.mark.parametrize("normalise", NORMALISERS)
@given(text=st.text())
def test_normalisers_idempotent_or_value_error(normalise: Callable[[str], str], text: str) -> None:
    try:
        result = normalise(text)
    except ValueError:
        return
    assert normalise(result) == result
    assert result.isascii()


@given(text=st.text())
def test_check_char_functions_only_raise_value_error(text: str) -> None:
    for func in (resident_id_check_char, credit_code_check_char):
        try:
            func(text)
        except ValueError:
            pass


# --------------------------------------------------------------------------
# Pydantic types
# --------------------------------------------------------------------------


class Applicant(pydantic.BaseModel):
    resident_id: ResidentId
    company: CreditCode
    mobile: MobileNumber
    card_number: CardNumber
    district: DistrictCode


GOOD = {
    "resident_id": "11010519491231002x",
    "company": "91310110666007217t",
    "mobile": "+86 138-1234-5678",
    "card_number": "a12345678",
    "district": "500103",
}


def test_model_accepts_and_normalises() -> None:
    applicant = Applicant.model_validate(GOOD)
    assert applicant.model_dump() == {
        "resident_id": "11010519491231002X",
        "company": "91310110666007217T",
        "mobile": "13812345678",
        "card_number": "A12345678",
        "district": "500103",
    }


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("resident_id", "110105194912310021", "check character"),
        ("resident_id", _with_check("11010530000101001"), "in the future"),
        ("company", "91310110666007217A", "check character"),
        ("mobile", "12812345678", "must start with 13-19"),
        ("card_number", "A1234567", "must be 9 characters"),
        ("district", "500222", "historic code"),
        ("district", 500103, "string"),
    ],
)
def test_model_rejects_bad_value_on_field(field: str, bad: object, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Applicant.model_validate({**GOOD, field: bad})
    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == (field,)
    assert message in errors[0]["msg"]


def test_json_schema_has_descriptions_and_examples() -> None:
    props = Applicant.model_json_schema()["properties"]
    for name in GOOD:
        assert props[name]["type"] == "string"
        assert props[name]["description"]
        assert props[name]["examples"]
    assert props["resident_id"]["examples"] == VALID_IDS


def test_today_for_validation_outside_workflow() -> None:
    before = datetime.datetime.now(datetime.UTC).date()
    today = today_for_validation()
    after = datetime.datetime.now(datetime.UTC).date()
    assert before <= today <= after


# --------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------


def test_mask_examples() -> None:
    assert mask_resident_id("11010519491231002X") == "110105***********X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_card_number("A12341234") == "*****1234"
    assert mask_name("张三丰") == "张**"
    assert mask_name("张三") == "张*"
    assert mask_name("张") == "*"
    assert mask_name("") == ""


@pytest.mark.parametrize(
    ("typed", "masked"),
    [
        ("11010519491231002x", "110105***********X"),
        ("+86 138-1234-5678", "138****5678"),
        ("１３８１２３４５６７８", "138****5678"),  # full-width digits, as a Chinese IME types them
    ],
)
def test_logs_and_timelines_mask_typed_ids_and_mobiles_alike(typed: str, masked: str) -> None:
    # One masking of free text: what a timeline shows is what a log line keeps.
    text = f"备注：申请人{typed}，已联系"
    assert mask_personal_text(text) == f"备注：申请人{masked}，已联系"
    assert mask_text(text) == mask_personal_text(text)


@given(resident_id_bodies())
def test_mask_resident_id_property(body: str) -> None:
    value = _with_check(body)
    masked = mask_resident_id(value)
    assert masked != value
    assert len(masked) == 18
    assert masked[:6] == value[:6]
    assert masked[-1] == value[-1]
    assert set(masked[6:-1]) == {"*"}


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_mask_mobile_property(value: str) -> None:
    masked = mask_mobile(value)
    assert masked != value
    assert masked[:3] == value[:3]
    assert masked[-4:] == value[-4:]
    assert masked[3:7] == "****"


@given(st.from_regex(r"[A-Z0-9]{9}", fullmatch=True))
def test_mask_card_number_property(value: str) -> None:
    masked = mask_card_number(value)
    assert masked != value
    assert masked == "*****" + value[-4:]


@given(st.text(alphabet=st.characters(exclude_characters="*"), min_size=1))
def test_mask_name_property(name: str) -> None:
    masked = mask_name(name)
    stripped = name.strip()
    assert masked != name
    assert len(masked) == len(stripped)
    if len(stripped) > 1:
        assert masked[0] == stripped[0]
        assert set(masked[1:]) == {"*"}
    else:
        assert set(masked) <= {"*"}


@pytest.mark.parametrize("mask", [mask_resident_id, mask_mobile, mask_card_number])
@given(text=st.text(alphabet=st.characters(exclude_characters="*"), min_size=1))
def test_masks_never_return_unmasked_input(mask: Callable[[str], str], text: str) -> None:
    # Values of an unexpected length are masked completely.
    masked = mask(text)
    assert masked != text
    assert len(masked) == len(text)
