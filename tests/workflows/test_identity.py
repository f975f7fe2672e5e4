"""Case identity, and what the freeze means at the point of sale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.schemas.enums import Channel, Stage
from reissue.schemas.visibility import CASE_STAGE, DISTRICT
from tests.support import Stack, materials


async def test_second_start_for_same_card_returns_the_open_case(stack: Stack) -> None:
    app = await stack.application()
    first = await stack.client.report_loss(app)
    second = await stack.client.report_loss(app.model_copy(update={"channel": Channel.COUNTER}))
    assert first.started and not second.started
    assert second.workflow_id == first.workflow_id and second.run_id == first.run_id
    assert app.card_number not in first.workflow_id  # keyed hash, no card number
    assert app.applicant.resident_id not in first.workflow_id
    st = await stack.wait_for(first.workflow_id, Stage.AWAITING_MATERIALS)
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 1
    )
    desc = await stack.client.handle(first.workflow_id).describe()
    assert desc.typed_search_attributes.get(CASE_STAGE) == "AWAITING_MATERIALS"
    assert desc.typed_search_attributes.get(DISTRICT) == app.district
    assert st.channel.value == "hotline_12333"


async def test_frozen_card_refused_new_card_allowed_and_cutoff_on_status(stack: Stack) -> None:
    app = await stack.application(channel="counter")
    # The person called two days ago: within the policy's back-dating window.
    reported = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    app = app.model_copy(update={"reported_at": reported})
    case = (await stack.client.report_loss(app)).workflow_id

    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_reported_at == reported and st.liability_cutoff == reported
    assert (
        await stack.one("SELECT reported_at FROM loss_reports WHERE case_id = $1", st.case_id)
        == reported
    )
    refused = await stack.rows(
        "SELECT * FROM authorise_card_transaction($1, 5000)", app.card_number
    )
    assert refused[0]["authorised"] is False and refused[0]["reason"] == "card is frozen"

    assert st.loss_report_number
    await stack.client.submit_materials(case, materials(st.loss_report_number, mode="instant"))
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    await stack.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "approve",
            "waive_fee": True,
            "waiver_reason": "hardship",
        },
    )
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    # Not yet collected: the new card cannot be used either.
    not_yet = await stack.rows("SELECT * FROM authorise_card_transaction($1, 5000)", new_card)
    assert not_yet[0]["authorised"] is False
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED

    allowed = await stack.rows("SELECT * FROM authorise_card_transaction($1, 5000)", new_card)
    assert allowed[0]["authorised"] is True
    old = await stack.rows("SELECT * FROM authorise_card_transaction($1, 5000)", app.card_number)
    assert old[0]["authorised"] is False and old[0]["reason"] == "card is replaced"
    assert (
        await stack.one(
            "SELECT count(*) FROM card_transactions WHERE card_number = $1 AND NOT authorised",
            app.card_number,
        )
        == 2
    )
