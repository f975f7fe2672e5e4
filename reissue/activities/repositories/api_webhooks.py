"""Payment webhooks the partner API has taken in (`api_webhooks_seen`), by signature,
so that a replayed one is refused."""

from __future__ import annotations

from datetime import timedelta

from reissue.activities.db import Connection

__all__ = ["first_seen", "forget", "prune"]


async def first_seen(conn: Connection, signature: str) -> bool:
    """Record the signature; False if it was seen before (a replay)."""
    fresh = await conn.fetchval(
        "INSERT INTO api_webhooks_seen (signature) VALUES ($1)"
        " ON CONFLICT DO NOTHING RETURNING true",
        signature,
    )
    return bool(fresh)


async def forget(conn: Connection, signature: str) -> None:
    """Not delivered after all: the platform's retry must get through."""
    await conn.execute("DELETE FROM api_webhooks_seen WHERE signature = $1", signature)


async def prune(conn: Connection, *, kept_for: timedelta) -> int:
    done = await conn.execute(
        "DELETE FROM api_webhooks_seen WHERE seen_at < now() - $1::interval", kept_for
    )
    return int(done.rsplit(" ", 1)[-1])
