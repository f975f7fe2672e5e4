"""Fee schedule, exemptions and payment orders."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from reissue.activities.db import Connection

__all__ = [
    "create_order",
    "exemption_exists",
    "get_order",
    "order_case",
    "reissue_fee",
    "transition",
]


async def reissue_fee(conn: Connection, schedule: str) -> int | None:
    amount: int | None = await conn.fetchval(
        "SELECT amount_fen FROM fee_schedule WHERE schedule = $1 AND item = 'card_reissue'",
        schedule,
    )
    return amount


async def exemption_exists(conn: Connection, schedule: str, exemption: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM fee_exemptions WHERE schedule = $1 AND exemption = $2",
            schedule,
            exemption,
        )
    )


async def create_order(
    conn: Connection,
    *,
    case_id: str,
    amount_fen: int,
    due_at: datetime | None,
    at: datetime,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO payment_orders (order_id, case_id, amount_fen, status, due_at, created_at)"
        " VALUES ('PY' || to_char($4 AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')"
        "         || lpad(nextval('payment_order_seq')::text, 6, '0'), $1, $2, 'open', $3, $4)"
        " RETURNING *",
        case_id,
        amount_fen,
        due_at,
        at,
    )
    assert row is not None
    return row


async def get_order(conn: Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM payment_orders WHERE order_id = $1 FOR UPDATE", order_id
    )


async def order_case(conn: Connection, order_id: str) -> str | None:
    """The case (`workflow ID:run ID`) whose payment order this is; None if it is no
    order of ours."""
    case_id: str | None = await conn.fetchval(
        "SELECT case_id FROM payment_orders WHERE order_id = $1", order_id
    )
    return case_id


async def transition(
    conn: Connection,
    order_id: str,
    *,
    from_: str,
    to: str,
    at: datetime,
    payment_ref: str | None = None,
    reason: str | None = None,
) -> asyncpg.Record | None:
    """Move an order between states; None if it was not in `from_`."""
    return await conn.fetchrow(
        "UPDATE payment_orders SET status = $3,"
        " payment_ref = COALESCE($5, payment_ref),"
        " paid_at = CASE WHEN $3 = 'paid' THEN $4 ELSE paid_at END,"
        " closed_at = CASE WHEN $3 IN ('cancelled', 'refunded') THEN $4 ELSE closed_at END,"
        " close_reason = COALESCE($6, close_reason)"
        " WHERE order_id = $1 AND status = $2 RETURNING *",
        order_id,
        from_,
        to,
        at,
        payment_ref,
        reason,
    )
