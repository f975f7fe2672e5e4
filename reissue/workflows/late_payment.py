"""A payment that reached a case after it closed: into the ledger, then back to the payer.

A closed workflow takes no more signals, but money must never be lost: the client
(`ReissueClient.confirm_payment`) starts this workflow instead, once per payment
reference. It records the payment against the closed case and refunds it through
the payment platform, under the same idempotency keys the case itself would have
used, so a payment the case did see is never recorded or refunded twice.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        RECEIVE_PAYMENT,
        REFUND_PAYMENT,
        PaymentReceipt,
        ReceivePaymentInput,
        RefundInput,
    )
    from reissue.schemas.codec import PLAINTEXT_MARK
    from reissue.schemas.converter import PLAINTEXT_REFUSED
    from reissue.schemas.errors import PLAINTEXT_PAYLOAD
    from reissue.schemas.events import LatePayment
    from reissue.workflows.calls import call

__all__ = ["LatePaymentWorkflow"]

_REASON = "the case had closed when the payment arrived"


@workflow.defn(name="LatePaymentWorkflow")
class LatePaymentWorkflow:
    refuses_plaintext = True  # see `schemas.converter`

    @workflow.run
    async def run(self, raw: RawValue) -> PaymentReceipt:
        """Takes a `LatePayment`."""
        if PLAINTEXT_MARK in raw.payload.metadata:
            raise ApplicationError(PLAINTEXT_REFUSED, type=PLAINTEXT_PAYLOAD, non_retryable=True)
        late = workflow.payload_converter().from_payload(raw.payload, LatePayment)
        p = late.payment
        receipt = await call(
            RECEIVE_PAYMENT,
            ReceivePaymentInput(
                case_id=late.case_id,
                step=f"payment:{p.payment_ref}",
                at=workflow.now(),
                order_id=p.order_id,
                amount_fen=p.amount_fen,
                payment_ref=p.payment_ref,
                paid_at=p.paid_at,
                apply=False,
                reason=_REASON,
            ),
            summary="record the late payment in the ledger",
        )
        if receipt.new and not receipt.applied:  # (not new: another case's, refunded there)
            await call(
                REFUND_PAYMENT,
                RefundInput(
                    case_id=late.case_id,
                    step=f"refund:{p.payment_ref}",
                    at=workflow.now(),
                    payment_ref=p.payment_ref,
                    reason=receipt.reason or _REASON,
                ),
                summary="refund through the payment platform",
            )
        return receipt
