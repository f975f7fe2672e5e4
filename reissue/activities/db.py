"""Connection pool and the idempotency guard every activity runs under."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar, cast

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel

__all__ = ["Connection", "Idempotency", "create_pool"]

# A connection of its own, or one borrowed from a pool: repositories take either.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

R = TypeVar("R", bound=BaseModel)

log = structlog.get_logger(__name__)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool for the system of record."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # A row held by a stuck transaction fails the attempt with a readable error
        # (and a retry) well inside the activity's 30 s, instead of hanging it.
        server_settings={"lock_timeout": "5s", "statement_timeout": "20s"},
    )
    assert pool is not None
    return pool


class Idempotency:
    """Runs a step's writes at most once per key.

    The key row and the step's writes commit in one transaction, so a retry
    after a crash either finds nothing (and does the work) or finds the stored
    result (and returns it). A concurrent duplicate blocks on the key row until
    the first commits, then returns its result.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def run(
        self,
        key: str,
        activity: str,
        result_type: type[R],
        work: Callable[[asyncpg.Connection], Awaitable[R]],
    ) -> R:
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO activity_runs (key, activity) VALUES ($1, $2)"
                " ON CONFLICT (key) DO NOTHING RETURNING true",
                key,
                activity,
            )
            if not fresh:
                stored = await conn.fetchval("SELECT result FROM activity_runs WHERE key = $1", key)
                log.debug("step already done, returning its result", key=key)
                return result_type.model_validate_json(stored)
            # A pooled connection proxies every Connection method the repositories use.
            result = await work(cast(asyncpg.Connection, conn))
            await conn.execute(
                "UPDATE activity_runs SET result = $2 WHERE key = $1",
                key,
                result.model_dump_json(),
            )
        log.debug("step done", key=key)
        return result
