"""`Idempotency-Key` under concurrency: however requests with one key interleave with
a refusal that frees it, at most one of them is ever being answered."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from reissue.activities.repositories import api_idempotency
from reissue.api.credentials import Credential
from reissue.api.idempotency import once
from reissue.api.models import Accepted
from reissue.api.problems import ApiProblem

WHO = Credential("0123456789abcdef", "counter", frozenset(), None)


@dataclass
class _Url:
    path: str


class _Request:
    """What `once` reads of a request: its method, path and body."""

    method = "POST"
    url = _Url("/v1/cases/reissue-0000000000000000/materials")

    async def body(self) -> bytes:
        return b"{}"


@pytest.fixture
def far_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer of the database arrives a little late (a few milliseconds, at
    random), as over a busy network: what a request reads may have changed meanwhile."""
    rng = random.Random(7)
    for name in api_idempotency.__all__:
        call = getattr(api_idempotency, name)

        async def late(*args: Any, _call: Any = call, **kw: Any) -> Any:
            result = await _call(*args, **kw)
            await asyncio.sleep(rng.random() * 0.005)
            return result

        monkeypatch.setattr(api_idempotency, name, late)


async def test_a_key_freed_just_after_a_request_tried_it_is_not_skipped(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving of finding 14, step by step: A holds the key; B tries it, and
    A's refusal frees it before B's next step; D comes while B would run. Two requests
    with one key must never both be answered."""
    reserve, forget = api_idempotency.reserve, api_idempotency.forget
    sender: contextvars.ContextVar[str] = contextvars.ContextVar("sender")
    a_runs, b_tried, a_freed, b_runs, b_done, d_done = (asyncio.Event() for _ in range(6))

    async def reserving(*args: Any, **kw: Any) -> Any:
        result = await reserve(*args, **kw)
        if sender.get() == "B":
            b_tried.set()
            await a_freed.wait()  # A is refused and frees the key meanwhile
        return result

    async def freeing(*args: Any, **kw: Any) -> None:
        await forget(*args, **kw)
        if sender.get() == "A":
            a_freed.set()

    monkeypatch.setattr(api_idempotency, "reserve", reserving)
    monkeypatch.setattr(api_idempotency, "forget", freeing)
    answered: list[str] = []
    running = most = 0

    async def answer() -> Accepted:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            if sender.get() == "A":
                a_runs.set()
                await b_tried.wait()
                raise ApiProblem(409, "WrongStage", "Refused by the case", "not yet")
            if sender.get() == "B":
                b_runs.set()
                with contextlib.suppress(TimeoutError):  # D comes while B runs
                    await asyncio.wait_for(d_done.wait(), timeout=2)
            answered.append(sender.get())
            return Accepted()
        finally:
            running -= 1

    async def send(name: str, after: Callable[[], Awaitable[object]] | None) -> str:
        sender.set(name)
        try:
            if after is not None:
                await after()
            await once(pool, _Request(), WHO, "k", answer)  # type: ignore[arg-type]
        except ApiProblem as e:
            return e.kind
        finally:
            {"B": b_done, "D": d_done}.get(name, asyncio.Event()).set()
        return "answered"

    async def b_runs_or_is_done() -> None:
        waits = [asyncio.create_task(b_runs.wait()), asyncio.create_task(b_done.wait())]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    outcomes = await asyncio.gather(
        send("A", None), send("B", a_runs.wait), send("D", b_runs_or_is_done)
    )
    assert most == 1, f"{most} requests with one Idempotency-Key ran at the same time"
    assert answered == ["D"], f"{answered} answered under one key ({outcomes})"
    assert outcomes == ["WrongStage", "idempotency-key-in-flight", "answered"]


@pytest.mark.usefixtures("far_database")
async def test_a_key_freed_by_a_refusal_never_lets_two_requests_run_at_once(
    pool: asyncpg.Pool,
) -> None:
    """The first request with each key is refused (which frees the key); the case has
    moved on meanwhile, so a request that runs after it succeeds. Whatever the timing,
    one request at a time runs per key, and the key answers once."""
    running: dict[str, int] = {}
    runs: dict[str, int] = {}
    successes: dict[str, int] = {}
    most = 0

    def answering(key: str) -> Callable[[], Awaitable[Accepted]]:
        async def answer() -> Accepted:
            nonlocal most
            running[key] = running.get(key, 0) + 1
            runs[key] = runs.get(key, 0) + 1
            most = max(most, running[key])
            try:
                await asyncio.sleep(0.001)
                if runs[key] == 1:
                    raise ApiProblem(409, "WrongStage", "Refused by the case", "not yet")
                successes[key] = successes.get(key, 0) + 1
                return Accepted()
            finally:
                running[key] -= 1

        return answer

    async def call(n: int) -> str:
        key = f"race-{n % 50}"
        await asyncio.sleep(n * 0.00005)  # they arrive one after another, and meet
        try:
            await once(pool, _Request(), WHO, key, answering(key))  # type: ignore[arg-type]
        except ApiProblem as e:
            return e.kind
        return "answered"

    outcomes = await asyncio.gather(*(call(n) for n in range(1000)))
    assert most == 1, f"{most} requests with one Idempotency-Key ran at the same time"
    assert max(successes.values(), default=0) == 1, "a key answered more than once"
    assert set(outcomes) <= {"WrongStage", "idempotency-key-in-flight", "answered"}


@pytest.mark.parametrize("first", ["kept", "in flight"])
async def test_a_second_request_with_a_reserved_key_is_never_answered_afresh(
    pool: asyncpg.Pool, first: str
) -> None:
    """The reservation and the read of what a key holds are one step: a request either
    reserves the key or reads what it holds."""
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def answer() -> Accepted:
        nonlocal calls
        calls += 1
        started.set()
        if first == "in flight":
            await release.wait()
        return Accepted()

    one = asyncio.create_task(once(pool, _Request(), WHO, "k", answer))  # type: ignore[arg-type]
    await started.wait()
    if first == "kept":
        await one
    second = await asyncio.gather(
        *(once(pool, _Request(), WHO, "k", answer) for _ in range(20)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    release.set()
    await one
    assert calls == 1
    if first == "kept":
        assert all(not isinstance(r, BaseException) and r.status_code == 200 for r in second)
    else:
        assert all(
            isinstance(r, ApiProblem) and r.kind == "idempotency-key-in-flight" for r in second
        )
