"""Cases ended early: the card found, or cancelled by operations, with compensation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from reissue.ops.audit import verify
from reissue.schemas.enums import Stage
from tests.support import Stack


async def test_card_found_while_temporary_withdraws_and_unfreezes(stack: Stack) -> None:
    app = await stack.application(channel="online")
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert await stack.card_status(app.card_number) == "frozen"

    ack = await stack.client.card_found(case, {"channel": "hotline_12333", "note": "in a coat"})
    assert ack.stage is Stage.WITHDRAWN
    assert (await stack.client.result(case)).outcome is Stage.WITHDRAWN
    assert await stack.card_status(app.card_number) == "active"
    assert await stack.bank_status(app.card_number) == "active"
    assert await stack.one("SELECT status FROM loss_reports WHERE case_id = $1", st.case_id) == (
        "lifted"
    )
    assert (await stack.templates(st.case_id))[-1] == "withdrawn"
    # Unfrozen: a purchase goes through again.
    assert (
        await stack.one(
            "SELECT authorised FROM authorise_card_transaction($1, 100)", app.card_number
        )
        is True
    )


async def test_card_found_refused_once_report_is_formal(stack: Stack) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.client.card_found(case, {"channel": "counter"})
    assert "loss report is formal" in str(err.value.cause)
    st = await stack.status(case)
    assert st.stage is Stage.UNDER_REVIEW
    assert await stack.card_status(app.card_number) == "frozen"


async def test_cancel_after_payment_refunds_and_voids_the_old_card(stack: Stack) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)

    with pytest.raises(ValidationError) as bad:  # refused before it is sent
        await stack.client.cancel(case, {"operator": "ops-1", "reason": ""})
    assert bad.value.errors()[0]["loc"] == ("reason",)
    ack = await stack.client.cancel(
        case, {"operator": "ops-1", "reason": "applicant moved to another province"}
    )
    assert ack.stage is Stage.CANCELLED
    result = await stack.client.result(case)
    assert result.outcome is Stage.CANCELLED and "ops-1" in result.reason

    assert (
        await stack.one("SELECT status FROM payment_orders WHERE case_id = $1", st.case_id)
        == "refunded"
    )
    assert (
        await stack.one("SELECT status FROM production_orders WHERE case_id = $1", st.case_id)
        == "cancelled"
    )
    await stack.assert_old_card_void(app.card_number, st.case_id)
    assert st.fee is not None
    refunds = await stack.rows(
        "SELECT payment_ref, amount_fen, status FROM refunds WHERE case_id = $1", st.case_id
    )
    assert [tuple(r) for r in refunds] == [(st.fee.payment_ref, 2500, "refunded")]
    templates = await stack.templates(st.case_id)
    assert templates[-2:] == ["refund_issued", "cancelled"]
    # Compensation ran in reverse order: production first, then the payment.
    events = [
        r["event_type"]
        for r in await stack.rows(
            "SELECT event_type FROM case_events WHERE case_id = $1 ORDER BY id", st.case_id
        )
    ]
    assert events.index("production_cancelled") < events.index("payment_refunded")


async def test_cancel_after_an_instant_card_was_printed_voids_card_and_order(stack: Stack) -> None:
    """Found by `soak --chaos`: the printed card and its order are both cancelled, and
    the history agrees with the registry."""
    app, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report, mode="instant")
    await stack.approve(case, waive_fee=True, waiver_reason="hardship")
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    await stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant withdrew"})
    order = (
        await stack.rows(
            "SELECT status, new_card_number FROM production_orders WHERE case_id = $1",
            st.case_id,
        )
    )[0]
    assert order["status"] == "cancelled"
    assert await stack.card_status(order["new_card_number"]) == "void"
    await stack.assert_old_card_void(app.card_number, st.case_id)
    assert await verify(stack.client.temporal, stack.pool, case) == []
