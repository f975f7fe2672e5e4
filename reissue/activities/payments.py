"""Activities on fees, payment orders and the money ledger.

Every payment that reaches a case goes into the ledger (`receive_payment`):
applied to the fee, or refunded through the payment platform (`refund_payment`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import asyncpg
from temporalio.exceptions import ApplicationError

from reissue.activities.db import Connection, Idempotency, idempotent, partner_step
from reissue.activities.notifications import render
from reissue.activities.repositories import audit, casework, ledger, payments
from reissue.schemas.activities import (
    ASSESS_FEE,
    CANCEL_PAYMENT_ORDER,
    CLOSE_PAYMENT_ORDER,
    OPEN_PAYMENT_ORDER,
    RECEIVE_PAYMENT,
    REFUND_PAYMENT,
    AssessFeeInput,
    CreatePaymentInput,
    FeeAssessment,
    OrderInput,
    PaymentAtPlatform,
    PaymentOrder,
    PaymentReceipt,
    ReceivePaymentInput,
    RefundInput,
    RefundResult,
)
from reissue.schemas.errors import (
    FEE_SCHEDULE_UNKNOWN,
    ORDER_STATE,
    PARTNER_REFUSED,
    PARTNER_UNAVAILABLE,
    business_error,
)
from reissue.schemas.events import LEDGER_MAX_FEN

__all__ = ["PaymentActivities", "PaymentPlatform"]


class PaymentPlatform(Protocol):
    """What the case needs from the payment platform that collects the fee."""

    async def open_order(
        self, *, order_id: str, case_id: str, amount_fen: int, due_at: datetime
    ) -> str:
        """Open an order for the payer to pay; idempotent per `order_id`. Returns the
        platform's reference."""
        ...

    async def close_order(self, order_id: str, *, key: str) -> PaymentAtPlatform:
        """Close an order so nobody can pay it any more; says whether it was paid first."""
        ...

    async def refund(self, *, refund_id: str, payment_ref: str, amount_fen: int) -> str:
        """Return a payment to its payer; idempotent per `refund_id`. Returns the platform's reference."""
        ...


def _order(row: asyncpg.Record) -> PaymentOrder:
    return PaymentOrder(
        order_id=row["order_id"],
        amount_fen=row["amount_fen"],
        status=row["status"],
        payment_ref=row["payment_ref"],
        platform_ref=row["platform_ref"],
    )


