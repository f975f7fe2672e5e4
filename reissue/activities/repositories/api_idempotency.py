"""The partner API's answers kept per `Idempotency-Key` (`api_idempotency`): a key is
reserved (status 0) before its request is answered, then holds the answer."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg

from reissue.activities.db import Connection

__all__ = ["forget", "keep", "kept", "prune", "reserve"]


async def reserve(conn: Connection, *, key_id: str, key: str, request_sha256: str) -> bool:
    """Reserve the key for this request; False if it was taken before (by any request)."""
    reserved = await conn.fetchval(
        "INSERT INTO api_idempotency (key_id, idem_key, request_sha256, status, body)"
        " VALUES ($1, $2, $3, 0, 'null') ON CONFLICT DO NOTHING RETURNING true",
        key_id,
        key,
        request_sha256,
    )
    return bool(reserved)


async def kept(conn: Connection, *, key_id: str, key: str) -> asyncpg.Record | None:
    """What the key holds: `request_sha256`, `status` (0 while its request runs) and `body`."""
    return await conn.fetchrow(
        "SELECT request_sha256, status, body FROM api_idempotency"
        " WHERE key_id = $1 AND idem_key = $2",
        key_id,
        key,
    )


async def forget(conn: Connection, *, key_id: str, key: str) -> None:
    """Free a reservation whose request did nothing (refused, or failed)."""
    await conn.execute(
        "DELETE FROM api_idempotency WHERE key_id = $1 AND idem_key = $2 AND status = 0",
        key_id,
        key,
    )


async def keep(conn: Connection, *, key_id: str, key: str, status: int, body: Any) -> None:
    """Keep the answer under the reserved key."""
    await conn.execute(
        "UPDATE api_idempotency SET status = $3, body = $4 WHERE key_id = $1 AND idem_key = $2",
        key_id,
        key,
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
