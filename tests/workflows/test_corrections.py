"""Correction rounds: one round then approval; too many rounds end in rejection."""

from __future__ import annotations

from reissue.schemas.enums import Stage
from reissue.schemas.reasons import TEXTS, Reason
from tests.workflows.harness import FakeStack


async def test_one_correction_round_then_approval(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    outcome = await cases.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "request_correction",
            "reasons": ["photo_not_compliant"],
        },
    )
    assert outcome.stage is Stage.AWAITING_MATERIALS and outcome.correction_round == 1
    st = await cases.status(case)
    assert st.correction_reasons == ["photo_not_compliant"]
    [notice] = f.messages(st.case_id, "correction_requested")
    assert TEXTS[Reason.PHOTO_NOT_COMPLIANT].zh in notice

    await cases.submit(case, report, n=1)
    outcome = await cases.client.review(case, {"reviewer": "rev-02", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT
    await cases.pay(case)
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.correction_round == 1
    assert [(r, v) for c, r, _, v in f.reviews if c == st.case_id] == [
        (1, "request_correction"),
        (2, "approve"),
    ]
    assert [k for k in f.submissions if k[0] == st.case_id] == [(st.case_id, 1), (st.case_id, 2)]
    assert st.materials and all(m.received for m in st.materials)
    assert all(m.doc_ids[0].endswith("-1") for m in st.materials)  # the second round's


async def test_exceeding_max_correction_rounds_rejects(cases: FakeStack) -> None:
    app, case, report = await cases.open_case(max_correction_rounds=1)
    await cases.submit(case, report)
    first = await cases.client.review(
        case, {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["form_unsigned"]}
    )
    assert first.correction_round == 1
    await cases.submit(case, report, n=1)
    second = await cases.client.review(
        case, {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["form_unsigned"]}
    )
    assert second.verdict.value == "reject" and second.stage is Stage.REJECTED

    result = await cases.result(case)
    assert result.outcome is Stage.REJECTED
    assert result.reason == "form_unsigned; correction_rounds_exhausted"
    st = await cases.status(case)
    cases.assert_old_card_void(app.card_number, st.case_id)
    notice = cases.fakes.messages(st.case_id, "rejected")[0]
    assert TEXTS[Reason.CORRECTION_ROUNDS_EXHAUSTED].zh in notice
    assert "第八十三条" in notice and "行政复议" in notice and "Art. 83" in notice
    assert await cases.violations() == []
