"""Cases ended early: the card found, or cancelled by operations, with compensation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from reissue.schemas.enums import Stage
from tests.workflows.harness import FakeStack


async def test_card_found_while_temporary_withdraws_and_unfreezes(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(channel="online")
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert f.card(app.card_number) == "frozen"

    ack = await cases.client.card_found(case, {"channel": "hotline_12333", "note": "in a coat"})
    assert ack.stage is Stage.WITHDRAWN
    assert (await cases.result(case)).outcome is Stage.WITHDRAWN
    assert f.card(app.card_number) == "active" and f.authorised(app.card_number)
    assert f.bank.accounts[app.card_number] == "active"
    assert f.report_of(st.case_id).status == "lifted"
    assert f.templates(st.case_id)[-1] == "withdrawn"
    assert await cases.violations() == []


async def test_card_found_refused_once_report_is_formal(cases: FakeStack) -> None:
    app, case, report = await cases.open_case()
    await cases.submit(case, report)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.card_found(case, {"channel": "counter"})
    assert "loss report is formal" in str(err.value.cause)
    st = await cases.status(case)
    assert st.stage is Stage.UNDER_REVIEW
    assert cases.fakes.card(app.card_number) == "frozen"


async def test_cancel_after_payment_refunds_and_voids_the_old_card(cases: FakeStack) -> None:
    f = cases.fakes
    app, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    await cases.pay(case)
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)

    with pytest.raises(ValidationError) as bad:  # refused before it is sent
        await cases.client.cancel(case, {"operator": "ops-1", "reason": ""})
    assert bad.value.errors()[0]["loc"] == ("reason",)
    ack = await cases.client.cancel(case, {"operator": "ops-1", "reason": "insured_elsewhere"})
    assert ack.stage is Stage.CANCELLED
    result = await cases.result(case)
    assert result.outcome is Stage.CANCELLED and "ops-1" in result.reason

    assert [o.status for o in f.orders_of(st.case_id)] == ["refunded"]
    [production] = f.productions_of(st.case_id)
    assert production.status == "cancelled"
    assert f.bureau.orders[production.order_id] == "cancelled"  # stopped at the bureau too
    cases.assert_old_card_void(app.card_number, st.case_id)
    assert st.fee is not None
    assert f.ledger(st.case_id) == [(st.fee.payment_ref, "applied", "refunded")]
    [(paid_back, fen, _)] = f.platform.refunds.values()
    assert (paid_back, fen) == (st.fee.payment_ref, 2500)
    assert f.templates(st.case_id)[-2:] == ["refund_issued", "cancelled"]
    # Compensation ran in reverse order: production first, then the payment.
    events = f.event_types(st.case_id)
    assert events.index("production_cancelled") < events.index("payment_refunded")
    assert (await cases.status(case)).money.applied_fen == 0
    assert await cases.violations() == []


async def test_cancel_after_an_instant_card_was_printed_voids_card_and_order(
    cases: FakeStack,
) -> None:
    """Found by `soak --chaos`: the printed card and its order are both cancelled, and
    the history agrees with the registry."""
    f = cases.fakes
    app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report, mode="instant")
    await cases.approve(case, waive_fee=True, waiver_reason="hardship")
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    await cases.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    [order] = f.productions_of(st.case_id)
    assert order.status == "cancelled" and order.new_card_number
    assert f.card(order.new_card_number) == "void"
    cases.assert_old_card_void(app.card_number, st.case_id)
    assert await cases.violations() == []  # the history agrees with the records
