"""check-invariants: silent on a healthy system, and it names each broken promise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.ops.invariants import check_invariants
from reissue.schemas.case import CaseInput
from reissue.schemas.enums import Stage
from tests.support import TEST_CONVERTER, Stack

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


async def _cancelled_after_payment(stack: Stack) -> str:
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case)
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    await stack.client.cancel(case, {"operator": "ops-1", "reason": "insured_elsewhere"})
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
    assert await stack.violations() == []


async def test_each_broken_promise_is_reported(stack: Stack) -> None:
    cancelled = await _cancelled_after_payment(stack)
    _, old_card = await _completed(stack)
    lost_app, lost_case, _ = await stack.open_case()  # running: its card is frozen
    case_id = (await stack.status(cancelled)).case_id
    async with stack.pool.acquire() as conn, conn.transaction():
        # Tampering the database would refuse: the test plays a broken registry.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE payment_orders SET status = 'paid' WHERE case_id = $1", case_id)
        await conn.execute("UPDATE cards SET status = 'frozen' WHERE card_number = $1", old_card)
        await conn.execute(
            "UPDATE cards SET status = 'active' WHERE card_number = $1", lost_app.card_number
        )
        await conn.execute(
            "INSERT INTO insured_accounts VALUES ('ACX', 'k', 'retiree', '500101', 0, now())"
        )
        await conn.execute(
            "INSERT INTO cards (card_number, account_id, status)"
            " VALUES ('X00000001', 'ACX', 'frozen')"
        )
        # Money that reached a case and went nowhere.
        await conn.execute(
            "INSERT INTO payments VALUES ('LOST-1', $1, 'PY0000', 700, now(), now(), 'refund',"
            " 'wrong order')",
            case_id,
        )
    violations = await check_invariants(
        stack.client.temporal,
        stack.pool,
        task_queue=stack.settings.task_queue,
        verify_closed_since=datetime.now(UTC) - timedelta(days=1),
    )
    by_rule: dict[str, set[str]] = {}
    for v in violations:
        by_rule.setdefault(v.rule, set()).add(v.subject)
    assert "every paid fee of an early end is refunded" in by_rule
    assert by_rule["a frozen card is held by an open case"] == {"X00000001", old_card}
    assert by_rule["a card under an open loss report is unusable"] == {lost_app.card_number}
    assert case_id in by_rule["money received = applied + refunded + refund pending"]
    assert by_rule["every payment is applied or refunded"] == {"LOST-1"}
    assert "the registry matches the outcome" in by_rule
    assert "history and registry agree" in by_rule
    assert lost_case  # the running case itself is fine: only its card was tampered with


async def test_a_completed_case_whose_new_card_is_lost_again_is_fine(stack: Stack) -> None:
    """The same person loses the new card later: a new case; the completed one stays clean."""
    completed, _ = await _completed(stack)
    first = await stack.client.handle(completed).fetch_history()
    [app] = await TEST_CONVERTER.decode(
        first.events[0].workflow_execution_started_event_attributes.input.payloads, [CaseInput]
    )
    st = await stack.status(completed)
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    case = (
        await stack.client.report_loss(app.model_copy(update={"card_number": new_card}))
    ).workflow_id
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert await stack.card_status(new_card) == "frozen"
    assert await stack.violations() == []
