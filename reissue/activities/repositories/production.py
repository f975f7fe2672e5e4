"""Card production orders."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from reissue.activities.db import Connection

__all__ = [
    "create_order",
    "get_order",
    "mark_failed",
    "mark_sent",
    "next_card_number",
    "transition",
]


async def next_card_number(conn: Connection) -> str:
    return str(await conn.fetchval("SELECT next_card_number()"))


async def create_order(
    conn: Connection,
    *,
    case_id: str,
    account_id: str,
    old_card_number: str,
    mode: str,
    district: str,
    at: datetime,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO production_orders"
        " (order_id, case_id, account_id, old_card_number, mode, status, district, ordered_at)"
        " VALUES ('PD' || to_char($6 AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')"
        "         || lpad(nextval('production_order_seq')::text, 6, '0'),"
        "         $1, $2, $3, $4, 'ordered', $5, $6)"
        " RETURNING *",
        case_id,
        account_id,
        old_card_number,
        mode,
        district,
        at,
    )
    assert row is not None
    return row


async def get_order(conn: Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM production_orders WHERE order_id = $1 FOR UPDATE", order_id
    )


async def transition(
    conn: Connection,
    order_id: str,
    *,
    from_: str,
    to: str,
    new_card_number: str | None = None,
    at: datetime | None = None,
) -> bool:
    done = await conn.fetchval(
        "UPDATE production_orders SET status = $3,"
        " new_card_number = COALESCE($4, new_card_number),"
        " produced_at = CASE WHEN $3 = 'produced' THEN $5 ELSE produced_at END"
        " WHERE order_id = $1 AND status = $2 RETURNING true",
        order_id,
        from_,
        to,
        new_card_number,
        at,
    )
    return bool(done)


async def mark_sent(conn: Connection | asyncpg.Pool, order_id: str) -> None:
    """The bureau accepted the order."""
    await conn.execute(
        "UPDATE production_orders SET sent_at = now() WHERE order_id = $1 AND sent_at IS NULL",
        order_id,
    )


async def mark_failed(conn: Connection, order_id: str, *, reason: str, at: datetime) -> bool:
    """The bureau could not make the card of an open order."""
    done = await conn.fetchval(
        "UPDATE production_orders SET status = 'failed', failed_at = $2, failure_reason = $3"
        " WHERE order_id = $1 AND status = 'ordered' RETURNING true",
        order_id,
        at,
        reason,
    )
    return bool(done)
