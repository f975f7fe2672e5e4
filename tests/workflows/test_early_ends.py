"""Cases ended early: the card found, or cancelled by operations, with compensation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError

from reissue.schemas.enums import Stage
from tests.support import eventually
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


async def test_cancel_leaves_a_valid_temporary_report_standing(cases: FakeStack) -> None:
    """Issue 24, finding 3: operations cancel a case whose temporary report is still
    valid; nobody asked to lift it, so the card stays frozen (registry and bank) until
    it runs out, and the person is told until when."""
    f = cases.fakes
    app = await cases.application(channel="hotline_12333")
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)

    await cases.client.cancel(case, {"operator": "ops-1", "reason": "duplicate_case"})
    assert (await cases.result(case)).outcome is Stage.CANCELLED
    report = f.report_of(st.case_id)
    assert report.status == "standing" and report.valid_until is not None
    assert f.card(app.card_number) == "frozen" and not f.authorised(app.card_number)
    assert f.bank.accounts[app.card_number] == "frozen"
    st = await cases.status(case)
    assert st.card_frozen and st.bank_frozen
    assert st.report_stands_until == report.valid_until
    [notice] = f.messages(st.case_id, "cancelled")
    assert "临时挂失继续有效至" in notice
    assert st.anomalies == []
    assert await cases.violations() == []


async def test_a_temporal_cancellation_leaves_the_report_standing_too(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(channel="online")
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)

    handle = cases.client.handle(case)
    await handle.cancel()  # the Web UI's "Request Cancellation"
    await eventually(lambda: f.report_of(st.case_id).status != "open")
    assert f.report_of(st.case_id).status == "standing"
    assert f.card(app.card_number) == "frozen"


async def test_a_new_case_takes_over_a_standing_report(cases: FakeStack) -> None:
    """The owner comes back (the card found after all, or to apply): a new case on the
    card continues the standing report from its original time, and can lift it."""
    f = cases.fakes
    app = await cases.application(channel="online")
    first = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(first, Stage.AWAITING_MATERIALS)
    await cases.client.cancel(first, {"operator": "ops-1", "reason": "duplicate_case"})
    await cases.result(first)

    again = (await cases.client.report_loss(app)).workflow_id
    st2 = await cases.wait_for(again, Stage.AWAITING_MATERIALS)
    assert f.report_of(st.case_id).status == "continued"
    assert st2.loss_reported_at == st.loss_reported_at  # the owner's cut-off kept
    await cases.client.card_found(again, {"channel": "online"})
    assert f.report_of(st2.case_id).status == "lifted"
    assert f.card(app.card_number) == "active" and f.authorised(app.card_number)
    assert f.bank.accounts[app.card_number] == "active"
