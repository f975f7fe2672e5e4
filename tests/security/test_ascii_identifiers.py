"""Every identifier of the contract takes ASCII digits only: a school code, a resident
ID, an order number, a staff ID... written with full-width, Arabic-Indic or any other
Unicode digits is refused, and the refusal names the field. (Pydantic's patterns run
in Rust's regex, where `\\d` is any Unicode digit; `[0-9]` is ASCII.)"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from reissue.api.models import PaymentNotice
from reissue.schemas.partner import Cancellation, FoundCard
from tests.security.test_input_properties import EXAMPLES, MODELS, _leaves

# The partner API's own bodies beside the contract's models, and the optional
# identifiers the shared examples leave out.
BODIES: dict[str, type[BaseModel]] = MODELS | {
    "FoundCard": FoundCard,
    "Cancellation": Cancellation,
    "PaymentNotice": PaymentNotice,
}
SAMPLES: dict[str, dict[str, Any]] = copy.deepcopy(EXAMPLES) | {
    "FoundCard": {"resident_id": "11010519491231002X", "channel": "counter", "note": "desk"},
    "Cancellation": {"reason": "insured_elsewhere"},
    "PaymentNotice": {
        "case_id": "reissue-3f9c2a71b0d4e8c5",
        "payment": EXAMPLES["PaymentConfirmation"],
    },
}
SAMPLES["CardProduced"]["card_id_code"] = "0123456789ABCDEF0123456789ABCDEF"
SAMPLES["ReviewRelease"]["held_by"] = "rev-1"
SAMPLES["CaseInput"]["affiliation"] = {
    "kind": "school",
    "name": "重庆市第一中学",
    "code": "4150010611",
}
EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}
SAMPLES["CaseInputEmployer"] = copy.deepcopy(SAMPLES["CaseInput"]) | {
    "affiliation": EMPLOYER,
    "insured_category": "urban_employee",
}
BODIES["CaseInputEmployer"] = BODIES["CaseInput"]

# Free text, where any character a person types is fine.
FREE_TEXT = {"name", "note", "reason", "reasons", "waiver_reason", "reference"}
# Identifier types checked by a function, not a pattern (they show no `pattern`).
CHECKED_IDENTIFIERS = {
    "resident_id",
    "mobile",
    "card_number",
    "new_card_number",
    "credit_code",
    "district",
}
# ASCII 0-9 in other scripts: each family's zero; its nine follow it.
DIGIT_FAMILIES = {
    "full-width": "０",
    "Arabic-Indic": "٠",
    "Extended Arabic-Indic": "۰",
    "Devanagari": "०",
    "Bengali": "০",
    "Thai": "๐",
    "mathematical bold": "𝟎",
}
ASCII_DIGIT = re.compile(r"[0-9]")


def _in_family(text: str, zero: str) -> str:
    return ASCII_DIGIT.sub(lambda m: chr(ord(zero) + int(m.group())), text)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _put(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _identifier_leaves() -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(body, path) of every string leaf of the samples that holds an ASCII digit and is
    not free text: identifiers, and the times and durations beside them."""
    for name, sample in sorted(SAMPLES.items()):
        for path in _leaves(sample):
            value = _get(sample, path)
            named = [p for p in path if isinstance(p, str)]
            if isinstance(value, str) and ASCII_DIGIT.search(value) and named[-1] not in FREE_TEXT:
                yield name, path


LEAVES = list(_identifier_leaves())


def _refused_on(model: type[BaseModel], data: dict[str, Any], path: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    locs = [err["loc"] for err in refused.value.errors()]
    # The field is named (a discriminated union adds its tag to the location).
    assert any(
        loc[-1] == path[-1] and [p for p in loc if p in path] == list(path) for loc in locs
    ), (path, locs)


def _schema_identifiers(schema: dict[str, Any], defs: dict[str, Any]) -> Iterator[str]:
    if "$ref" in schema:
        yield from _schema_identifiers(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _schema_identifiers(sub, defs)
    if "items" in schema:
        yield from _schema_identifiers(schema["items"], defs)
    for field, sub in schema.get("properties", {}).items():
        if "pattern" in sub or field in CHECKED_IDENTIFIERS:
            yield field
        yield from _schema_identifiers(sub, defs)


def test_every_identifier_of_the_contract_is_tried() -> None:
    tried = {(BODIES[name], [p for p in path if isinstance(p, str)][-1]) for name, path in LEAVES}
    for name, model in BODIES.items():
        schema = model.model_json_schema()
        for field in _schema_identifiers(schema, schema.get("$defs", {})):
            assert (model, field) in tried, f"{name}.{field}: add a sample with a digit"


@pytest.mark.parametrize("family", sorted(DIGIT_FAMILIES))
@pytest.mark.parametrize(("name", "path"), LEAVES, ids=[f"{n}.{p}" for n, p in LEAVES])
def test_identifiers_in_other_digits_are_refused_naming_the_field(
    name: str, path: tuple[Any, ...], family: str
) -> None:
    model, sample = BODIES[name], SAMPLES[name]
    model.model_validate(sample)  # the sample itself passes
    data = copy.deepcopy(sample)
    _put(data, path, _in_family(_get(sample, path), DIGIT_FAMILIES[family]))
    _refused_on(model, data, path)


def test_a_school_code_in_full_width_digits_is_refused() -> None:
    data = copy.deepcopy(SAMPLES["CaseInput"])
    data["affiliation"]["code"] = "１２３４５６７８９０"
    _refused_on(BODIES["CaseInput"], data, ("affiliation", "code"))


NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@settings(max_examples=300, deadline=None)
@given(leaf=st.sampled_from(LEAVES), data=st.data())
def test_any_unicode_digit_anywhere_in_an_identifier_is_refused(
    leaf: tuple[str, tuple[Any, ...]], data: st.DataObject
) -> None:
    name, path = leaf
    sample = copy.deepcopy(SAMPLES[name])
    value: str = _get(sample, path)
    positions = [m.start() for m in ASCII_DIGIT.finditer(value)]
    at = data.draw(st.sampled_from(positions))
    other = data.draw(NON_ASCII_DIGITS)
    _put(sample, path, value[:at] + other + value[at + 1 :])
    _refused_on(BODIES[name], sample, path)
