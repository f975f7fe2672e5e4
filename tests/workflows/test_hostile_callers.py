"""Hostile callers and bad timing: what a caller may not choose, and events that race.

Each test names the promise it checks: the lost card is never unfrozen by another
case, no money is kept that was not owed, and the system of record (not the
caller) decides the policy, the case ID and the liability cut-off. A step of a case is
held mid-flight (`FakeStack.holding`), so an event lands exactly during it; that the
event waited shows in the outcome it can only have after the step.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError

from reissue.schemas.activities import PaymentReceipt
from reissue.schemas.enums import Stage
from reissue.schemas.events import CancelRequest, CardFound, EventAck
from reissue.schemas.visibility import CASE_STAGE, NEXT_DEADLINE
from reissue.workflows.case import CardReissueWorkflow
from tests.support import EMPLOYER, eventually, materials, random_card_number
from tests.workflows.harness import FakeStack


async def _clean(cases: FakeStack) -> None:
    assert await cases.violations() == []


async def _refused(handle: Any) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=30)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    events = [e async for e in handle.fetch_history_events()]
    assert not any(e.HasField("workflow_task_failed_event_attributes") for e in events)
    return cause


def _plain(cases: FakeStack) -> Client:
    """A client without the codec: personal data in the clear."""
    temporal = cases.client.temporal
    return Client(
        temporal.service_client,
        namespace=temporal.namespace,
        data_converter=pydantic_data_converter,
    )


# ---------------------------------------------------------------- 1. one open case per card


async def test_a_second_case_for_the_card_under_another_id_touches_nothing(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    app, case, _ = await cases.open_case(channel="online")
    before = f.snapshot()
    intruder = await cases.client.temporal.start_workflow(
        "CardReissueWorkflow",
        app,
        id=f"reissue-{uuid.uuid4().hex[:16]}",  # not the card's case ID
        task_queue=cases.task_queue,
    )
    cause = await _refused(intruder)
    assert cause.type == "CaseIdMismatch"
    await intruder.cancel()  # cancelling it (closed already) changes nothing either
    assert f.snapshot() == before
    st = await cases.status(case)
    assert st.stage is Stage.AWAITING_MATERIALS and st.card_frozen
    assert f.card(app.card_number) == "frozen" and not f.authorised(app.card_number)
    await _clean(cases)


# ---------------------------------------------------------------- 2. plaintext


async def test_a_plaintext_start_fails_at_once_and_writes_nothing(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    before = f.snapshot()
    handle = await _plain(cases).start_workflow(
        "CardReissueWorkflow",
        app,
        id=cases.client.case_id_for(app.card_number),
        task_queue=cases.task_queue,
    )
    cause = await _refused(handle)
    assert cause.type == "PlaintextPayload" and "unencrypted" in cause.message
    assert f.snapshot() == before and sum(f.attempts.values()) == 0
    assert f.card(app.card_number) == "active"


async def test_a_plaintext_update_to_a_case_is_refused(cases: FakeStack) -> None:
    _app, case, report = await cases.open_case()
    handle = _plain(cases).get_workflow_handle(case)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update("submit_materials", materials(report).model_dump(mode="json"))
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "PlaintextPayload"
    assert cases.fakes.submissions == {}
    await cases.client.submit_materials(case, materials(report))  # through the codec: fine
    st = await cases.wait_for(case, Stage.UNDER_REVIEW)
    assert st.materials and all(m.received for m in st.materials)


# ---------------------------------------------------------------- 3. the policy


async def test_the_system_of_record_decides_the_policy(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    # By name, with a policy of the caller's choosing: refused, nothing written.
    before = f.snapshot()
    data = app.model_dump(mode="json") | {
        "policy": {
            "version": "EVIL-1",
            "temporary_report_validity": "P3650D",
            "fee_schedule": "FREE",
            "max_correction_rounds": 0,
            "require_affiliation_confirmation": False,
        }
    }
    evil = await cases.client.temporal.start_workflow(
        "CardReissueWorkflow",
        data,
        id=cases.client.case_id_for(app.card_number),
        task_queue=cases.task_queue,
    )
    cause = await _refused(evil)
    assert (
        cause.type == "InvalidCaseInput"
        and "policy: the case policy is not chosen" in cause.message
    )
    assert f.snapshot() == before

    # Without one: the policy in force, from the registry, recorded in the history.
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    seeded, seeded_hash = f.policies[None]
    assert st.policy_version == "CQ-2026.1" == seeded.version and st.policy_hash == seeded_hash
    assert st.deadline == st.loss_reported_at + timedelta(days=7)
    # A policy put in force later does not change a case already open.
    await cases.use_policy(temporary_report_validity=timedelta(days=1))
    again = await cases.status(case)
    assert again.policy_version == "CQ-2026.1" and again.deadline == st.deadline


async def test_a_district_keeps_its_own_policy(cases: FakeStack) -> None:
    local = await cases.use_policy(district="500112", temporary_report_validity=timedelta(days=10))
    _, here, _ = await cases.open_case(district="500112")
    _, elsewhere, _ = await cases.open_case(district="500103")
    mine = await cases.status(here)
    assert mine.policy_version == local.version
    assert mine.deadline == mine.loss_reported_at + timedelta(days=10)
    assert (await cases.status(elsewhere)).policy_version == "CQ-2026.1"


# ---------------------------------------------------------------- 4. the liability cut-off


async def test_a_loss_reported_400_days_ago_is_refused(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    backdated = app.model_copy(update={"reported_at": datetime.now(UTC) - timedelta(days=400)})
    before = f.snapshot()
    ref = await cases.client.report_loss(backdated)
    cause = await _refused(cases.client.handle(ref.workflow_id))
    assert cause.type == "InvalidCaseInput"
    assert "reported_at: must not be earlier than 3 days before the case opened" in cause.message
    assert f.snapshot() == before and f.card(app.card_number) == "active"


# ---------------------------------------------------------------- 5 and 6. early ends and money


async def _paid(cases: FakeStack) -> tuple[Any, str, str]:
    app, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    await cases.pay(case)
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    return app, case, st.case_id


async def test_request_cancellation_in_temporal_runs_the_same_compensation(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    app, case, case_id = await _paid(cases)
    handle = cases.client.handle(case)
    await handle.cancel()  # the Web UI's "Request Cancellation"
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    desc = await handle.describe()
    assert desc.status is WorkflowExecutionStatus.CANCELED
    assert desc.typed_search_attributes.get(CASE_STAGE) == "CANCELLED"
    assert [o.status for o in f.orders_of(case_id)] == ["refunded"]
    assert [r for _, _, r in f.ledger(case_id)] == ["refunded"]
    [closed] = f.events_of(case_id, "case_closed")
    assert closed.detail["outcome"] == "CANCELLED" and "through Temporal" in closed.detail["reason"]
    cases.assert_old_card_void(app.card_number, case_id)
    assert f.templates(case_id)[-2:] == ["refund_issued", "cancelled"]
    await _clean(cases)


async def test_payment_and_cancel_sent_together_keep_no_money(cases: FakeStack) -> None:
    case, order = await cases.awaiting_payment()
    pay = {
        "order_id": order,
        "amount_fen": 2500,
        "payment_ref": "BANK-RACE",
        "paid_at": datetime.now(UTC),
    }
    await asyncio.gather(
        cases.client.confirm_payment(case, pay),
        cases.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"}),
    )
    assert (await cases.result(case)).outcome is Stage.CANCELLED
    money = (await cases.status(case)).money
    assert money.received_fen == 2500 and money.refunded_fen == 2500 and money.applied_fen == 0
    assert cases.fakes.refunds["BANK-RACE"].status == "refunded"
    await _clean(cases)


async def test_a_payment_taken_at_the_platform_before_a_cancel_is_refunded_once(
    cases: FakeStack,
) -> None:
    """The payer paid at the platform, its webhook not yet through, when operations cancel:
    closing the order finds the payment, which is taken in and refunded; the webhook that
    comes later reaches a closed case and is not refunded again."""
    f = cases.fakes
    case, order = await cases.awaiting_payment()
    paid = f.pay_at_platform(order)
    await cases.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    st = await cases.wait_for(case, Stage.CANCELLED)
    assert f.ledger(st.case_id) == [(paid.payment_ref, "refund", "refunded")]
    assert st.money.received_fen == st.money.refunded_fen == 2500
    assert "payment_returned" in f.templates(st.case_id)
    await cases.result(case)
    await cases.client.confirm_payment(case, paid)  # the webhook, at last
    late = cases.client.temporal.get_workflow_handle(
        f"{case}-late-payment-{paid.payment_ref}", result_type=PaymentReceipt
    )
    receipt = await late.result()
    # Under the keys the case used: its own receipt again, and no second refund.
    assert not receipt.applied and receipt.payment_ref == paid.payment_ref
    assert [(ref, fen) for ref, fen, _ in f.platform.refunds.values()] == [(paid.payment_ref, 2500)]
    await _clean(cases)


async def test_a_payment_whose_webhook_never_came_pays_the_fee_at_the_deadline(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    case, order = await cases.awaiting_payment()
    paid = f.pay_at_platform(order)  # the webhook never reaches us
    await cases.fast_forward(case, cases.policy.payment_deadline + timedelta(hours=1))
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.fee is not None and st.fee.order_status == "paid"
    assert st.fee.payment_ref == paid.payment_ref
    assert f.ledger(st.case_id) == [(paid.payment_ref, "applied", None)]
    await cases.client.confirm_payment(case, paid)  # it arrives after all: nothing changes
    st = await cases.until(case, lambda st: bool(st.ignored_events))
    assert "duplicate" in st.ignored_events[0] and f.platform.refunds == {}
    assert st.money.received_fen == st.money.applied_fen == 2500


async def test_a_payment_being_taken_in_when_the_deadline_passes_pays_the_fee(
    cases: FakeStack,
) -> None:
    """The payment's webhook is being recorded (the ledger step held) when the deadline
    passes: the deadline waits for it, finds the fee paid and does not close the order.
    (The deadline passes in real time: virtual time does not move while a step runs.)"""
    f = cases.fakes
    await cases.use_policy(
        payment_reminder_after=timedelta(seconds=1),
        payment_final_reminder_before=timedelta(milliseconds=500),
        payment_deadline=timedelta(seconds=2),
    )
    case, _ = await cases.awaiting_payment()
    handle = cases.client.handle(case)
    async with cases.holding("payment:BANK-RACE-1") as held:
        await cases.pay(case, ref="BANK-RACE-1")
        await cases.reached(held)

        async def deadline_handled() -> None:
            """The deadline's timer fired, and the workflow task it woke has completed."""
            events = [e async for e in handle.fetch_history_events()]
            timers = [e.event_id for e in events if e.HasField("timer_started_event_attributes")]
            fired = [
                e.event_id
                for e in events
                if e.HasField("timer_fired_event_attributes")
                and e.timer_fired_event_attributes.started_event_id == timers[-1]
            ]
            assert fired, "the deadline has not passed yet"
            assert any(
                e.event_id > fired[0] and e.HasField("workflow_task_completed_event_attributes")
                for e in events
            )

        await eventually(deadline_handled, timeout=10)
        st = await cases.status(case)  # the deadline waits for the payment being taken in
        assert st.stage is Stage.AWAITING_PAYMENT and "closing" not in st.pending_action
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.fee is not None and st.fee.order_status == "paid"
    assert f.ledger(st.case_id) == [("BANK-RACE-1", "applied", None)]
    [order] = f.orders_of(st.case_id)
    assert order.status == "paid" and f.platform.orders[order.order_id].status == "open"
    await _clean(cases)


