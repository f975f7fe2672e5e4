"""Events delivered twice, late and out of order; a poisoned registry row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from temporalio.service import RPCError

from reissue.ops.invariants import check_invariants
from reissue.schemas.enums import Stage
from tests.support import Stack, materials

EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


async def _settle(stack: Stack, case: str, ignored: int) -> None:
    for _ in range(100):
        if len((await stack.status(case)).ignored_events) >= ignored:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("ignored events not recorded")


async def test_duplicate_late_and_out_of_order_events_change_nothing(stack: Stack) -> None:
    _, case, report = await stack.open_case(affiliation=EMPLOYER)
    c = stack.client
    yes = {"confirmed": True, "responder": "hr-portal"}
    await c.respond_affiliation(case, yes)  # early: before it was asked
    await c.submit_materials(case, materials(report))
    await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    await c.respond_affiliation(case, yes)
    await c.respond_affiliation(case, yes)  # twice
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    await c.respond_affiliation(case, yes)  # late
    await stack.approve(case)
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee and st.fee.order_id
    pay = {
        "order_id": st.fee.order_id,
        "amount_fen": 2500,
        "payment_ref": "BANK-1",
        "paid_at": datetime.now(UTC),
    }
    await c.confirm_payment(case, pay)
    await c.confirm_payment(case, pay)  # twice
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    new_card = await stack.one("SELECT next_card_number()")
    collected = {"new_card_number": new_card, "handed_over_by": "counter-1"}
    await c.card_collected(case, collected)  # out of order: before production
    produced = {
        "order_id": st.production_order_id,
        "new_card_number": new_card,
        "produced_at": datetime.now(UTC),
    }
    await c.card_produced(case, produced)
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    await c.card_produced(case, produced)  # twice
    await _settle(stack, case, 6)
    await c.card_collected(case, collected)
    assert (await c.result(case)).outcome is Stage.COMPLETED
    with pytest.raises(RPCError):  # after the end: refused by Temporal, nothing happens
        await c.card_collected(case, collected)

    st = await stack.status(case)
    assert len(st.ignored_events) == 6
    counts = await stack.rows(
        "SELECT event_type, count(*) AS n FROM case_events WHERE case_id = $1 GROUP BY event_type",
        st.case_id,
    )
    n = {r["event_type"]: r["n"] for r in counts}
    assert n["payment_recorded"] == 1 and n["card_produced"] == 1 and n["new_card_activated"] == 1
    assert n["event_ignored"] == 6
    assert (
        await check_invariants(
            c.temporal, stack.pool, task_queue=stack.settings.task_queue, verify_closed_since=EPOCH
        )
        == []
    )


async def test_poisoned_row_shows_as_failing_activity_then_recovers(stack: Stack) -> None:
    app = await stack.application()
    blocker = await stack.pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute(
        "SELECT 1 FROM cards WHERE card_number = $1 FOR UPDATE", app.card_number
    )  # a stuck transaction holds the card's row
    try:
        case = (await stack.client.report_loss(app)).workflow_id
        handle = stack.client.handle(case)
        # The step runs as a local activity first (two attempts in the workflow task),
        # then as an activity that operations see pending, with its attempts.
        failing = None
        for _ in range(600):
            pending = (await handle.describe()).raw_description.pending_activities
            failing = next((p for p in pending if p.attempt >= 2), None)
            if failing is not None:
                break
            await asyncio.sleep(0.1)
        assert failing is not None and failing.activity_type.name == "register_loss"
        assert "lock timeout" in failing.last_failure.message
        st = await stack.status(case)
        assert st.stage is Stage.LOSS_REPORTED
        assert (
            await check_invariants(
                stack.client.temporal, stack.pool, task_queue=stack.settings.task_queue
            )
            == []
        )
    finally:
        await tx.rollback()  # the row is fixed
        await stack.pool.release(blocker)
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS, timeout=30)
    assert st.card_frozen
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 1
    )
