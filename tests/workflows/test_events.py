"""Events delivered twice, early, late and out of order change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.service import RPCError

from reissue.schemas.enums import Stage
from tests.support import EMPLOYER, materials
from tests.workflows.harness import FakeStack


async def test_duplicate_late_and_out_of_order_events_change_nothing(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(affiliation=EMPLOYER)
    c = cases.client
    yes = {"confirmed": True, "responder": "hr-portal"}
    await c.respond_affiliation(case, yes)  # early: before it was asked
    await c.submit_materials(case, materials(report))
    st = await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    await cases.notice_sent(st.case_id, "affiliation_request")
    await c.respond_affiliation(case, yes)
    await c.respond_affiliation(case, yes)  # twice
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    await c.respond_affiliation(case, yes)  # late
    await cases.approve(case)
    st = await cases.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee and st.fee.order_id
    pay = {
        "order_id": st.fee.order_id,
        "amount_fen": 2500,
        "payment_ref": "BANK-1",
        "paid_at": datetime.now(UTC),
    }
    await c.confirm_payment(case, pay)
    await c.confirm_payment(case, pay)  # twice
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    new_card = f.next_card_number()
    collected = {"new_card_number": new_card, "handed_over_by": "counter-1"}
    await c.card_collected(case, collected)  # out of order: before production
    produced = {
        "order_id": st.production_order_id,
        "new_card_number": new_card,
        "produced_at": datetime.now(UTC),
    }
    await c.card_produced(case, produced)
    await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    await c.card_produced(case, produced)  # twice
    st = await cases.until(case, lambda st: len(st.ignored_events) >= 6)
    await c.card_collected(case, collected)
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    with pytest.raises(RPCError):  # after the end: refused by Temporal, nothing happens
        await c.card_collected(case, collected)

    st = await cases.status(case)
    assert [e.split(" in ")[0] for e in st.ignored_events] == [
        "affiliation_response",  # early
        "affiliation_response",  # the second answer
        "affiliation_response",  # late
        "payment_confirmed",
        "card_collected",
        "card_produced",
    ]
    events = f.event_types(st.case_id)
    assert events.count("payment_recorded") == 1 and events.count("card_produced") == 1
    assert events.count("new_card_activated") == 1 and events.count("event_ignored") == 6
    assert await cases.violations() == []
