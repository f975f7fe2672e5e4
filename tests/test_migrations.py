"""The migrations: numbered, forward-only files that build the system of record on an
empty database, and change nothing when applied again."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from typing import Any

import asyncpg

from reissue.devtools.stack import EmbeddedPostgres, ensure_database
from reissue.migrations import apply_migrations, available_migrations

# What a migration could change: every relation, column, constraint, index, trigger,
# function and sequence of the public schema, and the rows the migrations seed.
_SCHEMA = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       concat_ws(' ', data_type, is_nullable, column_default) AS definition
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', tgrelid::regclass::text || '.' || tgname, pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'function', proname, pg_get_functiondef(oid)
  FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'sequence', sequencename, concat_ws(' ', start_value, last_value)
  FROM pg_sequences WHERE schemaname = 'public'
ORDER BY 1, 2
"""
_SEEDS = (
    "SELECT version, district, effective_from, content::text, content_hash FROM case_policies"
    " ORDER BY 1",
    "SELECT * FROM fee_schedule ORDER BY 1, 2",
    "SELECT * FROM fee_exemptions ORDER BY 1, 2",
)


async def _empty_database(pg: EmbeddedPostgres) -> str:
    dsn = pg.dsn_for("t_migrate_" + uuid.uuid4().hex[:12])
    await ensure_database(pg.admin_dsn, dsn)
    return dsn


async def _state(conn: asyncpg.Connection) -> list[list[tuple[Any, ...]]]:
    return [[tuple(r) for r in await conn.fetch(sql)] for sql in (_SCHEMA, *_SEEDS)]


def test_migrations_are_numbered_in_order() -> None:
    versions = [version for version, _ in available_migrations()]
    assert versions[0] == "0001_baseline"
    assert all(re.fullmatch(r"[0-9]{4}_[a-z0-9_]+", v) for v in versions), versions
    assert [int(v[:4]) for v in versions] == list(range(1, len(versions) + 1))


async def test_migrations_build_an_empty_database_and_a_second_run_changes_nothing(
    pg: EmbeddedPostgres,
) -> None:
    conn = await asyncpg.connect(await _empty_database(pg))
    try:
        assert await apply_migrations(conn) == [v for v, _ in available_migrations()]
        built = await _state(conn)
        assert await apply_migrations(conn) == []
        assert await _state(conn) == built
        applied = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in applied] == [v for v, _ in available_migrations()]

        # The seed a case needs: the city-wide policy in force, with the database's own
        # hash of its content, and the fee schedule it names.
        policy = await conn.fetchrow(
            "SELECT content::text AS content, content_hash FROM case_policies"
            " WHERE version = 'CQ-2026.1' AND district IS NULL AND effective_to IS NULL"
        )
        assert policy is not None
        assert policy["content_hash"] == hashlib.sha256(policy["content"].encode()).hexdigest()
        fee = await conn.fetchval(
            "SELECT amount_fen FROM fee_schedule WHERE schedule = 'CQ-2006' AND item = 'card_reissue'"
        )
        assert fee == 2500
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_migration_once(pg: EmbeddedPostgres) -> None:
    dsn = await _empty_database(pg)
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == [v for v, _ in available_migrations()]
    finally:
        for c in conns:
            await c.close()
