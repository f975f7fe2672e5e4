"""Personal data never readable in Temporal without the key, nor in logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from pydantic import ValidationError
from temporalio.api.history.v1 import History
from temporalio.client import Client

from reissue.schemas.codec import ENCODING, EncryptionCodec, KeyRing, KeyRingError
from reissue.schemas.converter import data_converter
from reissue.schemas.enums import Stage
from reissue.workers.logging import configure_logging, mask_text
from reissue.workers.settings import Settings
from tests.support import TEST_CONVERTER, Stack, materials

EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}


async def _full_case(stack: Stack) -> tuple[str, dict[str, str]]:
    app, case, report = await stack.open_case(affiliation=EMPLOYER)
    await stack.client.submit_materials(case, materials(report, mode="instant"))
    await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    await stack.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    personal = {
        "resident ID": app.applicant.resident_id,
        "mobile": app.applicant.mobile,
        "name": app.applicant.name,
        "card number": app.card_number,
    }
    return case, personal


async def test_raw_history_holds_only_ciphertext(stack: Stack) -> None:
    case, personal = await _full_case(stack)
    # What someone with access to the Temporal server alone sees: no codec.
    plain = await Client.connect(
        stack.env.client.service_client.config.target_host, data_converter=data_converter()
    )
    history = await plain.get_workflow_handle(case).fetch_history()
    raw = History(events=history.events).SerializeToString()  # every payload's bytes, as stored
    for what, value in personal.items():
        assert value.encode() not in raw, f"{what} readable in the raw history"
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == ENCODING
    assert b"test2" == started.input.payloads[0].metadata["encryption-key-id"]
    # With the codec, the same history decodes.
    [inp] = await TEST_CONVERTER.decode(started.input.payloads, [dict])
    assert inp["applicant"]["resident_id"] == personal["resident ID"]
    assert inp["applicant"]["name"] == personal["name"]
    # IDs, search attributes and summaries carry none of it either.
    desc = await stack.client.handle(case).describe()
    shown = (
        json.dumps(
            {k.name: str(v) for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
        )
        + case
        + str(await desc.static_summary())
    )
    for what, value in personal.items():
        assert value not in shown, f"{what} in search attributes or summary"


async def test_a_full_case_logs_no_personal_data(stack: Stack) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level=logging.DEBUG, stream=out, cache_loggers=False)
    try:
        case, personal = await _full_case(stack)
        # Lines that quote personal data, from any logger, are masked on the way out.
        logging.getLogger("test").warning(
            "operator pasted %s and %s", personal["resident ID"], personal["mobile"]
        )
        structlog.get_logger("test").info(
            "lookup", name=personal["name"], note=f"name={personal['name']}"
        )
    finally:
        root = logging.getLogger()
        root.handlers.clear()
        structlog.reset_defaults()
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    steps = [line for line in lines if line["event"] == "step done"]
    assert len(steps) >= 15 and all(line["case_id"] == case for line in steps)
    for what, value in personal.items():
        if what != "card number":  # a card number is not personal on its own
            assert value not in text, f"{what} leaked into the logs"
    assert "operator pasted" in text and "***" in text


def test_mask_text_catches_ids_phones_and_names() -> None:
    masked = mask_text(
        "id 11010519491231002x tel +86 138-1234-5678, name=王小明 order PY2026112500000123"
    )
    assert "11010519491231002" not in masked and "1234-5678" not in masked
    assert "王小明" not in masked and "PY2026112500000123" in masked


async def test_key_rotation_and_unknown_keys() -> None:
    ring1 = KeyRing.generate("k1")
    ring2 = ring1.rotated("k2")
    assert ring2.current == "k2" and set(ring2.keys) == {"k1", "k2"}
    old = data_converter(ring1)
    new = data_converter(ring2)
    sealed_old = await old.encode(["written under k1"])
    sealed_new = await new.encode(["written under k2"])
    assert sealed_new[0].metadata["encryption-key-id"] == b"k2"
    assert await new.decode(sealed_old, [str]) == ["written under k1"]
    assert await new.decode(sealed_new, [str]) == ["written under k2"]

    only_k2 = KeyRing(current="k2", keys={"k2": ring2.keys["k2"]})
    with pytest.raises(KeyRingError, match="key 'k1', which is not in the key ring"):
        await data_converter(only_k2).decode(sealed_old, [str])

    tampered = sealed_new[0]
    tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
    with pytest.raises(KeyRingError, match="failed authentication"):
        await EncryptionCodec(ring2).decode([tampered])


def test_keys_come_from_configuration(tmp_path: object) -> None:
    with pytest.raises(SystemExit, match="REISSUE_CODEC_KEYS or REISSUE_CODEC_KEY_FILE"):
        Settings(environment="production").keyring()
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing.parse("k1:c2hvcnQ=")
    spec = "k2:" + "A" * 43 + "=,k1:" + "B" * 43 + "="
    ring = Settings(environment="production", codec_keys=spec).keyring()
    assert ring.current == "k2" and set(ring.keys) == {"k1", "k2"}


def test_plaintext_is_for_local_experiments_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REISSUE_ALLOW_PLAINTEXT_PAYLOADS", "true")
    assert Settings(environment="dev").allow_plaintext_payloads
    with pytest.raises(ValidationError, match="production always refuses unencrypted payloads"):
        Settings(environment="production")