async def test_a_webhook_that_outruns_the_platforms_answer_waits_for_the_order(
    cases: FakeStack,
) -> None:
    """The platform opens the order but its answer is slow; the payer pays and the
    webhook reaches the case first: the payment waits for the order, then pays the fee
    (it is not refunded as "no payment due")."""
    f = cases.fakes
    _app, case, report = await cases.open_case()
    await cases.submit(case, report)
    async with cases.holding("create_payment_order", after=True) as held:
        await cases.approve(case)
        await cases.reached(held)
        [order] = f.platform.orders
        paid = f.pay_at_platform(order)
        await cases.client.confirm_payment(case, paid)
        st = await cases.status(case)
        assert st.stage is Stage.AWAITING_PAYMENT and st.fee is not None
        assert st.fee.order_id is None  # (the case has not heard of its order yet)
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert f.ledger(st.case_id) == [(paid.payment_ref, "applied", None)]
    assert st.anomalies == [] and f.platform.refunds == {}
    await _clean(cases)


async def test_payments_not_owed_are_refunded_even_after_the_case_closed(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    case, order = await cases.awaiting_payment()

    def payment(ref: str, **changes: Any) -> dict[str, Any]:
        return {
            "order_id": order,
            "amount_fen": 2500,
            "payment_ref": ref,
            "paid_at": datetime.now(UTC),
        } | changes

    await cases.client.confirm_payment(case, payment("P-WRONG-AMOUNT", amount_fen=2499))
    await cases.client.confirm_payment(case, payment("P-WRONG-ORDER", order_id="PY19990101000001"))
    await cases.client.confirm_payment(case, payment("P-GOOD"))
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    await cases.client.confirm_payment(case, payment("P-SECOND"))  # a second payment
    await cases.client.confirm_payment(case, payment("P-GOOD"))  # the same one again
    await cases.client.cancel(case, {"operator": "ops-1", "reason": "insured_elsewhere"})
    await cases.result(case)
    await cases.client.confirm_payment(case, payment("P-AFTER-CLOSE"))  # nowhere to go...
    await cases.client.confirm_payment(case, payment("P-AFTER-CLOSE"))  # ...twice
    late = cases.client.temporal.get_workflow_handle(f"{case}-late-payment-P-AFTER-CLOSE")
    await late.result()

    assert {ref: (d, r) for ref, d, r in f.ledger(st.case_id)} == {
        "P-WRONG-AMOUNT": ("refund", "refunded"),
        "P-WRONG-ORDER": ("refund", "refunded"),
        "P-GOOD": ("applied", "refunded"),  # applied to the fee, refunded on cancellation
        "P-SECOND": ("refund", "refunded"),
        "P-AFTER-CLOSE": ("refund", "refunded"),
    }
    received = sum(p.amount_fen for p in f.payments.values() if p.case_id == st.case_id)
    refunded = sum(r.amount_fen for r in f.refunds.values() if r.case_id == st.case_id)
    assert received == refunded == 2499 + 4 * 2500
    assert len(f.platform.refunds) == 5  # each once at the platform
    await _clean(cases)


# ---------------------------------------------------------------- 8. races with a submission


async def _accepted(
    cases: FakeStack, case: str, update: Any, arg: Any
) -> WorkflowUpdateHandle[Any]:
    """Send an update; returns once the case has accepted it (its validator let it in)."""
    return await cases.client.handle(case).start_update(
        update, arg, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )


async def test_card_found_during_a_submission_waits_and_is_refused(cases: FakeStack) -> None:
    f = cases.fakes
    app, case, report = await cases.open_case(channel="online")
    async with cases.holding("precheck:1") as held:
        submit = asyncio.create_task(cases.client.submit_materials(case, materials(report)))
        await cases.reached(held)
        # Accepted while the report is still temporary (the validator lets it in) ...
        found = await _accepted(
            cases, case, CardReissueWorkflow.card_found, CardFound(channel="hotline_12333")
        )
        st = await cases.status(case)
        assert st.closing is None and not st.report_formal
    accepted = await submit
    assert accepted.report_formal
    # ... and answered after the submission made the report formal: refused, not withdrawn.
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await found.result()
    assert "void and cannot be revived" in str(err.value.cause)
    st = await cases.wait_for(case, Stage.UNDER_REVIEW)
    assert f.card(app.card_number) == "frozen" and f.report_of(st.case_id).kind == "formal"


async def test_cancel_during_a_submission_ends_the_case_after_it(cases: FakeStack) -> None:
    app, case, report = await cases.open_case(channel="online")
    async with cases.holding("precheck:1") as held:
        submit = asyncio.create_task(cases.client.submit_materials(case, materials(report)))
        await cases.reached(held)
        cancel = await _accepted(
            cases,
            case,
            CardReissueWorkflow.cancel,
            CancelRequest(operator="ops-1", reason="duplicate_case"),
        )
    await submit  # the submission made the report formal first ...
    assert (await cancel.result()).stage is Stage.CANCELLED
    st = await cases.status(case)
    cases.assert_old_card_void(app.card_number, st.case_id)  # ... so the card stays void
    await _clean(cases)


# ---------------------------------------------------------------- 9. honoured after an activity


async def _cancel_accepted(cases: FakeStack, case: str) -> WorkflowUpdateHandle[EventAck]:
    """Operations cancel; returns once the case has accepted it (it answers at the end)."""
    return await _accepted(
        cases,
        case,
        CardReissueWorkflow.cancel,
        CancelRequest(operator="ops-1", reason="applicant_request"),
    )


async def test_a_cancel_during_an_activity_stops_before_the_next(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case()
    await cases.submit(case, report)
    async with cases.holding("create_payment_order") as held:
        review = asyncio.create_task(
            cases.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
        )
        await cases.reached(held)
        cancel = await _cancel_accepted(cases, case)
    outcome = await review
    assert (await cancel.result()).stage is Stage.CANCELLED
    # The reviewer heard where the approval sends the case; the cancel accepted
    # meanwhile stopped it before the next step.
    assert outcome.stage is Stage.AWAITING_PAYMENT
    st = await cases.status(case)
    assert "payment_requested" not in f.templates(st.case_id)
    [order] = f.orders_of(st.case_id)
    assert order.status == "cancelled" and f.platform.orders[order.order_id].status == "closed"
    await _clean(cases)


async def test_a_cancel_during_the_fee_prints_no_instant_card(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report, mode="instant")
    async with cases.holding("assess_fee") as held:
        review = asyncio.create_task(
            cases.approve(case, waive_fee=True, waiver_reason="minimum living allowance")
        )
        await cases.reached(held)
        cancel = await _cancel_accepted(cases, case)
    await review
    assert (await cancel.result()).stage is Stage.CANCELLED
    assert (await cases.result(case)).outcome is Stage.CANCELLED
    st = await cases.status(case)
    assert f.productions_of(st.case_id) == []
    await _clean(cases)


async def test_no_cancel_once_the_new_card_is_being_activated(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report, mode="instant")
    await cases.approve(case, waive_fee=True, waiver_reason="hardship")
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    [order] = f.productions_of(st.case_id)
    async with cases.holding("activate_new_card") as held:
        await cases.client.card_collected(
            case, {"new_card_number": order.new_card_number, "handed_over_by": "c-1"}
        )
        await cases.reached(held)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await cases.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
        assert "being activated" in str(err.value.cause)
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    await _clean(cases)


async def test_a_temporal_cancel_after_the_end_does_not_cut_a_refund_short(
    cases: FakeStack,
) -> None:
    """The chaos programs found it: the case has ended and a payment that came with the
    end is being refunded when Temporal is asked to cancel. The refund still happens."""
    f = cases.fakes
    case, order = await cases.awaiting_payment()
    pay = {"order_id": order, "amount_fen": 2500, "paid_at": datetime.now(UTC)}
    async with cases.holding("refund:P-END") as refunding:
        async with cases.holding("cancel_payment_order") as cancelling:
            cancel = await _cancel_accepted(cases, case)
            await cases.reached(cancelling)
            await cases.client.confirm_payment(case, pay | {"payment_ref": "P-END"})
        await cases.reached(refunding)
        assert (await cancel.result()).stage is Stage.CANCELLED
        await cases.client.handle(case).cancel()  # "Request Cancellation", after the end
    result = await cases.result(case)
    assert result.outcome is Stage.CANCELLED
    assert f.refunds["P-END"].status == "refunded"
    await _clean(cases)


# ---------------------------------------------------------------- 11. registration


async def test_registration_with_a_bad_input_fails_the_update_not_the_task(
    cases: FakeStack,
) -> None:
    card = random_card_number()
    start = WithStartWorkflowOperation(
        "CardReissueWorkflow",
        {
            "applicant": {"name": "赵六", "resident_id": "110105194912310021", "mobile": "1"},
            "card_number": card,
            "insured_category": "retiree",
            "district": "500103",
            "channel": "hotline_12333",
        },
        id=cases.client.case_id_for(card),
        task_queue=cases.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.temporal.execute_update_with_start_workflow(
            CardReissueWorkflow.registration, start_workflow_operation=start
        )
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCaseInput"
    assert "applicant.mobile" in cause.message
    await _refused(cases.client.handle(cases.client.case_id_for(card)))
    assert sum(cases.fakes.attempts.values()) == 0


async def test_an_unknown_card_is_refused_with_no_notice_to_anyone(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    stranger = app.model_copy(update={"card_number": random_card_number()})
    ref = await cases.client.report_loss(stranger)
    cause = await _refused(cases.client.handle(ref.workflow_id))
    assert cause.type == "CardNotFound"
    assert f.notices == [] and f.events == [] and f.runs == {}


# ---------------------------------------------------------------- 12. visibility and answers


async def test_deadlines_of_unit_and_pickup_waits_are_visible(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter", affiliation=EMPLOYER)
    accepted = await cases.client.submit_materials(case, materials(report, mode="instant"))
    assert accepted.stage is Stage.AWAITING_AFFILIATION  # where the case went, not where it was
    st = await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    await cases.notice_sent(st.case_id, "affiliation_request")
    handle = cases.client.handle(case)

    async def shown(after: datetime | None = None) -> datetime:
        """The deadline the Web UI filters by (NextDeadline), as the case itself shows it."""
        deadline = (await handle.describe()).typed_search_attributes.get(NEXT_DEADLINE)
        assert deadline is not None and (after is None or deadline > after), deadline
        assert deadline == (await cases.status(case)).deadline
        return deadline

    first = await eventually(shown)
    await cases.fast_forward(case, cases.policy.affiliation_reminder_interval + timedelta(hours=1))
    later = await eventually(lambda: shown(after=first))  # the next reminder's, not a stale one
    await cases.client.respond_affiliation(case, {"confirmed": True, "responder": "hr"})
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    await cases.approve(case, waive_fee=True, waiver_reason="hardship")
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    pickup = await eventually(lambda: shown(after=later))  # the first pickup reminder's
    assert pickup > st.timeline[-1].entered_at
    assert "affiliation_reminder" in f.templates(st.case_id)


async def test_escalation_of_an_earlier_round_does_not_allow_an_override(
    cases: FakeStack,
) -> None:
    _, case, report = await cases.open_case(channel="counter", affiliation=EMPLOYER)
    await cases.client.submit_materials(case, materials(report))
    await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    rounds = cases.policy.affiliation_reminders_before_escalation + 1
    await cases.fast_forward(
        case, cases.policy.affiliation_reminder_interval * rounds + timedelta(hours=1)
    )
    await cases.until(case, lambda st: "affiliation_escalated" in st.flags)
    await cases.client.respond_affiliation(
        case, {"confirmed": False, "responder": "hr", "reason": "no such employee"}
    )
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    await cases.client.review(
        case,
        {
            "reviewer": "rev-01",
            "verdict": "request_correction",
            "reasons": ["affiliation_proof_missing"],
        },
    )
    await cases.client.submit_materials(case, materials(report, n=1))
    await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    letter = {"doc_id": "L-1", "type": "affiliation_letter", "sha256": "0" * 64}
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.override_affiliation(
            case, {"staff_id": "sup-1", "letter": letter, "note": "paper letter"}
        )
    assert "only after escalation" in str(err.value.cause)


# ---------------------------------------------------------------- 14. formal with the ID alone


async def test_a_counter_makes_the_report_formal_with_the_id_alone(cases: FakeStack) -> None:
    f = cases.fakes
    app, case, _ = await cases.open_case(channel="hotline_12333")
    st = await cases.status(case)
    wrong = {"resident_id": "11010519491231002X", "received_by": "counter-01"}
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.make_report_formal(case, wrong)
    assert "resident_id: does not match the applicant" in str(err.value.cause)
    ack = await cases.client.make_report_formal(
        case, {"resident_id": app.applicant.resident_id, "received_by": "counter-01"}
    )
    assert ack.stage is Stage.AWAITING_MATERIALS
    formal = await cases.status(case)
    assert formal.report_formal and f.report_of(st.case_id).kind == "formal"
    assert formal.deadline is not None and st.deadline is not None
    assert formal.deadline > st.deadline  # the formal deadline, not the temporary expiry
    # The temporary validity passes: nothing lifts itself, the card stays frozen.
    await cases.fast_forward(case, cases.policy.temporary_report_validity + timedelta(hours=1))
    later = await cases.status(case)
    assert later.stage is Stage.AWAITING_MATERIALS and later.card_frozen
    assert f.card(app.card_number) == "frozen"
    with pytest.raises(WorkflowUpdateFailedError):
        await cases.client.card_found(case, {"channel": "hotline_12333"})
    assert "report_formal_at_counter" in f.templates(st.case_id)
    assert [e.actor for e in f.events_of(st.case_id, "report_made_formal")] == ["counter-01"]


# ---------------------------------------------------------------- 16. Beijing time


async def test_times_shown_to_people_are_beijing_time(cases: FakeStack) -> None:
    from zoneinfo import ZoneInfo

    _, case, _ = await cases.open_case(channel="online")
    st = await cases.status(case)
    assert st.deadline is not None
    local = st.deadline.astimezone(ZoneInfo("Asia/Shanghai"))
    [frozen] = cases.fakes.messages(st.case_id, "card_frozen")
    assert f"临时挂失有效期至 {local:%Y-%m-%d %H:%M}（北京时间）" in frozen
    metadata = await cases.client.handle(case).query("__temporal_workflow_metadata")
    assert f"until {local:%Y-%m-%d %H:%M} Beijing time" in metadata.current_details


# ---------------------------------------------------------------- found in review


async def test_a_refused_case_answers_its_cancel_and_lets_the_owner_report(
    cases: FakeStack,
) -> None:
    """Someone with the found card starts the card's case with the wrong ID number and a
    cancel: the case is refused at once (the cancel too), and the owner can report."""
    app = await cases.application()
    stranger = app.model_copy(
        update={"applicant": app.applicant.model_copy(update={"resident_id": "11010519491231002X"})}
    )
    start = WithStartWorkflowOperation(
        "CardReissueWorkflow",
        stranger,
        id=cases.client.case_id_for(app.card_number),
        task_queue=cases.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await asyncio.wait_for(
            cases.client.temporal.execute_update_with_start_workflow(
                CardReissueWorkflow.cancel,
                CancelRequest(operator="ops-1", reason="applicant_request"),
                start_workflow_operation=start,
            ),
            timeout=30,
        )
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "CardOwnerMismatch"
    await _refused(cases.client.handle(cases.client.case_id_for(app.card_number)))
    ref = await cases.client.report_loss(app)
    assert ref.started
    await cases.wait_for(ref.workflow_id, Stage.AWAITING_MATERIALS)
    assert cases.fakes.card(app.card_number) == "frozen"


async def test_plaintext_signals_are_refused_and_kept_on_record(cases: FakeStack) -> None:
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter", affiliation=EMPLOYER)
    await cases.client.submit_materials(case, materials(report))
    st = await cases.wait_for(case, Stage.AWAITING_AFFILIATION)
    await cases.notice_sent(st.case_id, "affiliation_request")
    plain = _plain(cases)
    await plain.get_workflow_handle(case).signal(
        "affiliation_response", {"confirmed": True, "responder": "hr-portal"}
    )
    st = await cases.until(case, lambda st: bool(st.ignored_events))
    assert st.stage is Stage.AWAITING_AFFILIATION  # not applied
    assert st.ignored_events == [
        "affiliation_response in AWAITING_AFFILIATION: refused: sent unencrypted"
    ]
    # A late payment started in plaintext is refused too.
    late = await plain.start_workflow(
        "LatePaymentWorkflow",
        {
            "case_id": st.case_id,
            "payment": {
                "order_id": "PY20261125000001",
                "amount_fen": 1,
                "payment_ref": "P-PLAIN",
                "paid_at": "2026-11-25T08:00:00Z",
            },
        },
        id=f"late-{uuid.uuid4().hex}",
        task_queue=cases.task_queue,
    )
    cause = await _refused(late)
    assert cause.type == "PlaintextPayload"
    assert "P-PLAIN" not in f.payments


async def test_applying_again_after_a_void_card_and_an_old_payment_redelivered(
    cases: FakeStack,
) -> None:
    """A case ends after the report was formal (card void); the person applies again under
    the same card: a new case, formal, with the first cut-off. The platform redelivers the
    first case's payment to it: not this case's money, nothing wedged."""
    f = cases.fakes
    app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report, mode="instant")
    await cases.approve(case)
    await cases.pay(case, ref="P-FIRST")
    first = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    await cases.client.cancel(case, {"operator": "ops-1", "reason": "insured_elsewhere"})
    cases.assert_old_card_void(app.card_number, first.case_id)

    again = await cases.client.report_loss(app)
    assert again.started and again.workflow_id == case
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.case_id != first.case_id and st.report_formal
    assert st.liability_cutoff == first.liability_cutoff
    assert f.card(app.card_number) == "void"
    assert first.fee is not None and first.fee.order_id is not None
    await cases.client.confirm_payment(
        case,
        {
            "order_id": first.fee.order_id,
            "amount_fen": 2500,
            "payment_ref": "P-FIRST",
            "paid_at": datetime.now(UTC),
        },
    )
    assert st.loss_report_number is not None
    await cases.submit(case, st.loss_report_number, mode="instant", n=1)
    await cases.approve(case)
    await cases.pay(case, ref="P-SECOND")
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert any("received before by another case" in e for e in st.ignored_events)
    [new] = [p.new_card_number for p in f.productions_of(st.case_id) if p.status == "produced"]
    await cases.client.card_collected(case, {"new_card_number": new, "handed_over_by": "c-1"})
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    assert f.card(app.card_number) == "replaced" and f.authorised(new)
    await _clean(cases)


async def test_two_confirmations_under_one_reference_that_disagree_are_flagged(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    case, order = await cases.awaiting_payment()
    pay = {"order_id": order, "payment_ref": "P-REF", "paid_at": datetime.now(UTC)}
    await cases.client.confirm_payment(case, pay | {"amount_fen": 1})  # first: 1 fen
    await cases.client.confirm_payment(case, pay | {"amount_fen": 2500})  # then the other
    st = await cases.until(case, lambda st: "payment_conflict" in st.flags)
    assert st.money.received_fen == 1 and st.money.refunded_fen == 1
    [conflict] = f.events_of(st.case_id, "payment_conflict")
    assert "amount_fen=2500" in conflict.detail["received"]


async def test_an_event_for_a_closed_case_never_reaches_the_next(cases: FakeStack) -> None:
    app, case, _ = await cases.open_case(channel="online")
    first = (await cases.status(case)).case_id
    await cases.client.card_found(case, {"channel": "online"})  # withdrawn
    again = await cases.client.report_loss(app)  # lost again, a new case
    await cases.wait_for(again.workflow_id, Stage.AWAITING_MATERIALS)
    with pytest.raises(RPCError):  # a retried "found" for the first case
        await cases.client.card_found(first, {"channel": "online"})
    assert (await cases.status(case)).stage is Stage.AWAITING_MATERIALS
    assert cases.fakes.card(app.card_number) == "frozen"


async def test_two_submissions_accepted_in_one_round_need_one_review(cases: FakeStack) -> None:
    """A clerk submits twice at once: both may be accepted in the round (the second
    waits for the first's check), or the second is refused (while the first is checked,
    or once the case is under review); either way one review decides the round."""
    _, case, report = await cases.open_case(channel="online")
    answers = await asyncio.gather(
        cases.client.submit_materials(case, materials(report)),
        cases.client.submit_materials(case, materials(report)),
        return_exceptions=True,
    )
    accepted = sorted(a.round for a in answers if not isinstance(a, BaseException))
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert accepted in ([1, 2], [1]), answers
    for err in refused:
        assert isinstance(err, WorkflowUpdateFailedError)
        assert any(
            why in str(err.cause)
            for why in ("another submission is being checked", "not accepted in stage UNDER_REVIEW")
        ), err.cause
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    await cases.approve(case)
    st = await cases.status(case)
    assert st.stage is not Stage.UNDER_REVIEW, st.stage
    assert st.correction_round == 0
