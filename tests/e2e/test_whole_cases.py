"""A few whole cases on the real stack: the real activities against PostgreSQL, the bank,
the payment platform and the card bureau's simulators, the dev server's virtual clock.

The fast layer (tests/workflows) runs every path and race against fakes; these prove
that the real pieces fit: a happy path with an employer unit and standard production,
an early end that refunds through the payment platform, a temporary report that lapses
and is lifted at the registry and the bank. Each checks what a person would see: the
stage, the registry's rows, the bank's account, the money, the notices, the audit log,
and that the history replays and agrees with the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from structlog.testing import LogCapture
from temporalio.worker import Replayer

from reissue.ops.audit import verify
from reissue.schemas.enums import Stage
from reissue.workflows.case import CardReissueWorkflow
from tests.support import DEFAULT_BALANCE_FEN, EMPLOYER, TEST_CONVERTER, Stack, materials


async def test_employee_with_unit_standard_production_completes(stack: Stack) -> None:
    logs = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, logs])
    try:
        await _employee_case(stack, logs)
    finally:
        structlog.reset_defaults()


async def _employee_case(stack: Stack, logs: LogCapture) -> None:
    app = await stack.application(affiliation=EMPLOYER)
    ref = await stack.client.report_loss(app)
    case = ref.workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.report_formal is False and st.card_frozen and st.bank_frozen
    assert await stack.card_status(app.card_number) == "frozen"
    assert await stack.bank_status(app.card_number) == "frozen"

    assert st.loss_report_number is not None
    accepted = await stack.client.submit_materials(case, materials(st.loss_report_number))
    assert accepted.report_formal is True
    st = await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    assert (
        await stack.one("SELECT org_code FROM affiliation_requests WHERE case_id = $1", st.case_id)
        == EMPLOYER["credit_code"]
    )
    # The portal answers once it has the request.
    await stack.notice_sent(st.case_id, "affiliation_request")
    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    outcome = await stack.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT

    # The order is opened at the payment platform, then the case asks for payment.
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee is not None and st.fee.amount_fen == 2500 and st.fee.order_id
    assert await stack.one(
        "SELECT platform_ref IS NOT NULL FROM payment_orders WHERE order_id = $1", st.fee.order_id
    )
    await stack.pay(case, ref="BANK-0001")
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.awaiting.value == "bureau" and st.production_order_id
    assert (
        await stack.one(
            "SELECT status FROM production_orders WHERE order_id = $1 AND sent_at IS NOT NULL",
            st.production_order_id,
        )
        == "ordered"
    )

    # The card bureau finishes later, on its own schedule, and reports back.
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": new_card,
            "produced_at": datetime.now(UTC),
            "card_id_code": "0" * 16 + "ABCDEF0123456789",
        },
    )
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert await stack.card_status(new_card) == "inactive_new"
    assert (
        await stack.one("SELECT card_id_code FROM cards WHERE card_number = $1", new_card)
        == "0" * 16 + "ABCDEF0123456789"
    )  # as the bureau wrote it on the chip

    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    result = await stack.client.result(case)
    assert result.outcome is Stage.COMPLETED

    assert await stack.card_status(app.card_number) == "replaced"
    assert await stack.card_status(new_card) == "active"
    assert await stack.authorised(new_card) and not await stack.authorised(app.card_number)
    # At the bank: the new card has the account, the old card's is closed.
    assert await stack.bank_status(new_card) == "active"
    assert await stack.bank_status(app.card_number) == "closed"
    assert await stack.one("SELECT bank FROM cards WHERE card_number = $1", new_card) == (
        "Test Bank"
    )
    accounts = await stack.rows(
        "SELECT account_id FROM cards WHERE card_number = ANY($1::text[])",
        [app.card_number, new_card],
    )
    assert len({r["account_id"] for r in accounts}) == 1
    assert (
        await stack.one(
            "SELECT balance_fen FROM insured_accounts WHERE account_id = $1",
            accounts[0]["account_id"],
        )
        == DEFAULT_BALANCE_FEN
    )
    assert (
        await stack.one("SELECT status FROM loss_reports WHERE case_id = $1", st.case_id)
        == "resolved_by_reissue"
    )
    assert (
        await stack.one("SELECT status FROM payment_orders WHERE case_id = $1", st.case_id)
        == "paid"
    )
    assert await stack.templates(st.case_id) == [
        "card_frozen",
        "report_formal",
        "affiliation_request",
        "payment_requested",
        "ready_for_pickup",
        "completed",
    ]
    frozen_msg = (await stack.messages(st.case_id, "card_frozen"))[0]
    assert "医保电子凭证" in frozen_msg  # the e-credential meanwhile

    # Every activity's log lines name the case.
    steps = [e for e in logs.entries if e["event"].startswith("step ")]
    assert len(steps) >= 15
    assert all(e["case_id"] == case and e["activity"] for e in steps)

    # What ran is what the code says: the history replays against the current workflow,
    # and agrees with the database.
    history = await stack.client.handle(case).fetch_history()
    replayer = Replayer(workflows=[CardReissueWorkflow], data_converter=TEST_CONVERTER)
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
    assert await stack.violations() == []


async def test_cancel_after_payment_refunds_through_the_platform_and_voids_the_old_card(
    stack: Stack,
) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)

    ack = await stack.client.cancel(case, {"operator": "ops-1", "reason": "insured_elsewhere"})
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
        "SELECT payment_ref, amount_fen, status, platform_ref IS NOT NULL AS asked"
        " FROM refunds WHERE case_id = $1",
        st.case_id,
    )
    assert [tuple(r) for r in refunds] == [(st.fee.payment_ref, 2500, "refunded", True)]
    assert (await stack.status(case)).money.refunded_fen == 2500
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
    assert await verify(stack.client.temporal, stack.pool, case) == []
    assert await stack.violations() == []


async def test_temporary_report_lapses_and_is_lifted_at_the_registry_and_the_bank(
    stack: Stack,
) -> None:
    app = await stack.application(channel="hotline_12393")
    policy = stack.policy
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.deadline == st.loss_reported_at + policy.temporary_report_validity

    await stack.fast_forward(case, policy.temporary_report_validity + timedelta(hours=1))
    assert (await stack.client.result(case)).outcome is Stage.LAPSED

    st = await stack.status(case)
    assert await stack.card_status(app.card_number) == "active"
    assert await stack.authorised(app.card_number)  # a purchase goes through again
    assert await stack.bank_status(app.card_number) == "active"
    assert await stack.one("SELECT status FROM loss_reports WHERE case_id = $1", st.case_id) == (
        "lifted"
    )
    templates = await stack.templates(st.case_id)
    assert templates.count("materials_reminder") == policy.max_materials_reminders
    assert templates[-1] == "lapsed_temporary"
    assert await stack.violations() == []
