"""The card bureau's side and the pickup: overdue production, bad reports, pickup reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.schemas.enums import Stage
from tests.support import Stack


async def test_overdue_production_escalates_then_pickup_reminders(stack: Stack) -> None:
    _app, case, report = await stack.open_case(channel="counter")
    policy = stack.policy
    await stack.submit(case, report)
    await stack.approve(case, waive_fee=True, waiver_reason="disaster relief")
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    order = st.production_order_id
    assert order and st.awaiting.value == "bureau"

    await stack.fast_forward(case, policy.production_overdue_after + timedelta(hours=1))
    st = await stack.status(case)
    assert st.stage is Stage.CARD_PRODUCTION and "production_overdue" in st.flags
    assert (
        await stack.one(
            "SELECT recipient FROM notifications WHERE case_id = $1 AND template = 'production_overdue'",
            st.case_id,
        )
        == "supervisor"
    )

    # A report for another order is an anomaly, not progress.
    await stack.client.card_produced(
        case,
        {
            "order_id": "PD20990101999999",
            "new_card_number": "R99999999",
            "produced_at": datetime.now(UTC),
        },
    )
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case, {"order_id": order, "new_card_number": new_card, "produced_at": datetime.now(UTC)}
    )
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.anomalies == ["card_produced for another order PD20990101999999"]
    assert await stack.one("SELECT count(*) FROM cards WHERE card_number = 'R99999999'") == 0

    await stack.fast_forward(
        case, policy.pickup_reminder_interval * (policy.max_pickup_reminders + 2)
    )
    st = await stack.status(case)
    assert st.stage is Stage.READY_FOR_PICKUP  # an uncollected card waits; it does not lapse
    assert st.reminders_sent == {"pickup": policy.max_pickup_reminders}

    await stack.client.card_collected(
        case, {"new_card_number": "R00000000", "handed_over_by": "counter-01"}
    )
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    st = await stack.status(case)
    assert "card_collected names a different card" in st.anomalies
    templates = await stack.templates(st.case_id)
    assert templates.count("pickup_reminder") == policy.max_pickup_reminders
    assert templates[-1] == "completed"


async def test_bank_outage_holds_the_case_until_the_bank_answers(stack: Stack) -> None:
    await stack.bank_knobs(down=True)
    app = await stack.application()
    case = (await stack.client.report_loss(app)).workflow_id

    handle = stack.client.handle(case)
    for _ in range(100):
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if any(p.activity_type.name == "freeze_bank_account" and p.attempt >= 2 for p in pending):
            break
    failing = next(p for p in pending if p.activity_type.name == "freeze_bank_account")
    assert "unavailable" in failing.last_failure.message
    st = await stack.status(case)
    assert st.stage is Stage.LOSS_REPORTED and st.bank_frozen is False
    assert await stack.card_status(app.card_number) == "frozen"  # the registry did not wait

    await stack.bank_knobs(down=False)
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS, timeout=30)
    assert st.bank_frozen is True
    assert await stack.bank_status(app.card_number) == "frozen"
