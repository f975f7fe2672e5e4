"""Beside a worker: the outbox dispatcher delivers due notifications through the
notification gateway (see `reissue.activities.outbox`), and the registry's sweep lifts
standing loss reports that ran out (see `reissue.activities.standing`)."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from reissue.activities.bank import BankGateway
from reissue.activities.outbox import NotificationGateway, deliver_due
from reissue.activities.standing import lapse_standing_reports

__all__ = ["dispatch_forever", "lapse_forever"]

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


async def lapse_forever(
    pool: asyncpg.Pool, bank: BankGateway, *, idle_seconds: float = 30.0
) -> None:
    """Lift standing loss reports as they run out, until cancelled."""
    while True:
        try:
            await lapse_standing_reports(pool, bank)
        except Exception as e:  # the database away, say: the loop must outlive it
            log.warning("standing reports: sweep failed; trying again", error=type(e).__name__)
        await asyncio.sleep(idle_seconds)
