"""Adapters to the partner systems over HTTP (httpx): explicit timeouts, an
idempotency key on every call that changes anything, and typed failures — a
system that is down, slow or does not answer is retryable (`PartnerUnavailable`:
the activity's retry policy tries again with the same key, and the partner
answers the repeat with what it did the first time); a call the system refuses
as such is not (`PartnerRefused`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from reissue.schemas.activities import PaymentAtPlatform
from reissue.schemas.errors import PARTNER_REFUSED, PARTNER_UNAVAILABLE, business_error
from reissue.schemas.events import PaymentConfirmation

__all__ = [
    "TIMEOUT",
    "HttpBank",
    "HttpCardBureau",
    "HttpNotificationGateway",
    "HttpPaymentPlatform",
    "PartnerClient",
    "payment_at_platform",
]

# Connect fast or not at all; a call that needs longer than this is treated as lost
# (and repeated with the same idempotency key).
TIMEOUT = httpx.Timeout(connect=2.0, read=10.0, write=5.0, pool=2.0)
# What a partner refuses as such (the request itself is wrong): retrying cannot help.
# Everything else that is not a success is retried with the same key: 5xx, 429, 408,
# 409 (the same key still being processed), 425, and 401/403 during a key rotation.
_REFUSED = frozenset({400, 404, 405, 410, 413, 415, 422})


def _text(answer: dict[str, Any], field: str, partner: str) -> str:
    """A field the partner must have answered with, as a non-empty string."""
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        raise ApplicationError(f"{partner}: answer without {field}", type=PARTNER_UNAVAILABLE)
    return value


def _the_order(answer: dict[str, Any], order_id: str) -> dict[str, Any]:
    """The platform's answer, if it is about this order."""
    if answer.get("order_id") != order_id:
        raise ApplicationError(
            "payment platform: answered for another order", type=PARTNER_UNAVAILABLE
        )
    return answer


def payment_at_platform(
    answer: dict[str, Any], order_id: str, statuses: tuple[str, ...]
) -> PaymentAtPlatform:
    """What the platform says of `order_id`, in one of `statuses`; a paid order carries its
    payment, for this order (only the fields a payment has: the platform may tell more).
    Anything else is not taken as the platform's word: retried."""
    status = _text(_the_order(answer, order_id), "status", "payment platform")
    paid = answer.get("payment")
    try:
        payment = (
            None
            if paid is None
            else PaymentConfirmation.model_validate(
                {k: paid.get(k) for k in PaymentConfirmation.model_fields}
            )
        )
    except (ValidationError, AttributeError):
        payment = None
    if status == "paid":  # with its payment, of this order
        sensible = payment is not None and payment.order_id == order_id
    else:  # and no payment
        sensible = paid is None
    if status not in statuses or not sensible:
        raise ApplicationError(
            f"payment platform: an order {status} that makes no sense here",
            type=PARTNER_UNAVAILABLE,
        )
    return PaymentAtPlatform(order_id=order_id, status=status, payment=payment)


class PartnerClient:
    """One partner system's base URL, with the failure typing every adapter shares."""

    def __init__(self, name: str, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self.name = name
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def post(self, path: str, body: dict[str, Any], *, key: str) -> dict[str, Any]:
        """POST with `Idempotency-Key: key`; the partner's JSON answer."""
        answer = await self.post_or_none(path, body, key=key, missing_ok=False)
        assert answer is not None
        return answer

    async def post_or_none(
        self, path: str, body: dict[str, Any], *, key: str, missing_ok: bool = True
    ) -> dict[str, Any] | None:
        """As `post`; None when the partner answers 404 (it has no such thing)."""
        return await self._ask(
            "POST", path, json=body, headers={"Idempotency-Key": key}, missing_ok=missing_ok
        )

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        """A read; None when the partner answers 404 (it has no such thing)."""
        return await self._ask("GET", path, missing_ok=True)

    async def _ask(
        self, method: str, path: str, *, missing_ok: bool, **request: Any
    ) -> dict[str, Any] | None:
        try:
            r = await self._http.request(method, path, **request)
        except httpx.HTTPError as e:  # refused, reset, timed out: it may or may not have run
            raise ApplicationError(
                f"{self.name}: no answer ({type(e).__name__})", type=PARTNER_UNAVAILABLE
            ) from None
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code in _REFUSED:
            raise business_error(PARTNER_REFUSED, f"{self.name}: refused (HTTP {r.status_code})")
        if not r.is_success:  # 5xx, 429, 408, 409 (the same key still running), 401/403 …
            raise ApplicationError(
                f"{self.name}: unavailable (HTTP {r.status_code})", type=PARTNER_UNAVAILABLE
            )
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):  # not the partner's answer: try again later
            raise ApplicationError(
                f"{self.name}: an answer that is not its JSON", type=PARTNER_UNAVAILABLE
            )
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()


