"""The money ledger: every payment received (`payments`) and every refund (`refunds`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from reissue.activities.db import Connection
from reissue.schemas.activities import ReceivePaymentInput

__all__ = [
    "create_refund",
    "get_payment",
    "get_refund",
    "insert_payment",
    "mark_refunded",
]


async def get_payment(conn: Connection, payment_ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM payments WHERE payment_ref = $1 FOR UPDATE", payment_ref
    )


async def insert_payment(
    conn: Connection,
    req: ReceivePaymentInput,
    *,
    applied: bool,
    reason: str | None,
) -> None:
    """Record a payment as received (at the step's time), applied or to be refunded."""
    await conn.execute(
        "INSERT INTO payments (payment_ref, case_id, order_id, amount_fen, paid_at, received_at,"
        " disposition, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        req.payment_ref,
        req.case_id,
        req.order_id,
        req.amount_fen,
        req.paid_at,
        req.at,
        "applied" if applied else "refund",
        reason,
    )


async def get_refund(conn: Connection, payment_ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM refunds WHERE payment_ref = $1 FOR UPDATE", payment_ref
    )


async def create_refund(
    conn: Connection,
    *,
    payment_ref: str,
    case_id: str,
    amount_fen: int,
    reason: str,
    at: datetime,
) -> asyncpg.Record:
    """A refund the payment platform has yet to make. Its ID is the payment's: a retry
    after a crash asks the platform for the same refund again, never for a second one."""
    row = await conn.fetchrow(
        "INSERT INTO refunds (refund_id, payment_ref, case_id, amount_fen, status, reason,"
        " requested_at) VALUES ('RF-' || $1, $1, $2, $3, 'pending', $4, $5)"
        " RETURNING *",
        payment_ref,
        case_id,
        amount_fen,
        reason,
        at,
    )
    assert row is not None
    return row


async def mark_refunded(
    conn: Connection, refund_id: str, *, platform_ref: str, at: datetime
) -> asyncpg.Record | None:
    """The platform made a pending refund; None when it was recorded already."""
    return await conn.fetchrow(
        "UPDATE refunds SET status = 'refunded', refunded_at = $2, platform_ref = $3"
        " WHERE refund_id = $1 AND status = 'pending' RETURNING *",
        refund_id,
        at,
        platform_ref,
    )
