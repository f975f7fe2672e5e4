"""Cases that run out of time: the timers and what each leaves behind in the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.schemas.enums import Stage
from tests.support import Stack, step_summaries


async def test_temporary_report_lifts_itself_when_never_made_formal(stack: Stack) -> None:
    app = await stack.application(channel="hotline_12393")
    policy = stack.policy
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.deadline == st.loss_reported_at + policy.temporary_report_validity

    await stack.fast_forward(case, policy.temporary_report_validity + timedelta(hours=1))
    result = await stack.client.result(case)
    assert result.outcome is Stage.LAPSED

    st = await stack.status(case)
    assert st.reminders_sent == {"materials": policy.max_materials_reminders}
    assert await stack.card_status(app.card_number) == "active"
    assert await stack.bank_status(app.card_number) == "active"
    assert await stack.one("SELECT status FROM loss_reports WHERE case_id = $1", st.case_id) == (
        "lifted"
    )
    templates = await stack.templates(st.case_id)
    assert templates.count("materials_reminder") == policy.max_materials_reminders
    assert templates[-1] == "lapsed_temporary"
    summaries = await step_summaries((await stack.client.handle(case).fetch_history()).events)
    n = policy.max_materials_reminders
    assert f"reminder {n} of {n} sent to applicant" in summaries


async def test_no_resubmission_after_correction_lapses_with_old_card_void(stack: Stack) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)
    outcome = await stack.client.review(
        case,
        {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["photo is blurred"]},
    )
    assert outcome.stage is Stage.AWAITING_MATERIALS and outcome.correction_round == 1

    await stack.fast_forward(case, stack.policy.resubmission_deadline + timedelta(hours=1))
    assert (await stack.client.result(case)).outcome is Stage.LAPSED
    st = await stack.status(case)
    await stack.assert_old_card_void(app.card_number, st.case_id)
    templates = await stack.templates(st.case_id)
    assert "correction_requested" in templates and templates[-1] == "lapsed"


async def test_payment_never_arrives_lapses_and_cancels_the_order(stack: Stack) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    # Wrong amount: not applied to the fee; recorded in the ledger and refunded.
    await stack.pay(case, ref="BANK-WRONG", amount_fen=2000)

    await stack.fast_forward(case, stack.policy.payment_deadline + timedelta(hours=1))
    assert (await stack.client.result(case)).outcome is Stage.LAPSED

    st = await stack.status(case)
    assert len(st.anomalies) == 1 and "amount_fen=2000" in st.anomalies[0]
    assert await stack.one("SELECT status FROM payment_orders WHERE case_id = $1", st.case_id) == (
        "cancelled"
    )
    ledger = await stack.rows(
        "SELECT p.payment_ref, p.disposition, r.status AS refund FROM payments p"
        " LEFT JOIN refunds r USING (payment_ref) WHERE p.case_id = $1",
        st.case_id,
    )
    assert [tuple(r) for r in ledger] == [("BANK-WRONG", "refund", "refunded")]
    assert st.money.received_fen == 2000 and st.money.refunded_fen == 2000
    assert st.money.applied_fen == 0 and st.money.refund_pending_fen == 0
    await stack.assert_old_card_void(app.card_number, st.case_id)  # formal: still lost
    templates = await stack.templates(st.case_id)
    assert "payment_returned" in templates
    assert "payment_reminder" in templates and templates[-1] == "lapsed"


async def test_duplicate_payment_signal_changes_nothing(stack: Stack) -> None:
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case, ref="BANK-7")
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    st = await stack.status(case)
    assert st.fee and st.fee.order_id
    await stack.client.confirm_payment(
        case,
        {
            "order_id": st.fee.order_id,
            "amount_fen": 2500,
            "payment_ref": "BANK-7",
            "paid_at": datetime.now(UTC),
        },
    )

    for _ in range(50):
        st = await stack.status(case)
        if st.ignored_events:
            break
    assert len(st.ignored_events) == 1 and "duplicate" in st.ignored_events[0]
    assert st.stage is Stage.CARD_PRODUCTION
    orders = await stack.rows(
        "SELECT status, payment_ref FROM payment_orders WHERE case_id = $1", st.case_id
    )
    assert [(o["status"], o["payment_ref"]) for o in orders] == [("paid", "BANK-7")]
    assert (
        await stack.one(
            "SELECT count(*) FROM case_events WHERE case_id = $1 AND event_type = 'payment_recorded'",
            st.case_id,
        )
        == 1
    )
