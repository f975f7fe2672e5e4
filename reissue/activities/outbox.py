"""Delivering the notification outbox through the notification gateway.

At least once: a message is marked sent only after the gateway answered, in the
same transaction that held it, so a crash or a lost answer means it is sent
again; the gateway deduplicates by message ID, so the recipient sees it once.
Failures back off (`BACKOFF` doubling, at most `MAX_BACKOFF`). A message the
gateway refuses goes to the dead letter at once; one it cannot take (down, slow)
after `MAX_ATTEMPTS` and `GIVE_UP_AFTER` both. Operations are told through the
outbox and, since the gateway may be what fails, in the log at error level (a
message to operations that dies is not told about again).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Protocol

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

from reissue.activities.db import Connection
from reissue.activities.notifications import render
from reissue.schemas.errors import PARTNER_REFUSED

log = structlog.get_logger(__name__)

__all__ = [
    "BACKOFF",
    "GIVE_UP_AFTER",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF",
    "NotificationGateway",
    "deliver_due",
    "message_id",
]

BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=30)
MAX_ATTEMPTS = 8
GIVE_UP_AFTER = timedelta(hours=24)


class NotificationGateway(Protocol):
    async def send(self, *, message_id: str, to: str, text: str) -> str: ...


def message_id(dedupe_key: str) -> str:
    """The message's ID at the gateway: fixed by the outbox row, the same on every try."""
    return "m-" + hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]


async def deliver_due(
    pool: asyncpg.Pool,
    gateway: NotificationGateway,
    *,
    batch: int = 20,
    max_attempts: int = MAX_ATTEMPTS,
    backoff: timedelta = BACKOFF,
    give_up_after: timedelta = GIVE_UP_AFTER,
) -> tuple[int, int]:
    """Try up to `batch` messages that are due, oldest first; returns (sent, failed).
    Each message is tried once per call, held (its row locked) only while it is
    sent, and its outcome commits on its own; several processes share the work
    (each skips rows another holds)."""
    sent = failed = 0
    tried: list[int] = []  # each message once per call, however soon it is due again
    for _ in range(batch):
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT id, dedupe_key, case_id, recipient, recipient_ref, message, attempts,"
                " now() - created_at AS age"
                " FROM notifications WHERE sent_at IS NULL AND dead_at IS NULL"
                " AND next_attempt_at <= now() AND id <> ALL($1::bigint[])"
                " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                tried,
            )
            if row is None:
                break
            tried.append(row["id"])
            try:
                receipt = await gateway.send(
                    message_id=message_id(row["dedupe_key"]),
                    # The gateway resolves the address from the reference (no personal data here).
                    to=f"{row['recipient']}:{row['recipient_ref']}",
                    text=row["message"],
                )
            except Exception as e:  # this message's failure only, whatever it is
                failed += 1
                error = (e.type if isinstance(e, ApplicationError) else None) or type(e).__name__
                await _failed(conn, row, error, max_attempts, backoff, give_up_after)
            else:
                sent += 1
                await conn.execute(
                    "UPDATE notifications SET sent_at = now(), receipt = $2,"
                    " attempts = attempts + 1, last_error = NULL WHERE id = $1",
                    row["id"],
                    receipt,
                )
    return sent, failed


async def _failed(
    conn: Connection,
    row: asyncpg.Record,
    error: str,
    max_attempts: int,
    backoff: timedelta,
    give_up_after: timedelta,
) -> None:
    attempts = row["attempts"] + 1
    # A gateway that is down is waited for (a day); one that refuses the message is not.
    refused = error == PARTNER_REFUSED
    if not refused and (attempts < max_attempts or row["age"] < give_up_after):
        wait = min(backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        await conn.execute(
            "UPDATE notifications SET attempts = $2, last_error = $3,"
            " next_attempt_at = now() + $4::interval WHERE id = $1",
            row["id"],
            attempts,
            error,
            wait,
        )
        return
    await conn.execute(
        "UPDATE notifications SET attempts = $2, last_error = $3, dead_at = now() WHERE id = $1",
        row["id"],
        attempts,
        error,
    )
    log.error("notification in the dead letter", case_id=row["case_id"], error=error)
    if row["recipient"] != "operations":
        await conn.execute(
            "INSERT INTO notifications (dedupe_key, case_id, recipient, recipient_ref, template,"
            " message, created_at) VALUES ($1, $2, 'operations', 'operations',"
            " 'notification_dead_letter', $3, now()) ON CONFLICT (dedupe_key) DO NOTHING",
            f"dead-letter:{row['id']}",
            row["case_id"],
            render(
                "notification_dead_letter",
                {"case": row["case_id"].partition(":")[0], "n": str(attempts), "error": error},
            ),
        )
