"""Activities on fees and payment orders."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.db import Idempotency
from activities.errors import FEE_SCHEDULE_UNKNOWN, ORDER_STATE, PAYMENT_MISMATCH, business_error
from activities.repositories import audit, payments
from schemas.activities import (
    AssessFeeInput,
    CreatePaymentInput,
    FeeAssessment,
    OrderInput,
    PaymentOrder,
    RecordPaymentInput,
)

__all__ = ["PaymentActivities"]


def _order(row: asyncpg.Record) -> PaymentOrder:
    return PaymentOrder(
        order_id=row["order_id"],
        amount_fen=row["amount_fen"],
        status=row["status"],
        payment_ref=row["payment_ref"],
    )


class PaymentActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._once = Idempotency(pool)

    @activity.defn(name="assess_fee")
    async def assess_fee(self, req: AssessFeeInput) -> FeeAssessment:
        """The reissue fee from the fee schedule, less exemptions and staff waivers."""

        async def work(conn: asyncpg.Connection) -> FeeAssessment:
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

        return await self._once.run(req.key, "assess_fee", FeeAssessment, work)

    @activity.defn(name="create_payment_order")
    async def create_payment_order(self, req: CreatePaymentInput) -> PaymentOrder:
        async def work(conn: asyncpg.Connection) -> PaymentOrder:
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

        return await self._once.run(req.key, "create_payment_order", PaymentOrder, work)

    @activity.defn(name="record_payment")
    async def record_payment(self, req: RecordPaymentInput) -> PaymentOrder:
        """Mark an order paid; the amount must match the order exactly."""

        async def work(conn: asyncpg.Connection) -> PaymentOrder:
            row = await payments.get_order(conn, req.order_id)
            if row is None or row["case_id"] != req.case_id:
                raise business_error(ORDER_STATE, "no such payment order for this case")
            if row["amount_fen"] != req.amount_fen:
                raise business_error(
                    PAYMENT_MISMATCH,
                    f"paid {req.amount_fen} fen against an order of {row['amount_fen']} fen",
                )
            if row["status"] == "paid" and row["payment_ref"] == req.payment_ref:
                return _order(row)
            paid = await payments.transition(
                conn,
                req.order_id,
                from_="open",
                to="paid",
                at=req.paid_at,
                payment_ref=req.payment_ref,
            )
            if paid is None:
                raise business_error(ORDER_STATE, f"payment order is {row['status']}")
            await audit.record(
                conn,
                req,
                "payment_recorded",
                actor="payments",
                order_id=req.order_id,
                amount_fen=req.amount_fen,
                payment_ref=req.payment_ref,
            )
            return _order(paid)

        return await self._once.run(req.key, "record_payment", PaymentOrder, work)

    async def _close(self, req: OrderInput, *, from_: str, to: str, name: str) -> PaymentOrder:
        async def work(conn: asyncpg.Connection) -> PaymentOrder:
            row = await payments.get_order(conn, req.order_id)
            if row is None or row["case_id"] != req.case_id:
                raise business_error(ORDER_STATE, "no such payment order for this case")
            if row["status"] == to:
                return _order(row)
            moved = await payments.transition(
                conn, req.order_id, from_=from_, to=to, at=req.at, reason=req.reason
            )
            if moved is None:
                raise business_error(ORDER_STATE, f"cannot {name}: order is {row['status']}")
            await audit.record(
                conn,
                req,
                f"payment_{to}",
                actor="payments",
                order_id=req.order_id,
                amount_fen=row["amount_fen"],
                reason=req.reason,
            )
            return _order(moved)

        return await self._once.run(req.key, name, PaymentOrder, work)

    @activity.defn(name="cancel_payment_order")
    async def cancel_payment_order(self, req: OrderInput) -> PaymentOrder:
        """Close an unpaid order."""
        return await self._close(req, from_="open", to="cancelled", name="cancel_payment_order")

    @activity.defn(name="refund_payment")
    async def refund_payment(self, req: OrderInput) -> PaymentOrder:
        """Return a paid fee when a case ends early."""
        return await self._close(req, from_="paid", to="refunded", name="refund_payment")
