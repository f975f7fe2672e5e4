"""`/v1/payments`: the payment platform's signed webhook. Every payment is recorded
and, if it pays nothing owed, refunded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from reissue.activities.repositories import api_webhooks
from reissue.api.deps import WEBHOOK_WINDOW_SECONDS, Door, SignedWebhook, signed_payment
from reissue.api.models import Accepted, PaymentNotice
from reissue.api.problems import ApiProblem

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/v1/payments",
    response_model=Accepted,
    summary="The payment platform's webhook (signed)",
    description=(
        "Signed with HMAC-SHA256 over `<X-Reissue-Timestamp>.<body>` "
        "(`X-Reissue-Signature: sha256=<hex>`); refused outside a "
        f"{WEBHOOK_WINDOW_SECONDS} s window or when seen before. Every payment is "
        "recorded and, if it pays nothing owed, refunded."
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
        fresh = await api_webhooks.first_seen(conn, webhook.signature)
    if not fresh:
        raise ApiProblem(
            409, "replayed-webhook", "Replayed webhook", "this webhook was delivered before"
        )
    try:
        await door.client.confirm_payment(notice.case_id, notice.payment)
    except BaseException:
        # Not delivered: the platform's retry must get through (the money must arrive).
        async with door.pool.acquire() as conn:
            await api_webhooks.forget(conn, webhook.signature)
        raise
    return Accepted()
