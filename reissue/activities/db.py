"""Connection pool and the idempotency guard every activity runs under."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy
from opentelemetry import trace
from pydantic import BaseModel
from temporalio import activity

from reissue.schemas.activities import ActivityDef, CaseStep, LocalRun

__all__ = [
    "Connection",
    "Idempotency",
    "create_pool",
    "idempotent",
    "local_variants",
    "partner_step",
]

# A connection of its own, or one borrowed from a pool: repositories take either.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

R = TypeVar("R", bound=BaseModel)
In = TypeVar("In", bound=CaseStep)
T = TypeVar("T")

log = structlog.get_logger(__name__)
_TRACER = trace.get_tracer("reissue.activities")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool for the system of record."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # A row held by a stuck transaction fails the attempt with a readable error
        # (and a retry) well inside the activity's 30 s, instead of hanging it.
        server_settings={"lock_timeout": "5s", "statement_timeout": "20s"},
        reset=_release,
    )
    assert pool is not None
    return pool


async def _release(conn: asyncpg.Connection) -> None:
    """What returning a connection to the pool does beyond ending a transaction left open
    (the pool does that itself): nothing. The pool's connections keep no other session
    state (no SET, LISTEN, cursors or advisory locks), so the default reset (RESET ALL
    and more: a round trip per release) is not needed."""


class Idempotency:
    """Runs a step's writes at most once per key.

    The key row and the step's writes commit in one transaction, so a retry
    after a crash either finds nothing (and does the work) or finds the stored
    result (and returns it). A concurrent duplicate blocks on the key row until
    the first commits, then returns its result.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def stored(self, key: str, result_type: type[R]) -> R | None:
        """The result of the step `key`, if it is done."""
        raw = await self.pool.fetchval("SELECT result FROM activity_runs WHERE key = $1", key)
        return None if raw is None else result_type.model_validate_json(raw)

    async def run(
        self,
        key: str,
        activity: str,
        result_type: type[R],
        work: Callable[[Connection], Awaitable[R]],
    ) -> R:
        # A span per transaction (a no-op without a tracer provider).
        with _TRACER.start_as_current_span(
            f"postgresql {activity}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.operation": activity},
        ):
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO activity_runs (key, activity) VALUES ($1, $2)"
                    " ON CONFLICT (key) DO NOTHING RETURNING true",
                    key,
                    activity,
                )
                if not fresh:
                    stored = await conn.fetchval(
                        "SELECT result FROM activity_runs WHERE key = $1", key
                    )
                    log.debug("step already done, returning its result", key=key)
                    return result_type.model_validate_json(stored)
                result = await work(conn)
                await conn.execute(
                    "UPDATE activity_runs SET result = $2 WHERE key = $1",
                    key,
                    result.model_dump_json(),
                )
        log.debug("step done", key=key)
        return result


class _Steps(Protocol):
    """A class of activities: each runs under the guard it holds."""

    _once: Idempotency


S = TypeVar("S", bound=_Steps)


def idempotent(
    defn: ActivityDef[In, R], *, heartbeat: bool = False
) -> Callable[[Callable[[S, Connection, In], Awaitable[R]]], Callable[[S, In], Awaitable[R]]]:
    """Define the activity `defn` from a step that writes through one connection.

    The step runs inside the idempotency guard's transaction: run twice with the
    same key, it changes the world once and returns the first result.
    """

    def decorate(
        step: Callable[[S, Connection, In], Awaitable[R]],
    ) -> Callable[[S, In], Awaitable[R]]:
        async def run(self: S, req: In) -> R:
            work = self._once.run(
                req.key, defn.name, defn.result, lambda conn: step(self, conn, req)
            )
            return await (_heartbeating(work) if heartbeat else work)

        return _define(defn, run, like=step)

    return decorate


def partner_step(
    defn: ActivityDef[In, R],
) -> Callable[[Callable[[S, In], Awaitable[R]]], Callable[[S, In], Awaitable[R]]]:
    """Define the activity `defn` from a step that calls a partner system.

    The step records what it needs in short transactions of its own (through its
    `_once` guard) and holds no pooled connection while the partner answers: the
    partner call is keyed, so a retry after a crash or a lost answer asks again with
    the same key and gets the first answer. The step heartbeats, so Temporal notices
    a worker that died mid-call.
    """

    def decorate(step: Callable[[S, In], Awaitable[R]]) -> Callable[[S, In], Awaitable[R]]:
        async def run(self: S, req: In) -> R:
            return await _heartbeating(step(self, req))

        return _define(defn, run, like=step)

    return decorate


def _define(
    defn: ActivityDef[In, R], run: Callable[[S, In], Awaitable[R]], *, like: Callable[..., Any]
) -> Callable[[S, In], Awaitable[R]]:
    run.__name__, run.__qualname__ = like.__name__, like.__qualname__
    run.__doc__, run.__module__ = like.__doc__, like.__module__
    # What Temporal reads to decode the argument and encode the result.
    run.__annotations__ = {"req": defn.arg, "return": defn.result}
    defined: Callable[[S, In], Awaitable[R]] = activity.defn(name=defn.name)(run)
    _DEFINED[defined] = defn
    return defined


# Which definition each activity function was defined from (`_define`).
_DEFINED: dict[Callable[..., Any], ActivityDef[Any, Any]] = {}


def local_variants(activities: Sequence[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """Each step on our own system of record (no partner call) also as a local activity
    (`ActivityDef.local_name`): the same step, answering with its input and its result
    (`LocalRun`) so that the history's marker keeps both."""
    variants = []
    for fn in activities:
        defn = _DEFINED.get(getattr(fn, "__func__", fn))
        if defn is not None and not defn.partner:
            variants.append(_local(defn, fn))
    return variants


def _local(defn: ActivityDef[In, R], step: Callable[[In], Awaitable[R]]) -> Callable[..., Any]:
    async def run(req: In) -> LocalRun:
        result = await step(req)
        return LocalRun(arg=req.model_dump(mode="json"), result=result.model_dump(mode="json"))

    run.__name__ = run.__qualname__ = defn.local_name.replace(".", "_")
    run.__doc__ = f"`{defn.name}` as a local activity."
    run.__annotations__ = {"req": defn.arg, "return": LocalRun}
    defined: Callable[..., Any] = activity.defn(name=defn.local_name)(run)
    return defined


async def _heartbeating(work: Awaitable[T], *, every: float = 1.0) -> T:
    """Run `work`, heartbeating while it lasts."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            if activity.in_activity():
                activity.heartbeat()
    finally:
        task.cancel()  # no-op when done; stops the call when the attempt is cancelled
