"""`/v1/payments`: the payment platform's signed webhook. Every payment is recorded
and, if it pays nothing owed, refunded.

The order decides the case: a payment for one of our payment orders goes to the case
that opened the order, and a webhook naming another case is refused (and recorded on
the order's case and told to operations), so that no case can take in, and refund,
another's payment. A payment for no order of ours goes to the case named, which records
it and refunds it (or, once that case has closed or if it never was, a late-payment
workflow does)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from reissue.activities.notifications import render
from reissue.activities.repositories import api_webhooks, audit, casework, payments
from reissue.api.deps import WEBHOOK_WINDOW_SECONDS, Door, SignedWebhook, signed_payment
from reissue.api.models import Accepted, PaymentNotice
from reissue.api.problems import ApiProblem

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter()

_NOT_THE_ORDERS_CASE = "must be the case whose payment order was paid"


@router.post(
    "/v1/payments",
    response_model=Accepted,
    summary="The payment platform's webhook (signed)",
    description=(
        "Signed with HMAC-SHA256 over `<X-Reissue-Timestamp>.<body>` "
        "(`X-Reissue-Signature: sha256=<hex>`); refused outside a "
        f"{WEBHOOK_WINDOW_SECONDS} s window or when seen before. The payment goes to the "
        "case whose payment order it pays; a `case_id` naming another case is refused "
        "(422) and operations are told. Every payment is recorded and, if it pays "
        "nothing owed (also one for no order of ours), refunded."
    ),
)
async def payment_webhook(
    webhook: Annotated[SignedWebhook, Depends(signed_payment)], door: Door
) -> Accepted:
    try:
        notice = PaymentNotice.model_validate_json(webhook.body)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_input=False)]
        ) from None
    async with door.pool.acquire() as conn:
        owner = await payments.order_case(conn, notice.payment.order_id)
    if owner is not None and owner.partition(":")[0] != notice.case_id:
        await _misaddressed(door, webhook, notice, owner)
        raise ApiProblem(
            422,
            "not-the-orders-case",
            "Not the order's case",
            f"case_id: {_NOT_THE_ORDERS_CASE}",
            errors=[{"field": "case_id", "rule": _NOT_THE_ORDERS_CASE}],
        )
    async with door.pool.acquire() as conn:
        fresh = await api_webhooks.first_seen(conn, webhook.signature)
    if not fresh:
        raise ApiProblem(
            409, "replayed-webhook", "Replayed webhook", "this webhook was delivered before"
        )
    try:
        # To the very case that opened the order (its run: once it has closed, a
        # late-payment workflow records and refunds the payment against it).
        await door.client.confirm_payment(owner or notice.case_id, notice.payment)
    except BaseException:
        # Not delivered: the platform's retry must get through (the money must arrive).
        async with door.pool.acquire() as conn:
            await api_webhooks.forget(conn, webhook.signature)
        raise
    return Accepted()


async def _misaddressed(
    door: Door, webhook: SignedWebhook, notice: PaymentNotice, owner: str
) -> None:
    """Put a webhook naming another case than its order's on the order's case's audit
    log, and tell operations (once per webhook: a replay adds nothing). The payment
    itself is not lost: the platform holds it against our order, and the order's case
    takes it in when the platform delivers it to that case, or when it closes the order
    at the platform (which answers that it was paid)."""
    payment = notice.payment
    at = datetime.now(UTC)
    async with door.pool.acquire() as conn, conn.transaction():
        first = await audit.append(
            conn,
            dedupe_key=f"payment-misaddressed:{webhook.signature}",
            case_id=owner,
            event_type="payment_misaddressed",
            actor="payment-platform",
            detail={
                "order_id": payment.order_id,
                "payment_ref": payment.payment_ref,
                "amount_fen": payment.amount_fen,
                "named_case": notice.case_id,
                "refused": f"case_id: {_NOT_THE_ORDERS_CASE}",
            },
            at=at,
        )
        if not first:
            return
        await casework.insert_notification(
            conn,
            dedupe_key=f"payment-misaddressed:{webhook.signature}",
            case_id=owner,
            recipient="operations",
            recipient_ref="operations",
            template="payment_misaddressed",
            message=render(
                "payment_misaddressed",
                {
                    "order": payment.order_id,
                    "ref": payment.payment_ref,
                    "named": notice.case_id,
                    "case": owner.partition(":")[0],
                },
            ),
            at=at,
        )
    log.warning(
        "payment webhook refused: not the order's case",
        order_id=payment.order_id,
        payment_ref=payment.payment_ref,
        named_case=notice.case_id,
        case_id=owner,
    )
