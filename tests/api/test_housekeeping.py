"""The front door keeps idempotency answers, webhook signatures and ended sessions
only for a while; the rest stays."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from reissue.api.housekeeping import prune


async def test_prune_deletes_only_what_is_past_keeping(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for key, status, age in (
            ("old", 200, timedelta(hours=25)),
            ("fresh", 200, timedelta(hours=1)),
            ("stuck", 0, timedelta(hours=2)),
            ("running", 0, timedelta(minutes=1)),
        ):
            await conn.execute(
                "INSERT INTO api_idempotency (key_id, idem_key, request_sha256, status, body,"
                " created_at) VALUES ('k', $1, 'x', $2, 'null', now() - $3::interval)",
                key,
                status,
                age,
            )
        for sig, age in (
            ("sha256=old", timedelta(hours=2)),
            ("sha256=new", timedelta(minutes=1)),
        ):
            await conn.execute(
                "INSERT INTO api_webhooks_seen (signature, seen_at) VALUES ($1, now() - $2::interval)",
                sig,
                age,
            )
        for sid, expires, ended in (
            ("gone", "now() - interval '31 days'", "NULL"),
            ("ended-long-ago", "now() + interval '1 hour'", "now() - interval '40 days'"),
            ("recent", "now() - interval '1 day'", "NULL"),
            ("live", "now() + interval '1 hour'", "NULL"),
        ):
            await conn.execute(
                "INSERT INTO staff_sessions (session_sha256, user_id, display_name, roles,"
                f" csrf_token, expires_at, ended_at) VALUES ($1, 'u', 'u', '{{reviewer}}', 't',"
                f" {expires}, {ended})",
                sid,
            )
        for subject, age, locked in (
            ("card:old", timedelta(days=2), None),
            ("card:old-but-locked", timedelta(days=2), timedelta(hours=1)),
            ("card:recent", timedelta(minutes=5), None),
        ):
            await conn.execute(
                "INSERT INTO ownership_failures (subject, failures, window_started_at,"
                " locked_until) VALUES ($1, 3, now() - $2::interval, now() + $3::interval)",
                subject,
                age,
                locked or timedelta(hours=-1),
            )
        for case, age in (("reissue-old", timedelta(days=2)), ("reissue-new", timedelta(0))):
            await conn.execute(
                "INSERT INTO card_found_codes (case_id, code_hash, sent_at, expires_at, sends,"
                " window_started_at) VALUES ($1, 'h', now() - $2::interval,"
                " now() - $2::interval, 1, now() - $2::interval)",
                case,
                age,
            )
        assert await prune(conn) == {
            "api_idempotency": 2,
            "api_webhooks_seen": 1,
            "ownership_failures": 1,
            "card_found_codes": 1,
            "staff_sessions": 2,
        }
        assert await prune(conn) == {
            "api_idempotency": 0,
            "api_webhooks_seen": 0,
            "ownership_failures": 0,
            "card_found_codes": 0,
            "staff_sessions": 0,
        }
        kept = await conn.fetch("SELECT idem_key FROM api_idempotency ORDER BY idem_key")
        assert [r["idem_key"] for r in kept] == ["fresh", "running"]
        sessions = await conn.fetch("SELECT session_sha256 FROM staff_sessions ORDER BY 1")
        assert [r["session_sha256"] for r in sessions] == ["live", "recent"]
