"""Finding 12: what staff type never reaches the applicant. Notices give reasons from the
catalogue (`reissue.schemas.reasons`) in its Chinese words; a note stays internal, and
the timeline masks the ID and mobile numbers typed into it and the new card's
identification code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from reissue.ops.audit import build_timeline, export
from reissue.schemas.enums import Stage
from reissue.schemas.events import CancelRequest, ReviewDecision
from reissue.schemas.reasons import (
    CANCELLATION,
    CORRECTION,
    REJECTION,
    SYSTEM,
    TEXTS,
    Reason,
    label,
)
from tests.support import random_resident_id
from tests.workflows.harness import FakeStack

PHISHING = "请点击 https://cq-yibao-refund.example/pay 补缴 或致电 13912345678"


async def test_a_correction_request_tells_the_applicant_the_catalogue_never_the_note(
    cases: FakeStack,
) -> None:
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "request_correction",
            "reasons": ["photo_unclear", "form_unsigned"],
            "note": PHISHING,
        },
    )
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    [sms] = cases.fakes.messages(st.case_id, "correction_requested")
    assert TEXTS[Reason.PHOTO_UNCLEAR].zh in sms and TEXTS[Reason.FORM_UNSIGNED].zh in sms
    assert "https://" not in sms and "13912345678" not in sms and "cq-yibao" not in sms
    assert "photo_unclear" not in sms  # the words, not the code


async def test_free_text_where_a_reason_goes_is_refused_naming_the_field(
    cases: FakeStack,
) -> None:
    """The typed client refuses it; so does the case for a raw update sent by name
    (only history from before the catalogue is read as "other")."""
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    phishing = {"reviewer": "rev-01", "verdict": "request_correction", "reasons": [PHISHING]}
    with pytest.raises(ValidationError) as err:
        await cases.client.review(case, phishing)
    assert err.value.errors()[0]["loc"][0] == "reasons"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await cases.client.handle(case).execute_update("review", phishing)
    assert "Failed decoding arguments" in str(refused.value.cause)  # the SDK says no more
    st = await cases.status(case)
    assert st.stage is Stage.UNDER_REVIEW
    assert cases.fakes.messages(st.case_id, "correction_requested") == []


def test_a_decision_takes_only_its_own_reasons() -> None:
    with pytest.raises(ValidationError) as err:
        CancelRequest(operator="ops-1", reason=Reason.PHOTO_UNCLEAR)
    [e] = err.value.errors()
    assert e["loc"] == ("reason",) and "not a reason for a cancellation" in e["msg"]
    with pytest.raises(ValidationError, match="reasons: 'duplicate_case' is not a reason for a"):
        ReviewDecision(reviewer="rev-01", verdict="reject", reasons=[Reason.DUPLICATE_CASE])
    with pytest.raises(ValidationError, match="reasons: 'fee_not_paid' is not a reason for a"):
        ReviewDecision(
            reviewer="rev-01", verdict="request_correction", reasons=[Reason.FEE_NOT_PAID]
        )
    with pytest.raises(ValidationError, match="reasons: an approval gives no reasons"):
        ReviewDecision(reviewer="rev-01", verdict="approve", reasons=[Reason.OTHER])
    with pytest.raises(ValidationError, match="note"):
        CancelRequest(operator="ops-1", reason=Reason.DUPLICATE_CASE, note="x" * 501)


async def test_a_cancellation_tells_the_reason_not_the_note_nor_who(cases: FakeStack) -> None:
    _, case, _ = await cases.open_case()
    await cases.client.cancel(
        case, {"operator": "ops-1", "reason": "fraud_suspected", "note": PHISHING}
    )
    result = await cases.result(case)
    assert result.outcome is Stage.CANCELLED
    st = await cases.status(case)
    [sms] = cases.fakes.messages(st.case_id, "cancelled")
    assert TEXTS[Reason.FRAUD_SUSPECTED].zh in sms
    assert "https://" not in sms and "13912345678" not in sms and "ops-1" not in sms


async def test_a_lapse_says_why_in_chinese(cases: FakeStack) -> None:
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.client.review(
        case, {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["other"]}
    )
    await cases.fast_forward(case, cases.policy.resubmission_deadline + timedelta(hours=1))
    assert (await cases.result(case)).outcome is Stage.LAPSED
    st = await cases.status(case)
    [sms] = cases.fakes.messages(st.case_id, "lapsed")
    assert TEXTS[Reason.CORRECTION_NOT_RESUBMITTED].zh in sms and "deadline" not in sms


async def test_the_timeline_and_its_export_mask_what_was_typed_and_the_card_code(
    cases: FakeStack, tmp_path: Path
) -> None:
    resident_id = random_resident_id()
    chip = "0" * 16 + "ABCDEF0123456789"
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "request_correction",
            "reasons": ["id_copy_illegible"],
            "note": f"申请人身份证{resident_id}，手机 139-1234-5678 联系过",
        },
    )
    await cases.submit(case, report, n=1)
    await cases.approve(case)
    await cases.pay(case)
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    await cases.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": cases.fakes.next_card_number(),
            "produced_at": datetime.now(UTC),
            "card_id_code": chip,
        },
    )
    await cases.wait_for(case, Stage.READY_FOR_PICKUP)

    history = await cases.client.handle(case).fetch_history()
    converter = cases.client.temporal.data_converter
    masked = await build_timeline(history, converter)
    files = await export(cases.client.temporal, case, tmp_path)
    shown = [
        "\n".join(f"{e.what} {e.detail}" for e in masked.entries),
        *(p.read_text(encoding="utf-8") for p in files if ".timeline." in p.name),
    ]
    for text in shown:
        assert resident_id not in text and "139-1234-5678" not in text and chip not in text
        assert f"{resident_id[:6]}***********{resident_id[-1]}" in text
        assert "139****5678" in text and "*" * 28 + "6789" in text
        # The staff read the reason's label and the note (masked).
        assert label(Reason.ID_COPY_ILLEGIBLE) in text and "联系过" in text
    # An auditor who unmasks (on the record) reads what was typed.
    unmasked = await build_timeline(history, converter, unmask=True)
    told = "\n".join(e.detail for e in unmasked.entries)
    assert resident_id in told and "139-1234-5678" in told and chip in told


def test_every_reason_has_chinese_and_english_and_a_use() -> None:
    for reason in Reason:
        text = TEXTS[reason]
        assert text.zh.strip() and text.en.strip(), reason
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text.zh), reason
        assert text.en.isascii(), reason
        assert reason in CORRECTION | REJECTION | CANCELLATION | SYSTEM, reason
    assert set(TEXTS) == set(Reason)
    assert not SYSTEM & (CORRECTION | REJECTION | CANCELLATION)  # nobody chooses these
