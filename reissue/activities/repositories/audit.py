"""The append-only audit log (`case_events`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from reissue.activities.db import Connection
from reissue.schemas.activities import CaseStep

__all__ = ["append", "events_for", "record"]


async def append(
    conn: Connection,
    *,
    dedupe_key: str,
    case_id: str,
    event_type: str,
    actor: str,
    detail: dict[str, Any],
    at: datetime,
) -> bool:
    """Append one event; a second append with the same key is a no-op. True if written."""
    written = await conn.fetchval(
        "INSERT INTO case_events (dedupe_key, case_id, event_type, actor, detail, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
        dedupe_key,
        case_id,
        event_type,
        actor,
        json.dumps(detail, ensure_ascii=False, default=str),
        at,
    )
    return bool(written)


async def record(
    conn: Connection, step: CaseStep, event_type: str, *, actor: str, **detail: Any
) -> bool:
    """Append the audit event of an activity step, keyed by the step itself."""
    return await append(
        conn,
        dedupe_key=step.key,
        case_id=step.case_id,
        event_type=event_type,
        actor=actor,
        detail=detail,
        at=step.at,
    )


async def events_for(conn: Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT event_type, actor, detail, occurred_at FROM case_events"
        " WHERE case_id = $1 ORDER BY id",
        case_id,
    )
