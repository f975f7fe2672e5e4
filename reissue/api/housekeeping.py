"""What the front door keeps only for a while: idempotency answers, webhook
signatures already seen, failed ownership checks, one-time codes, and ended console sessions. Pruned by the service
itself, every few minutes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import structlog

from reissue.activities.db import Connection
from reissue.activities.repositories import (
    api_idempotency,
    api_ownership,
    api_webhooks,
    found_codes,
)
from reissue.console.staff import prune_sessions

__all__ = ["IDEMPOTENCY_KEPT", "prune", "prune_forever"]

log = structlog.get_logger(__name__)

# A repeated request with the same Idempotency-Key is answered the same way for a day.
IDEMPOTENCY_KEPT = timedelta(hours=24)
# A reservation whose request never finished (the process died) is freed after this.
RESERVATION_KEPT = timedelta(hours=1)
# A webhook older than its window is refused by its timestamp; its signature can go.
WEBHOOKS_KEPT = timedelta(hours=1)
# Failed ownership checks count within a window of minutes; a day later, and unlocked,
# they count for nothing.
OWNERSHIP_FAILURES_KEPT = timedelta(days=1)
# One-time codes live minutes, and their sends count within an hour.
FOUND_CODES_KEPT = timedelta(days=1)
# Ended or expired console sessions, kept a while for inquiries.
SESSIONS_KEPT = timedelta(days=30)


async def prune(conn: Connection) -> dict[str, int]:
    """Delete what is past keeping; returns the rows deleted per table."""
    return {
        "api_idempotency": await api_idempotency.prune(
            conn, kept_for=IDEMPOTENCY_KEPT, reservations_for=RESERVATION_KEPT
        ),
        "api_webhooks_seen": await api_webhooks.prune(conn, kept_for=WEBHOOKS_KEPT),
        "ownership_failures": await api_ownership.prune(conn, kept_for=OWNERSHIP_FAILURES_KEPT),
        "card_found_codes": await found_codes.prune(conn, kept_for=FOUND_CODES_KEPT),
        "staff_sessions": await prune_sessions(conn, kept_for=SESSIONS_KEPT),
    }


async def prune_forever(pool: asyncpg.Pool, *, every: timedelta = timedelta(minutes=10)) -> None:
    """`prune` every so often, until cancelled; a failure is logged and tried again."""
    while True:
        try:
            async with pool.acquire() as conn:
                deleted = await prune(conn)
        except (OSError, asyncpg.PostgresError) as e:
            log.warning("front door pruning failed; trying again later", error=type(e).__name__)
        else:
            if any(deleted.values()):
                log.info("front door pruned", **deleted)
        await asyncio.sleep(every.total_seconds())
