"""Affiliation requests, material submissions, review decisions and the notification outbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from reissue.activities.db import Connection

__all__ = [
    "affiliation_asked",
    "insert_affiliation_request",
    "insert_notification",
    "insert_review",
    "insert_submission",
]


async def insert_affiliation_request(
    conn: Connection, *, case_id: str, step: str, kind: str, org_code: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO affiliation_requests (case_id, step, kind, org_code, requested_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        case_id,
        step,
        kind,
        org_code,
        at,
    )


async def affiliation_asked(conn: Connection, *, case_id: str, org_code: str, kind: str) -> bool:
    """Whether this case asked this unit (`employer`) or school (`school`) to confirm."""
    asked = await conn.fetchval(
        "SELECT true FROM affiliation_requests"
        " WHERE case_id = $1 AND org_code = $2 AND kind = $3 LIMIT 1",
        case_id,
        org_code,
        kind,
    )
    return bool(asked)


async def insert_submission(
    conn: Connection,
    *,
    case_id: str,
    round: int,
    documents: list[dict[str, Any]],
    passed: bool,
    problems: list[str],
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO material_submissions (case_id, round, documents, passed, problems,"
        " checked_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (case_id, round) DO UPDATE SET documents = EXCLUDED.documents,"
        " passed = EXCLUDED.passed, problems = EXCLUDED.problems, checked_at = EXCLUDED.checked_at",
        case_id,
        round,
        json.dumps(documents),
        passed,
        json.dumps(problems, ensure_ascii=False),
        at,
    )


async def insert_review(
    conn: Connection,
    *,
    case_id: str,
    round: int,
    reviewer: str,
    verdict: str,
    reasons: list[str],
    waive_fee: bool,
    waiver_reason: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO review_decisions (case_id, round, reviewer, verdict, reasons, waive_fee,"
        " waiver_reason, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        case_id,
        round,
        reviewer,
        verdict,
        json.dumps(reasons, ensure_ascii=False),
        waive_fee,
        waiver_reason,
        at,
    )


async def insert_notification(
    conn: Connection,
    *,
    dedupe_key: str,
    case_id: str,
    recipient: str,
    recipient_ref: str,
    template: str,
    message: str,
    at: datetime,
) -> bool:
    done = await conn.fetchval(
        "INSERT INTO notifications (dedupe_key, case_id, recipient, recipient_ref, template,"
        " message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
        dedupe_key,
        case_id,
        recipient,
        recipient_ref,
        template,
        message,
        at,
    )
    return bool(done)
