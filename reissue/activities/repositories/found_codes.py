"""One-time codes for lifting a temporary report by hotline or online
(`card_found_codes`): one live code per case, stored as its keyed hash only; sent
within a limit per window, spent by its first right use, dead after too many wrong
tries. Each step is one statement, so requests racing each other meet the same
limits."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from reissue.activities.db import Connection

__all__ = ["explain", "issue", "prune", "spend"]


async def issue(
    conn: Connection,
    *,
    case_id: str,
    code_hash: str,
    ttl: timedelta,
    max_sends: int,
    window: timedelta,
) -> asyncpg.Record:
    """Make `code_hash` the case's live code (any earlier one dies), unless `max_sends`
    codes were sent for the case within `window`. The row's `issued` says whether it
    was; `expires_at` is when the new code expires, `window_ends` when another may be
    sent if not."""
    row = await conn.fetchrow(
        "WITH issued AS ("
        " INSERT INTO card_found_codes AS c (case_id, code_hash, sent_at, expires_at, attempts,"
        "  used_at, sends, window_started_at)"
        " VALUES ($1, $2, now(), now() + $3::interval, 0, NULL, 1, now())"
        " ON CONFLICT (case_id) DO UPDATE SET"
        "  code_hash = EXCLUDED.code_hash, sent_at = now(), expires_at = EXCLUDED.expires_at,"
        "  attempts = 0, used_at = NULL,"
        "  sends = CASE WHEN c.window_started_at <= now() - $5::interval THEN 1"
        "   ELSE c.sends + 1 END,"
        "  window_started_at = CASE WHEN c.window_started_at <= now() - $5::interval"
        "   THEN now() ELSE c.window_started_at END"
        "  WHERE c.window_started_at <= now() - $5::interval OR c.sends < $4"
        " RETURNING expires_at)"
        " SELECT true AS issued, expires_at, NULL::timestamptz AS window_ends FROM issued"
        " UNION ALL"
        " SELECT false, NULL, window_started_at + $5::interval FROM card_found_codes"
        "  WHERE case_id = $1 AND NOT EXISTS (SELECT FROM issued)",
        case_id,
        code_hash,
        ttl,
        max_sends,
        window,
    )
    assert row is not None  # issued, or refused because a row holds the limit
    return row


async def spend(
    conn: Connection, *, case_id: str, code_hash: str, max_attempts: int
) -> asyncpg.Record | None:
    """Try a code for the case, in one statement: a live code (not spent, not expired,
    fewer than `max_attempts` tries) counts the try and, if the code is right, is spent.
    The row's `matched` says which, `attempts_left` how many tries remain; None if the
    case has no live code (`explain` says why)."""
    return await conn.fetchrow(
        "UPDATE card_found_codes SET attempts = attempts + 1,"
        " used_at = CASE WHEN code_hash = $2 THEN now() END"
        " WHERE case_id = $1 AND used_at IS NULL AND expires_at > now() AND attempts < $3"
        " RETURNING used_at IS NOT NULL AS matched, $3 - attempts AS attempts_left",
        case_id,
        code_hash,
        max_attempts,
    )


async def explain(conn: Connection, *, case_id: str, max_attempts: int) -> str:
    """Why the case has no live code: `none` sent, `used`, `exhausted` (too many wrong
    tries) or `expired`."""
    row = await conn.fetchrow(
        "SELECT used_at IS NOT NULL AS used, attempts >= $2 AS exhausted"
        " FROM card_found_codes WHERE case_id = $1",
        case_id,
        max_attempts,
    )
    if row is None:
        return "none"
    if row["used"]:
        return "used"
    return "exhausted" if row["exhausted"] else "expired"


async def prune(conn: Connection, *, kept_for: timedelta) -> int:
    """Forget codes sent longer ago than `kept_for` (long expired, their window over)."""
    done = await conn.execute(
        "DELETE FROM card_found_codes WHERE sent_at < now() - $1::interval", kept_for
    )
    return int(done.split()[-1])
