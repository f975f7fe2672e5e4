"""The partner API's answers kept per `Idempotency-Key` (`api_idempotency`): a key is
reserved (status 0) before its request is answered, then holds the answer. Each
reservation carries a token of its own, so a request keeps or frees only its own."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg

from reissue.activities.db import Connection

__all__ = ["forget", "keep", "prune", "reserve"]


async def reserve(
    conn: Connection, *, key_id: str, key: str, request_sha256: str, reservation: str
) -> asyncpg.Record:
    """Reserve the key for this request, or read what it holds, in one statement (a
    key freed meanwhile is reserved, never skipped): `mine` (this request reserved
    it), `request_sha256`, `status` (0 while a request runs) and `body`."""
    # The no-op update locks and returns the row another request holds; a conflicting
    # row deleted meanwhile makes PostgreSQL insert after all (insert-or-update is atomic).
    row = await conn.fetchrow(
        "INSERT INTO api_idempotency AS i"
        " (key_id, idem_key, request_sha256, status, body, reservation)"
        " VALUES ($1, $2, $3, 0, 'null', $4)"
        " ON CONFLICT (key_id, idem_key) DO UPDATE SET key_id = i.key_id"
        " RETURNING i.reservation IS NOT DISTINCT FROM $4 AS mine, i.request_sha256,"
        " i.status, i.body",
        key_id,
        key,
        request_sha256,
        reservation,
    )
    assert row is not None  # an insert or an update: always a row
    return row


async def forget(conn: Connection, *, key_id: str, key: str, reservation: str) -> None:
    """Free this request's reservation: it did nothing (refused, or failed)."""
    await conn.execute(
        "DELETE FROM api_idempotency WHERE key_id = $1 AND idem_key = $2 AND status = 0"
        " AND reservation = $3",
        key_id,
        key,
        reservation,
    )


async def keep(
    conn: Connection, *, key_id: str, key: str, reservation: str, status: int, body: Any
) -> None:
    """Keep the answer under this request's reservation."""
    await conn.execute(
        "UPDATE api_idempotency SET status = $4, body = $5"
        " WHERE key_id = $1 AND idem_key = $2 AND reservation = $3",
        key_id,
        key,
        reservation,
        status,
        json.dumps(body),
    )


async def prune(conn: Connection, *, kept_for: timedelta, reservations_for: timedelta) -> int:
    """Delete answers older than `kept_for` and reservations older than `reservations_for`
    (their request never finished); returns how many."""
    done = await conn.execute(
        "DELETE FROM api_idempotency WHERE created_at < now() - $1::interval"
        " OR (status = 0 AND created_at < now() - $2::interval)",
        kept_for,
        reservations_for,
    )
    return int(done.rsplit(" ", 1)[-1])
