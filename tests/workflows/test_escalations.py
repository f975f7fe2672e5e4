"""Escalations: a silent unit, a review that overruns its SLA."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from reissue.schemas.enums import DocumentType, Stage
from reissue.schemas.visibility import SLA_BREACHED
from tests.support import Stack, doc, materials

SCHOOL = {"kind": "school", "name": "重庆市第一中学", "code": "4150010611"}


async def test_unit_never_answers_then_staff_override(stack: Stack) -> None:
    app = await stack.application(category="student", affiliation=SCHOOL)
    policy = stack.policy
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number
    await stack.client.submit_materials(
        case, materials(st.loss_report_number, category=app.insured_category)
    )
    await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    letter = {
        "staff_id": "staff-7",
        "letter": doc(DocumentType.AFFILIATION_LETTER).model_dump(),
        "note": "school's stamped letter received at the counter",
    }
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.client.override_affiliation(case, letter)
    assert "only after escalation" in str(err.value.cause)

    reminders = policy.affiliation_reminders_before_escalation
    await stack.fast_forward(
        case, policy.affiliation_reminder_interval * (reminders + 1) + timedelta(hours=1)
    )
    st = await stack.status(case)
    assert st.stage is Stage.AWAITING_AFFILIATION and st.awaiting.value == "staff"
    assert "affiliation_escalated" in st.flags
    assert st.reminders_sent == {"unit": reminders}
    templates = await stack.templates(st.case_id)
    assert templates.count("affiliation_reminder") == reminders
    assert "affiliation_escalation" in templates

    ack = await stack.client.override_affiliation(case, letter)
    assert ack.stage is Stage.UNDER_REVIEW
    st = await stack.status(case)
    assert st.affiliation_status == "overridden"
    assert (
        await stack.one(
            "SELECT actor FROM case_events WHERE case_id = $1 AND event_type = 'affiliation_overridden'",
            st.case_id,
        )
        == "staff-7"
    )
    # A late answer from the school changes nothing.
    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "school-it"})
    for _ in range(50):
        st = await stack.status(case)
        if st.ignored_events:
            break
    assert st.ignored_events and st.stage is Stage.UNDER_REVIEW


async def test_review_sla_breach_flags_and_notifies_but_completes(stack: Stack) -> None:
    _app, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report, mode="instant")
    handle = stack.client.handle(case)
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is False

    await stack.fast_forward(case, stack.policy.review_sla + timedelta(hours=1))
    st = await stack.status(case)
    assert st.sla_breached and st.stage is Stage.UNDER_REVIEW
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is True
    assert "review_sla_breached" in await stack.templates(st.case_id)
    assert (
        await stack.one(
            "SELECT recipient FROM notifications WHERE case_id = $1 AND template = 'review_sla_breached'",
            st.case_id,
        )
        == "supervisor"
    )

    await stack.approve(case)
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    # Search attributes are visible: the breach stays on the record of the finished case.
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is True
