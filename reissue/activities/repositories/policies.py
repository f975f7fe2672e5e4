"""Versioned case policies (`case_policies`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from reissue.activities.db import Connection
from reissue.schemas.policy import CasePolicy

__all__ = ["add", "in_force", "install", "listing"]


async def in_force(conn: Connection, *, district: str, at: datetime) -> asyncpg.Record | None:
    """The policy in force for a district at a moment: the district's own before the city's,
    the latest start first. `content` comes as the database's own text of it (what the hash covers)."""
    return await conn.fetchrow(
        "SELECT version, district, effective_from, content::text AS content, content_hash"
        " FROM case_policies"
        " WHERE effective_from <= $2 AND (effective_to IS NULL OR $2 < effective_to)"
        "   AND (district = $1 OR district IS NULL)"
        " ORDER BY district IS NULL, effective_from DESC LIMIT 1",
        district,
        at,
    )


async def add(
    conn: Connection,
    *,
    version: str,
    content_json: str,
    effective_from: datetime,
    district: str | None,
) -> asyncpg.Record | None:
    """Add a policy version (the database computes its content hash); None if the
    version exists already (a version is never changed)."""
    return await conn.fetchrow(
        "INSERT INTO case_policies (version, district, effective_from, content, content_hash)"
        " VALUES ($1, $2, $3, $4::jsonb, '') ON CONFLICT (version) DO NOTHING"
        " RETURNING version, content_hash",
        version,
        district,
        effective_from,
        content_json,
    )


async def install(
    conn: Connection,
    policy: CasePolicy,
    *,
    effective_from: datetime,
    district: str | None = None,
) -> asyncpg.Record | None:
    """Put a policy version in force from a moment on (None if the version exists)."""
    return await add(
        conn,
        version=policy.version,
        content_json=policy.model_dump_json(),
        effective_from=effective_from,
        district=district,
    )


async def listing(conn: Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, district, effective_from, effective_to, content_hash FROM case_policies"
        " ORDER BY effective_from, version"
    )
