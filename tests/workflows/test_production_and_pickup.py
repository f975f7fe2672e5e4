"""The card bureau's side and the pickup: overdue production, bad reports, pickup reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from reissue.schemas.case import CaseStatus
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


async def test_failed_production_is_ordered_again_then_the_supervisor_decides(
    stack: Stack,
) -> None:
    """Limit one reorder: the first failure is ordered again at once; the second goes to
    a supervisor, who orders again; reports for other orders, and a second report for
    a failed order, change nothing."""
    await stack.use_policy(max_production_reorders=1)
    _app, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report)
    await stack.approve(case, waive_fee=True, waiver_reason="disaster relief")
    first = (await stack.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    assert first is not None

    def failed(order: str) -> dict[str, object]:
        return {
            "order_id": order,
            "reason": "chip personalisation failed",
            "failed_at": datetime.now(UTC),
        }

    await stack.client.production_failed(case, failed("PD20990101999999"))  # not its order
    await stack.client.production_failed(case, failed(first))
    second = await _next_order(stack, case, after=first)
    await stack.client.production_failed(case, failed(first))  # again: ignored
    await stack.client.production_failed(case, failed(second))
    st = await _flagged(stack, case)
    assert st.awaiting.value == "staff" and st.failed_production_orders == [first, second]
    assert st.anomalies == ["production_failed for another order PD20990101999999"]
    assert st.ignored_events == [f"production_failed in CARD_PRODUCTION: order={first}"]
    assert (
        await stack.one(
            "SELECT recipient FROM notifications WHERE case_id = $1 AND template = 'production_failed'",
            st.case_id,
        )
        == "supervisor"
    )

    await stack.client.reorder_card(
        case, {"supervisor": "supervisor-01", "reason": "the bureau replaced its chip writer"}
    )
    third = await _next_order(stack, case, after=second)
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case, {"order_id": third, "new_card_number": new_card, "produced_at": datetime.now(UTC)}
    )
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert "production_failed" not in st.flags
    orders = await stack.rows(
        "SELECT order_id, status FROM production_orders WHERE case_id = $1 ORDER BY order_id",
        st.case_id,
    )
    assert [(o["order_id"], o["status"]) for o in orders] == [
        (first, "failed"),
        (second, "failed"),
        (third, "produced"),
    ]
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    assert await stack.violations() == []


async def _next_order(stack: Stack, case: str, *, after: str) -> str:
    for _ in range(300):
        st = await stack.status(case)
        if st.production_order_id not in (None, after) and st.awaiting.value == "bureau":
            assert st.production_order_id is not None
            return st.production_order_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"no new order after {after}")


async def _flagged(stack: Stack, case: str) -> CaseStatus:
    for _ in range(300):
        st = await stack.status(case)
        if "production_failed" in st.flags:
            return st
        await asyncio.sleep(0.1)
    raise AssertionError("the supervisor was never asked")
