"""What the documents read of the registry: a case's loss report, and how long a
temporary report stays in force under the case's policy."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from reissue.activities.db import Connection
from reissue.schemas.policy import CasePolicy

__all__ = ["loss_report", "temporary_validity"]


async def loss_report(conn: Connection, report_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT report_number, card_number, channel, kind, status, reported_at,"
        " formalised_at, closed_at FROM loss_reports WHERE report_number = $1",
        report_number,
    )


async def temporary_validity(conn: Connection, policy_version: str) -> timedelta | None:
    """The policy version's `temporary_report_validity` (None: no such version)."""
    content = await conn.fetchval(
        "SELECT content::text FROM case_policies WHERE version = $1", policy_version
    )
    if content is None:
        return None
    return CasePolicy.model_validate_json(content).temporary_report_validity