class HttpPaymentPlatform:
    """The payment platform: payment orders (`POST /v1/orders` keyed by our order ID, read
    with `GET /v1/orders/{id}`, closed with `POST /v1/orders/close`), which the payer pays
    there and the platform reports through the front door's signed webhook; and refunds
    (`POST /v1/refunds`, keyed by our refund ID)."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._client = PartnerClient("payment platform", base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def open_order(
        self, *, order_id: str, case_id: str, amount_fen: int, due_at: datetime
    ) -> str:
        """Open the order for the payer to pay; returns the platform's reference."""
        answer = await self._client.post(
            "/v1/orders",
            {
                "order_id": order_id,
                "case_id": case_id,
                "amount_fen": amount_fen,
                "due_at": due_at.isoformat(),
            },
            key=order_id,
        )
        return _text(_the_order(answer, order_id), "platform_ref", "payment platform")

    async def close_order(self, order_id: str, *, key: str) -> PaymentAtPlatform:
        """Close the order so that nobody can pay it any more; the answer says whether
        somebody paid it first.

        A close the platform refuses (say, it has forgotten the key, or will not close
        an order it already settled) is answered by reading the order: closed or paid
        there, that is the answer. Anything else — the platform does not know the
        order, or it is still open — is never taken as "closed, unpaid" (a payment
        whose webhook was lost would be lost with it): the close is retried."""
        try:
            answer = await self._client.post("/v1/orders/close", {"order_id": order_id}, key=key)
        except ApplicationError as e:
            if e.type != PARTNER_REFUSED:
                raise
            at = await self.order(order_id)
            if at is not None and at.status in ("closed", "paid"):
                return at
            raise ApplicationError(
                f"payment platform: would not close order {order_id} ({e.message}); it has it"
                f" {at.status if at else 'not at all'}",
                type=PARTNER_UNAVAILABLE,
            ) from None
        return payment_at_platform(answer, order_id, ("closed", "paid"))

    async def order(self, order_id: str) -> PaymentAtPlatform | None:
        """What the platform has of an order (None: it has no such order)."""
        answer = await self._client.get_or_none(f"/v1/orders/{order_id}")
        if answer is None:
            return None
        return payment_at_platform(answer, order_id, ("open", "closed", "paid"))

    async def refund(self, *, refund_id: str, payment_ref: str, amount_fen: int) -> str:
        answer = await self._client.post(
            "/v1/refunds",
            {"refund_id": refund_id, "payment_ref": payment_ref, "amount_fen": amount_fen},
            key=refund_id,
        )
        return _text(answer, "platform_ref", "payment platform")


class HttpNotificationGateway:
    """SMS and app messages through the notification gateway (`POST /v1/messages`,
    keyed by the message ID: a message sent twice reaches its recipient once)."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._client = PartnerClient("notification gateway", base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, *, message_id: str, to: str, text: str) -> str:
        """Deliver; returns the gateway's delivery receipt."""
        answer = await self._client.post(
            "/v1/messages", {"message_id": message_id, "to": to, "text": text}, key=message_id
        )
        return _text(answer, "receipt", "notification gateway")


class HttpBank:
    """The cooperating bank: freeze and unfreeze a card's account (keyed by the case's
    step, so a repeat is answered as the first call was). A card the bank holds no
    account for is not a third-generation card: nothing to freeze (`none`)."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._client = PartnerClient("bank", base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def set_frozen(self, card_number: str, *, frozen: bool, key: str) -> tuple[str, bool]:
        action = "freeze" if frozen else "unfreeze"
        answer = await self._client.post_or_none(
            f"/v1/accounts/{action}", {"card_number": card_number}, key=key
        )
        if answer is None:
            return "none", False
        status, changed = _text(answer, "status", "bank"), answer.get("changed")
        if status not in (("frozen", "closed") if frozen else ("active",)) or not isinstance(
            changed, bool
        ):
            raise ApplicationError(f"bank: the account is {status}", type=PARTNER_UNAVAILABLE)
        return status, changed

    async def open_account(self, card_number: str, *, previous: str, key: str) -> str:
        answer = await self._client.post(
            "/v1/accounts", {"card_number": card_number, "previous_card_number": previous}, key=key
        )
        return _text(answer, "mode", "bank")

    async def close_account(self, card_number: str, *, key: str) -> str:
        answer = await self._client.post_or_none(
            "/v1/accounts/close", {"card_number": card_number}, key=key
        )
        return "none" if answer is None else _text(answer, "status", "bank")


class HttpCardBureau:
    """The card bureau: production orders (`POST /v1/orders`, keyed by our order ID) and
    their cancellation. It reports back through the front door (`card_produced`,
    `production_failed`), not in these answers."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._client = PartnerClient("card bureau", base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def order(self, *, order_id: str, case_id: str, account_id: str, district: str) -> None:
        answer = await self._client.post(
            "/v1/orders",
            {
                "order_id": order_id,
                "case_id": case_id,
                "account_id": account_id,
                "district": district,
            },
            key=order_id,
        )
        if _text(answer, "order_id", "card bureau") != order_id:
            raise ApplicationError(
                "card bureau: answered for another order", type=PARTNER_UNAVAILABLE
            )

    async def cancel(self, order_id: str, *, key: str) -> str:
        answer = await self._client.post_or_none(
            "/v1/orders/cancel", {"order_id": order_id}, key=key
        )
        return "none" if answer is None else _text(answer, "status", "card bureau")
