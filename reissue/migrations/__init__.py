"""Forward-only, numbered SQL migrations and the function that applies them."""

from __future__ import annotations

from importlib import resources

import asyncpg

__all__ = ["apply_migrations", "available_migrations"]

# Any fixed number works: it only serialises concurrent migrators.
_LOCK_ID = 7_040_112_001


def available_migrations() -> list[tuple[str, str]]:
    """(version, SQL) for every migration file, in order."""
    files = sorted(
        (f for f in resources.files(__package__).iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; return their versions. Safe to run concurrently."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in available_migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now
