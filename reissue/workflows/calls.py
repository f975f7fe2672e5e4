"""Calling an activity from a workflow through its typed definition (`ActivityDef`):
mypy checks the argument and the result of every call against the activity's own."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
)

from reissue.schemas.activities import (
    RECEIVE_PAYMENT,
    REFUND_PAYMENT,
    ActivityDef,
    CaseStep,
    LocalRun,
    PaymentReceipt,
    ReceivePaymentInput,
    RefundInput,
)
from reissue.schemas.events import PaymentConfirmation
from reissue.workflows.turns import Turns

__all__ = [
    "ATTEMPT_TIMEOUT",
    "LOCAL_RETRY",
    "PARTNER_HEARTBEAT",
    "PARTNER_RETRY",
    "REGISTRY_RETRY",
    "call",
    "return_payment",
    "start_step",
]

In = TypeVar("In", bound=CaseStep)
R = TypeVar("R", bound=BaseModel)

# One attempt of any activity; retries are the retry policy's business.
ATTEMPT_TIMEOUT = timedelta(seconds=30)
# The registry is ours and fast: short attempts, retried until it answers.
REGISTRY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# Partner systems (the bank, the card bureau, the payment platform) are someone
# else's and may be down for hours: back off further. Their calls heartbeat, so a
# worker that dies mid-call is noticed in seconds.
PARTNER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
)
PARTNER_HEARTBEAT = timedelta(seconds=5)
# A step on the registry runs as a local activity: two attempts in the workflow task;
# then it is handed to an activity (`call`).
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)


async def call(
    activity: ActivityDef[In, R],
    arg: In,
    *,
    summary: str,
    turns: Turns | None = None,
    local: bool = True,
) -> R:
    """Run one step. A step on our own system of record runs as a local activity in the
    workflow's worker, within the workflow task (one marker in the history instead of
    three events and a workflow task of its own), with the case's turn held. A partner's
    step (it heartbeats and may wait for hours), a local step that kept failing, or one
    the history must record as an event of its own (`local=False`), runs as an activity,
    the turn given up until it answers (`workflows.turns`)."""
    if local and not activity.partner:
        try:
            try:
                run = await workflow.execute_local_activity(
                    activity.local_name,
                    arg,
                    result_type=LocalRun,
                    start_to_close_timeout=ATTEMPT_TIMEOUT,
                    retry_policy=LOCAL_RETRY,
                    summary=summary,
                )
            finally:
                if turns is not None:
                    turns.local_steps += 1
            return activity.result.model_validate(run.result)
        except CancelledError:
            raise
        except FailureError as e:
            # A local activity's last failure arrives bare (a timeout included), not
            # wrapped as an activity's is. A business refusal ends the step, wrapped so
            # that callers read `ActivityError.cause` either way.
            refusal = e.cause if isinstance(e, ActivityError) else e
            if isinstance(refusal, ApplicationError) and refusal.non_retryable:
                if isinstance(e, ActivityError):
                    raise
                raise _local_failure(activity) from e
        # Still failing: the step goes on as an activity, which operations see among the
        # case's pending activities (its attempts, its last failure) and which retries as
        # long as it takes. The same idempotency key: done once, whichever ran it.
    handle = start_step(activity, arg, summary=summary)
    return await (turns.outside(handle) if turns is not None else handle)


def start_step(
    activity: ActivityDef[In, R], arg: In, *, summary: str
) -> workflow.ActivityHandle[R]:
    """Schedule a step as an activity (a partner's, or one the registry kept failing) and
    return its handle: the caller awaits it, the turn given up meanwhile."""
    handle: workflow.ActivityHandle[R] = workflow.start_activity(
        activity.name,
        arg,
        result_type=activity.result,
        start_to_close_timeout=ATTEMPT_TIMEOUT,
        heartbeat_timeout=PARTNER_HEARTBEAT if activity.partner else None,
        retry_policy=PARTNER_RETRY if activity.partner else REGISTRY_RETRY,
        summary=summary,
    )
    return handle


def _local_failure(activity: ActivityDef[In, R]) -> ActivityError:
    """The activity error a step's refusal is read through (its cause: the refusal)."""
    return ActivityError(
        f"local activity {activity.local_name} failed",
        scheduled_event_id=0,
        started_event_id=0,
        identity="",
        activity_type=activity.local_name,
        activity_id="",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )


async def return_payment(
    case_id: str, p: PaymentConfirmation, reason: str, *, turns: Turns | None = None
) -> PaymentReceipt:
    """A payment that cannot pay a fee (its case closed, or never opened): into the
    ledger, then back to the payer, under the same idempotency keys the case would have
    used, so a payment the case did see is never recorded or refunded twice."""
    at = turns.now if turns is not None else workflow.now()
    receipt = await call(
        RECEIVE_PAYMENT,
        ReceivePaymentInput(
            case_id=case_id,
            step=f"payment:{p.payment_ref}",
            at=at,
            order_id=p.order_id,
            amount_fen=p.amount_fen,
            payment_ref=p.payment_ref,
            paid_at=p.paid_at,
            apply=False,
            reason=reason,
        ),
        summary="record the payment in the ledger",
        turns=turns,
    )
    if receipt.new and not receipt.applied:  # (not new: another case's, refunded there)
        await call(
            REFUND_PAYMENT,
            RefundInput(
                case_id=case_id,
                step=f"refund:{p.payment_ref}",
                at=turns.now if turns is not None else workflow.now(),
                payment_ref=p.payment_ref,
                reason=receipt.reason or reason,
            ),
            summary="refund through the payment platform",
            turns=turns,
        )
    return receipt
