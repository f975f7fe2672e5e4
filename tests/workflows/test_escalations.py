"""Escalations: a silent unit, a review that overruns its SLA."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from reissue.schemas.enums import DocumentType, Stage
from reissue.schemas.visibility import SLA_BREACHED
from tests.support import doc, materials
from tests.workflows.harness import FakeStack

SCHOOL = {"kind": "school", "name": "重庆市第一中学", "code": "4150010611"}


async def test_unit_never_answers_then_staff_override(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(category="student", affiliation=SCHOOL)
    policy = cases.policy
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number
    await cases.client.submit_materials(
        case, materials(st.loss_report_number, category=app.insured_category)
    )
    await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    letter = {
        "staff_id": "staff-7",
        "letter": doc(DocumentType.AFFILIATION_LETTER).model_dump(),
        "note": "school's stamped letter received at the counter",
    }
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.override_affiliation(case, letter)
    assert "only after escalation" in str(err.value.cause)

    reminders = policy.affiliation_reminders_before_escalation
    await cases.fast_forward(
        case, policy.affiliation_reminder_interval * (reminders + 1) + timedelta(hours=1)
    )
    st = await cases.status(case)
    await cases.notice_sent(st.case_id, "affiliation_escalation")
    st = await cases.status(case)
    assert st.stage is Stage.AWAITING_AFFILIATION and st.awaiting.value == "staff"
    assert "affiliation_escalated" in st.flags
    assert st.reminders_sent == {"unit": reminders}
    templates = f.templates(st.case_id)
    assert templates.count("affiliation_reminder") == reminders
    assert [n.recipient for n in f.notices if n.template == "affiliation_escalation"] == [
        "supervisor"
    ]

    ack = await cases.client.override_affiliation(case, letter)
    assert ack.stage is Stage.UNDER_REVIEW
    st = await cases.status(case)
    assert st.affiliation_status == "overridden"
    assert [e.actor for e in f.events_of(st.case_id, "affiliation_overridden")] == ["staff-7"]
    # A late answer from the school changes nothing.
    await cases.client.respond_affiliation(case, {"confirmed": True, "responder": "school-it"})
    st = await cases.until(case, lambda st: bool(st.ignored_events))
    assert st.ignored_events == ["affiliation_response in UNDER_REVIEW: confirmed=True"]
    assert st.stage is Stage.UNDER_REVIEW and st.affiliation_status == "overridden"


async def test_review_sla_breach_flags_and_notifies_but_completes(cases: FakeStack) -> None:
    f = cases.fakes
    _app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report, mode="instant")
    handle = cases.client.handle(case)
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is False

    await cases.fast_forward(case, cases.policy.review_sla + timedelta(hours=1))
    st = await cases.status(case)
    await cases.notice_sent(st.case_id, "review_sla_breached")
    assert st.sla_breached and st.stage is Stage.UNDER_REVIEW
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is True
    assert [n.recipient for n in f.notices if n.template == "review_sla_breached"] == ["supervisor"]

    await cases.approve(case)
    await cases.pay(case)
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    [order] = f.productions_of(st.case_id)
    await cases.client.card_collected(
        case, {"new_card_number": order.new_card_number, "handed_over_by": "counter-01"}
    )
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    # Search attributes are visible: the breach stays on the record of the finished case.
    assert (await handle.describe()).typed_search_attributes.get(SLA_BREACHED) is True
    assert await cases.violations() == []
