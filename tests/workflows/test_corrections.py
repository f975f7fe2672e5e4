"""Correction rounds: one round then approval; too many rounds end in rejection."""

from __future__ import annotations

from reissue.schemas.enums import DocumentType, Stage
from tests.support import Stack


async def test_one_correction_round_then_approval(stack: Stack) -> None:
    _, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report)
    outcome = await stack.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "request_correction",
            "reasons": ["photo background is not plain"],
        },
    )
    assert outcome.stage is Stage.AWAITING_MATERIALS and outcome.correction_round == 1
    st = await stack.status(case)
    assert st.correction_reasons == ["photo background is not plain"]

    await stack.submit(case, report, n=1)
    outcome = await stack.client.review(case, {"reviewer": "rev-02", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.correction_round == 1
    reviews = await stack.rows(
        "SELECT round, verdict FROM review_decisions WHERE case_id = $1 ORDER BY round",
        st.case_id,
    )
    assert [(r["round"], r["verdict"]) for r in reviews] == [
        (1, "request_correction"),
        (2, "approve"),
    ]
    assert await stack.messages(st.case_id, "correction_requested") != []
    submitted = await stack.rows(
        "SELECT documents FROM material_submissions WHERE case_id = $1 ORDER BY round", st.case_id
    )
    assert len(submitted) == 2
    assert str(DocumentType.PHOTO.value) in submitted[1]["documents"]


async def test_exceeding_max_correction_rounds_rejects(stack: Stack) -> None:
    app, case, report = await stack.open_case(max_correction_rounds=1)
    await stack.submit(case, report)
    first = await stack.client.review(
        case, {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["form unsigned"]}
    )
    assert first.correction_round == 1
    await stack.submit(case, report, n=1)
    second = await stack.client.review(
        case, {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["still unsigned"]}
    )
    assert second.verdict.value == "reject" and second.stage is Stage.REJECTED

    result = await stack.client.result(case)
    assert result.outcome is Stage.REJECTED
    assert "correction rounds exhausted" in result.reason
    st = await stack.status(case)
    await stack.assert_old_card_void(app.card_number, st.case_id)
    notice = (await stack.messages(st.case_id, "rejected"))[0]
    assert "第八十三条" in notice and "行政复议" in notice and "Art. 83" in notice
