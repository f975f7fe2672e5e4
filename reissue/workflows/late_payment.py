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
    from reissue.schemas.activities import PaymentReceipt
    from reissue.schemas.codec import PLAINTEXT_MARK
    from reissue.schemas.converter import PLAINTEXT_REFUSED
    from reissue.schemas.errors import PLAINTEXT_PAYLOAD
    from reissue.schemas.events import LatePayment
    from reissue.workflows.calls import return_payment

__all__ = ["LatePaymentWorkflow"]

_REASON = "the case had closed when the payment arrived"


@workflow.defn(name="LatePaymentWorkflow")
class LatePaymentWorkflow:
    @workflow.run
    async def run(self, raw: RawValue) -> PaymentReceipt:
        """Takes a `LatePayment`."""
        if PLAINTEXT_MARK in raw.payload.metadata:
            raise ApplicationError(PLAINTEXT_REFUSED, type=PLAINTEXT_PAYLOAD, non_retryable=True)
        late = workflow.payload_converter().from_payload(raw.payload, LatePayment)
        return await return_payment(late.case_id, late.payment, _REASON)
