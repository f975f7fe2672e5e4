"""Cases that run out of time: the timers and what each leaves behind in the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reissue.schemas.enums import Stage
from tests.support import step_summaries
from tests.workflows.harness import FakeStack


async def test_temporary_report_lifts_itself_when_never_made_formal(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(channel="hotline_12393")
    policy = cases.policy
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.deadline == st.loss_reported_at + policy.temporary_report_validity

    await cases.fast_forward(case, policy.temporary_report_validity + timedelta(hours=1))
    result = await cases.result(case)
    assert result.outcome is Stage.LAPSED

    st = await cases.status(case)
    assert st.reminders_sent == {"materials": policy.max_materials_reminders}
    assert f.card(app.card_number) == "active" and f.authorised(app.card_number)
    assert f.bank.accounts[app.card_number] == "active"
    assert f.report_of(st.case_id).status == "lifted"
    templates = f.templates(st.case_id)
    assert templates.count("materials_reminder") == policy.max_materials_reminders
    assert templates[-1] == "lapsed_temporary"
    summaries = await step_summaries((await cases.client.handle(case).fetch_history()).events)
    n = policy.max_materials_reminders
    assert f"reminder {n} of {n} sent to applicant" in summaries
    assert await cases.violations() == []


async def test_no_resubmission_after_correction_lapses_with_old_card_void(cases: FakeStack) -> None:
    app, case, report = await cases.open_case()
    await cases.submit(case, report)
    outcome = await cases.client.review(
        case,
        {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["photo_unclear"]},
    )
    assert outcome.stage is Stage.AWAITING_MATERIALS and outcome.correction_round == 1

    await cases.fast_forward(case, cases.policy.resubmission_deadline + timedelta(hours=1))
    assert (await cases.result(case)).outcome is Stage.LAPSED
    st = await cases.status(case)
    cases.assert_old_card_void(app.card_number, st.case_id)
    templates = cases.fakes.templates(st.case_id)
    assert "correction_requested" in templates and templates[-1] == "lapsed"
    assert await cases.violations() == []


async def test_payment_never_arrives_lapses_and_cancels_the_order(cases: FakeStack) -> None:
    f = cases.fakes
    app, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    # Wrong amount: not applied to the fee; recorded in the ledger and refunded.
    await cases.pay(case, ref="BANK-WRONG", amount_fen=2000)

    await cases.fast_forward(case, cases.policy.payment_deadline + timedelta(hours=1))
    assert (await cases.result(case)).outcome is Stage.LAPSED

    st = await cases.status(case)
    assert len(st.anomalies) == 1 and "amount_fen=2000" in st.anomalies[0]
    [order] = f.orders_of(st.case_id)
    assert order.status == "cancelled"
    assert f.platform.orders[order.order_id].status == "closed"  # nobody can pay it now
    assert f.ledger(st.case_id) == [("BANK-WRONG", "refund", "refunded")]
    assert st.money.received_fen == 2000 and st.money.refunded_fen == 2000
    assert st.money.applied_fen == 0 and st.money.refund_pending_fen == 0
    cases.assert_old_card_void(app.card_number, st.case_id)  # formal: still lost
    templates = f.templates(st.case_id)
    assert "payment_returned" in templates
    assert "payment_reminder" in templates and "payment_final_reminder" in templates
    assert templates[-1] == "lapsed"
    assert await cases.violations() == []


async def test_duplicate_payment_signal_changes_nothing(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    await cases.pay(case, ref="BANK-7")
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.fee and st.fee.order_id
    await cases.client.confirm_payment(
        case,
        {
            "order_id": st.fee.order_id,
            "amount_fen": 2500,
            "payment_ref": "BANK-7",
            "paid_at": datetime.now(UTC),
        },
    )
    st = await cases.until(case, lambda st: bool(st.ignored_events))
    assert len(st.ignored_events) == 1 and "duplicate" in st.ignored_events[0]
    assert st.stage is Stage.CARD_PRODUCTION
    assert [(o.status, o.payment_ref) for o in f.orders_of(st.case_id)] == [("paid", "BANK-7")]
    assert f.event_types(st.case_id).count("payment_recorded") == 1
    assert f.ledger(st.case_id) == [("BANK-7", "applied", None)]
