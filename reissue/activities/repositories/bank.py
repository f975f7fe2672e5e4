"""The cooperating bank's account records and its availability switch."""

from __future__ import annotations

import asyncpg

from reissue.activities.db import Connection

__all__ = ["service_state", "set_status", "status_of"]


async def service_state(conn: Connection) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT available, latency_ms FROM bank_service WHERE id = 1")
    assert row is not None
    return row


async def status_of(conn: Connection, card_number: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM bank_accounts WHERE card_number = $1 FOR UPDATE", card_number
    )
    return status


async def set_status(conn: Connection, card_number: str, *, from_: str, to: str) -> bool:
    done = await conn.fetchval(
        "UPDATE bank_accounts SET status = $3, updated_at = now()"
        " WHERE card_number = $1 AND status = $2 RETURNING true",
        card_number,
        from_,
        to,
    )
    return bool(done)
