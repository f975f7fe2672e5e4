"""Partner API keys (`api_credentials`): the SHA-256 of each key's secret, never the
secret, with the partner kind, its scopes, (for a portal) its org code, (for a
reporting partner) the channel it reports on, and the clerk or officer it acts for."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from reissue.activities.db import Connection

__all__ = ["insert", "live_key", "revoke"]


async def insert(
    conn: Connection,
    *,
    key_id: str,
    key_sha256: str,
    partner: str,
    scopes: Iterable[str],
    org_code: str | None,
    channel: str | None,
    acts_for: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO api_credentials"
        " (key_id, key_sha256, partner, scopes, org_code, channel, acts_for)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        key_id,
        key_sha256,
        partner,
        sorted(scopes),
        org_code,
        channel,
        acts_for,
    )


async def revoke(conn: Connection, key_id: str) -> bool:
    """True if a live key was revoked now."""
    done = await conn.execute(
        "UPDATE api_credentials SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    return bool(done.endswith("1"))


async def live_key(conn: Connection, key_id: str) -> asyncpg.Record | None:
    """A key not revoked: `key_sha256`, `partner`, `scopes`, `org_code`, `channel`,
    `acts_for`."""
    return await conn.fetchrow(
        "SELECT key_sha256, partner, scopes, org_code, channel, acts_for FROM api_credentials"
        " WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
