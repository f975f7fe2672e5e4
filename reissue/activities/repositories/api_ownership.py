"""Failed ownership checks at the partner API (`ownership_failures`), per subject (a
card by its case ID, or a credential): counted before each check, taken back when it
passes, and locked for a while past a limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from reissue.activities.db import Connection

__all__ = ["attempt", "lock_if_reached", "passed", "prune"]


async def attempt(
    conn: Connection, *, subject: str, limit: int, window: timedelta
) -> datetime | None:
    """Count a check about to run as failed (it is taken back if it passes). None if
    it may run; else until when the subject is refused (locked, or past its limit)."""
    row = await conn.fetchrow(
        "INSERT INTO ownership_failures AS f (subject, failures, window_started_at)"
        " VALUES ($1, 1, now())"
        " ON CONFLICT (subject) DO UPDATE SET"
        "  failures = CASE WHEN f.locked_until > now() THEN f.failures"
        "   WHEN f.window_started_at <= now() - $2::interval THEN 1"
        "   ELSE f.failures + 1 END,"
        "  window_started_at = CASE WHEN f.locked_until > now() THEN f.window_started_at"
        "   WHEN f.window_started_at <= now() - $2::interval THEN now()"
        "   ELSE f.window_started_at END,"
        "  locked_until = CASE WHEN f.locked_until > now() THEN f.locked_until END"
        " RETURNING failures, locked_until, window_started_at + $2::interval AS window_ends",
        subject,
        window,
    )
    assert row is not None  # an insert or an update: always a row
    if row["locked_until"] is not None:
        until: datetime = row["locked_until"]
        return until
    if row["failures"] > limit:
        ends: datetime = row["window_ends"]
        return ends
    return None


async def passed(conn: Connection, *, subject: str) -> None:
    """The check passed: take back the failure counted before it."""
    await conn.execute(
        "UPDATE ownership_failures SET failures = GREATEST(failures - 1, 0) WHERE subject = $1",
        subject,
    )


async def lock_if_reached(
    conn: Connection, *, subject: str, limit: int, window: timedelta
) -> datetime | None:
    """Lock the subject for `window` if its failures reached `limit` and it is not
    locked yet; until when, if this call locked it (so one caller tells operations)."""
    until: datetime | None = await conn.fetchval(
        "UPDATE ownership_failures SET locked_until = now() + $3::interval"
        " WHERE subject = $1 AND failures >= $2"
        " AND (locked_until IS NULL OR locked_until <= now())"
        " RETURNING locked_until",
        subject,
        limit,
        window,
    )
    return until


async def prune(conn: Connection, *, kept_for: timedelta) -> int:
    """Delete subjects whose window started longer ago than `kept_for` and that are
    not locked; returns how many."""
    done = await conn.execute(
        "DELETE FROM ownership_failures WHERE window_started_at < now() - $1::interval"
        " AND (locked_until IS NULL OR locked_until < now())",
        kept_for,
    )
    return int(done.rsplit(" ", 1)[-1])
