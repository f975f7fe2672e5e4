"""The outbox dispatcher: runs beside a worker and delivers due notifications
through the notification gateway (see `reissue.activities.outbox`)."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from reissue.activities.outbox import NotificationGateway, deliver_due

__all__ = ["dispatch_forever"]

log = structlog.get_logger(__name__)


async def dispatch_forever(
    pool: asyncpg.Pool, gateway: NotificationGateway, *, idle_seconds: float = 1.0
) -> None:
    """Deliver until cancelled: at once while there is work, else every `idle_seconds`."""
    while True:
        try:
            sent, failed = await deliver_due(pool, gateway)
        except Exception as e:  # the database away, say: the loop must outlive it
            log.warning("outbox delivery failed; trying again", error=type(e).__name__)
            sent = failed = 0
        if failed:
            log.info("outbox: some messages failed and will be retried", sent=sent, failed=failed)
        if not sent:
            await asyncio.sleep(idle_seconds)
