"""check-invariants: silent on a healthy system, and it names each broken promise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clients.invariants import check_invariants
from schemas.enums import Stage
from tests.support import Stack

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


async def _cancelled_after_payment(stack: Stack) -> str:
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case)
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    await stack.client.cancel(case, {"operator": "ops-1", "reason": "moved away"})
    return case


async def _completed(stack: Stack) -> tuple[str, str]:
    app, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report, mode="instant")
    await stack.approve(case, waive_fee=True, waiver_reason="hardship")
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    await stack.client.card_collected(case, {"new_card_number": card, "handed_over_by": "c-1"})
    await stack.client.result(case)
    return case, app.card_number


async def test_healthy_system_has_no_violations(stack: Stack) -> None:
    await _cancelled_after_payment(stack)
    await _completed(stack)
    _, open_case, _ = await stack.open_case()
    await stack.client.card_found(open_case, {"channel": "counter"})
    await stack.open_case()  # one still running
    violations = await check_invariants(
        stack.client.temporal,
        stack.pool,
        task_queue=stack.settings.task_queue,
        verify_closed_since=EPOCH,
    )
    assert violations == []


async def test_each_broken_promise_is_reported(stack: Stack) -> None:
    cancelled = await _cancelled_after_payment(stack)
    _, old_card = await _completed(stack)
    case_id = (await stack.status(cancelled)).case_id
    async with stack.pool.acquire() as conn:
        await conn.execute("UPDATE payment_orders SET status = 'paid' WHERE case_id = $1", case_id)
        await conn.execute("UPDATE cards SET status = 'frozen' WHERE card_number = $1", old_card)
        await conn.execute(
            "INSERT INTO insured_accounts VALUES ('ACX', 'k', 'retiree', '500101', 0, now())"
        )
        await conn.execute(
            "INSERT INTO cards (card_number, account_id, status)"
            " VALUES ('X00000001', 'ACX', 'frozen')"
        )
    violations = await check_invariants(
        stack.client.temporal,
        stack.pool,
        task_queue=stack.settings.task_queue,
        verify_closed_since=datetime.now(UTC) - timedelta(days=1),
    )
    rules = {v.rule for v in violations}
    assert "every paid fee of an early end is refunded" in rules
    assert "a frozen card has an open loss report" in rules
    assert "the registry matches the outcome" in rules
    assert "history and registry agree" in rules
    frozen = [v for v in violations if v.rule == "a frozen card has an open loss report"]
    assert {v.subject for v in frozen} == {"X00000001", old_card}
