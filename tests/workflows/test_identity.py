"""Case identity, and what the freeze means at the point of sale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.schemas.enums import Channel, Stage
from reissue.schemas.visibility import CASE_STAGE, DISTRICT
from tests.support import materials
from tests.workflows.harness import FakeStack


async def test_second_start_for_same_card_returns_the_open_case(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    first = await cases.client.report_loss(app)
    second = await cases.client.report_loss(app.model_copy(update={"channel": Channel.COUNTER}))
    assert first.started and not second.started
    assert second.workflow_id == first.workflow_id and second.run_id == first.run_id
    assert app.card_number not in first.workflow_id  # keyed hash, no card number
    assert app.applicant.resident_id not in first.workflow_id
    st = await cases.wait_for(first.workflow_id, Stage.AWAITING_MATERIALS)
    assert [r.card_number for r in f.reports.values()] == [app.card_number]
    desc = await cases.client.handle(first.workflow_id).describe()
    assert desc.typed_search_attributes.get(CASE_STAGE) == "AWAITING_MATERIALS"
    assert desc.typed_search_attributes.get(DISTRICT) == app.district
    assert st.channel.value == "hotline_12333"


async def test_frozen_card_refused_new_card_allowed_and_cutoff_on_status(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(channel="counter")
    # The person called two days ago: within the policy's back-dating window.
    reported = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    app = app.model_copy(update={"reported_at": reported})
    case = (await cases.client.report_loss(app)).workflow_id

    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_reported_at == reported and st.liability_cutoff == reported
    assert f.report_of(st.case_id).reported_at == reported
    assert not f.authorised(app.card_number)

    assert st.loss_report_number
    await cases.client.submit_materials(case, materials(st.loss_report_number, mode="instant"))
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    await cases.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "approve",
            "waive_fee": True,
            "waiver_reason": "hardship",
        },
    )
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    [order] = f.productions_of(st.case_id)
    new_card = order.new_card_number
    assert new_card is not None
    assert not f.authorised(new_card)  # not yet collected: the new card cannot be used either
    await cases.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    assert f.authorised(new_card) and f.card(app.card_number) == "replaced"
    assert not f.authorised(app.card_number)
    assert await cases.violations() == []