class PaymentActivities:
    def __init__(self, pool: asyncpg.Pool, platform: PaymentPlatform) -> None:
        self._once = Idempotency(pool)
        self._platform = platform

    @idempotent(ASSESS_FEE)
    async def assess_fee(self, conn: Connection, req: AssessFeeInput) -> FeeAssessment:
        """The reissue fee from the fee schedule, less exemptions and staff waivers."""
        base = await payments.reissue_fee(conn, req.schedule)
        if base is None:
            raise business_error(FEE_SCHEDULE_UNKNOWN, f"no fee schedule {req.schedule!r}")
        exemption = req.exemption
        if exemption is not None and not await payments.exemption_exists(
            conn, req.schedule, exemption.value
        ):
            exemption = None  # the schedule does not grant it: the full fee applies
        amount = 0 if exemption is not None or req.waived else base
        await audit.record(
            conn,
            req,
            "fee_assessed",
            actor="payments",
            schedule=req.schedule,
            base_fen=base,
            amount_fen=amount,
            exemption=exemption.value if exemption else None,
            waived=req.waived,
            waiver_reason=req.waiver_reason,
        )
        return FeeAssessment(
            amount_fen=amount, base_fen=base, exemption=exemption, waived=req.waived
        )

    @partner_step(OPEN_PAYMENT_ORDER)
    async def open_payment_order(self, req: CreatePaymentInput) -> PaymentOrder:
        """A payment order, written down here and then opened at the payment platform
        (keyed by the order ID), where the payer pays it.

        No transaction is open while the platform answers; a retry finds the order
        written down and asks the platform again with the same key, which answers with
        the order it opened the first time."""
        order = await self._once.run(
            req.key,
            OPEN_PAYMENT_ORDER.name,
            PaymentOrder,
            lambda conn: self._write_order_down(conn, req),
        )
        platform_ref = await self._once.pool.fetchval(
            "SELECT platform_ref FROM payment_orders WHERE order_id = $1", order.order_id
        )
        if platform_ref is None:
            try:
                platform_ref = await self._platform.open_order(
                    order_id=order.order_id,
                    case_id=req.case_id.split(":", 1)[0],
                    amount_fen=order.amount_fen,
                    due_at=req.due_at,
                )
            except ApplicationError as e:
                if e.type != PARTNER_REFUSED:
                    raise
                # The platform refuses our own order: nothing the case can do about it.
                # Retried (operations see it pending, with this failure) until it is put right.
                raise ApplicationError(e.message, type=PARTNER_UNAVAILABLE) from None
            # (The reference recorded first stands, should two attempts be answered.)
            platform_ref = await self._once.pool.fetchval(
                "UPDATE payment_orders SET platform_ref = COALESCE(platform_ref, $2)"
                " WHERE order_id = $1 RETURNING platform_ref",
                order.order_id,
                platform_ref,
            )
        return order.model_copy(update={"platform_ref": platform_ref})

    @partner_step(CLOSE_PAYMENT_ORDER)
    async def close_payment_order(self, req: OrderInput) -> PaymentAtPlatform:
        """Close the order at the payment platform before the case gives up on it (its
        deadline passed, or the case ends early): nobody can pay it after this, and a
        payment made before it whose webhook has not arrived is in the answer."""
        return await self._platform.close_order(req.order_id, key=req.key)

    async def _write_order_down(self, conn: Connection, req: CreatePaymentInput) -> PaymentOrder:
        row = await payments.create_order(
            conn, case_id=req.case_id, amount_fen=req.amount_fen, due_at=req.due_at, at=req.at
        )
        await audit.record(
            conn,
            req,
            "payment_order_created",
            actor="payments",
            order_id=row["order_id"],
            amount_fen=req.amount_fen,
            due_at=req.due_at.isoformat(),
        )
        return _order(row)

    @idempotent(RECEIVE_PAYMENT)
    async def receive_payment(self, conn: Connection, req: ReceivePaymentInput) -> PaymentReceipt:
        """Record a payment in the ledger: applied to the case's open order, or to be refunded."""
        seen = await ledger.get_payment(conn, req.payment_ref)
        if seen is not None:  # the same reference is the same money: once only
            return PaymentReceipt(
                payment_ref=req.payment_ref,
                amount_fen=seen["amount_fen"],
                order_id=seen["order_id"],
                applied=False,
                reason="the reference was received before"
                + ("" if seen["case_id"] == req.case_id else " by another case"),
                new=False,
            )
        if not 0 < req.amount_fen <= LEDGER_MAX_FEN:
            return await self._unrecordable(conn, req)
        reason, order = req.reason, None
        if req.apply:
            row = await payments.get_order(conn, req.order_id)
            if row is None or row["case_id"] != req.case_id:
                reason = "the order is not this case's"
            elif row["amount_fen"] != req.amount_fen:
                reason = f"paid {req.amount_fen} fen against an order of {row['amount_fen']} fen"
            elif (
                paid := await payments.transition(
                    conn,
                    req.order_id,
                    from_="open",
                    to="paid",
                    at=req.paid_at,
                    payment_ref=req.payment_ref,
                )
            ) is None:
                reason = f"the order is {row['status']}"
            else:
                order = _order(paid)
        applied = order is not None
        await ledger.insert_payment(
            conn, req, applied=applied, reason=None if applied else reason or "not applied"
        )
        if not applied:
            await ledger.create_refund(
                conn,
                payment_ref=req.payment_ref,
                case_id=req.case_id,
                amount_fen=req.amount_fen,
                reason=reason or "not applied",
                at=req.at,
            )
        await audit.record(
            conn,
            req,
            "payment_recorded" if applied else "payment_to_refund",
            actor="payments",
            order_id=req.order_id,
            amount_fen=req.amount_fen,
            payment_ref=req.payment_ref,
            reason=None if applied else reason,
        )
        return PaymentReceipt(
            payment_ref=req.payment_ref,
            amount_fen=req.amount_fen,
            order_id=req.order_id,
            applied=applied,
            reason=None if applied else reason or "not applied",
            order=order,
        )

    async def _unrecordable(self, conn: Connection, req: ReceivePaymentInput) -> PaymentReceipt:
        """A payment no ledger row can hold (0 fen, or more than the ledger's largest
        amount): no real payment, and retrying cannot record it. It is put on the case's
        audit log and told to operations, who check it with the platform; the case reads
        the answer (nothing under this reference in the ledger: `new` False, 0 fen, no
        order) as an anomaly and goes on, its money gate free for the real payment."""
        receipt = PaymentReceipt.not_recorded(req.payment_ref)
        await audit.record(
            conn,
            req,
            "payment_unrecordable",
            actor="payments",
            order_id=req.order_id,
            amount_fen=str(req.amount_fen),
            payment_ref=req.payment_ref,
            reason=receipt.reason,
        )
        await casework.insert_notification(
            conn,
            dedupe_key=f"{req.key}:operations",
            case_id=req.case_id,
            recipient="operations",
            recipient_ref="operations",
            template="payment_unrecordable",
            message=render(
                "payment_unrecordable",
                {
                    "case": req.case_id.partition(":")[0],
                    "ref": req.payment_ref,
                    "order": req.order_id,
                    "amount": str(req.amount_fen),
                },
            ),
            at=req.at,
        )
        return receipt

    @partner_step(REFUND_PAYMENT)
    async def refund_payment(self, req: RefundInput) -> RefundResult:
        """Return a payment to its payer through the payment platform; an applied
        payment's order becomes refunded.

        The refund is written down first (pending, its ID the payment's), then the
        platform is asked with that ID as the key, no transaction open while it
        answers, then its answer is recorded: a retry at any point asks the platform
        for the same refund, never for a second one."""
        asked = await self._once.run(
            req.key,
            REFUND_PAYMENT.name,
            RefundResult,
            lambda conn: self._write_refund_down(conn, req),
        )
        if asked.status != "pending":
            return asked
        # (A retry after the refund was recorded does not ask the platform again.)
        status = await self._once.pool.fetchval(
            "SELECT status FROM refunds WHERE refund_id = $1", asked.refund_id
        )
        if status == "pending":
            platform_ref = await self._platform.refund(
                refund_id=asked.refund_id,
                payment_ref=asked.payment_ref,
                amount_fen=asked.amount_fen,
            )
            async with self._once.pool.acquire() as conn, conn.transaction():
                refund = await ledger.mark_refunded(
                    conn, asked.refund_id, platform_ref=platform_ref, at=req.at
                )
                if refund is not None:  # (None: a concurrent attempt recorded it first)
                    await audit.record(
                        conn,
                        req,
                        "payment_refunded",
                        actor="payments",
                        order_id=asked.order_id,
                        payment_ref=asked.payment_ref,
                        amount_fen=refund["amount_fen"],
                        reason=refund["reason"],
                    )
        return asked.model_copy(update={"status": "refunded"})

    async def _write_refund_down(self, conn: Connection, req: RefundInput) -> RefundResult:
        ref = req.payment_ref
        payment = await ledger.get_payment(conn, ref)
        if payment is None or payment["case_id"] != req.case_id:
            raise business_error(ORDER_STATE, "no such payment received by this case")
        refund = await ledger.get_refund(conn, ref)
        if refund is None:
            refund = await ledger.create_refund(
                conn,
                payment_ref=ref,
                case_id=req.case_id,
                amount_fen=payment["amount_fen"],
                reason=req.reason,
                at=req.at,
            )
        order_id = None
        if payment["disposition"] == "applied":
            order_id = payment["order_id"]
            await payments.transition(
                conn, order_id, from_="paid", to="refunded", at=req.at, reason=req.reason
            )
        return RefundResult(
            refund_id=refund["refund_id"],
            payment_ref=ref,
            amount_fen=refund["amount_fen"],
            status=refund["status"],
            order_id=order_id,
        )

    @idempotent(CANCEL_PAYMENT_ORDER)
    async def cancel_payment_order(self, conn: Connection, req: OrderInput) -> PaymentOrder:
        """Close an unpaid order."""
        row = await payments.get_order(conn, req.order_id)
        if row is None or row["case_id"] != req.case_id:
            raise business_error(ORDER_STATE, "no such payment order for this case")
        if row["status"] == "cancelled":
            return _order(row)
        moved = await payments.transition(
            conn, req.order_id, from_="open", to="cancelled", at=req.at, reason=req.reason
        )
        if moved is None:
            raise business_error(ORDER_STATE, f"cannot cancel: order is {row['status']}")
        await audit.record(
            conn,
            req,
            "payment_cancelled",
            actor="payments",
            order_id=req.order_id,
            amount_fen=row["amount_fen"],
            reason=req.reason,
        )
        return _order(moved)
