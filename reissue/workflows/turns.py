"""One turn at a time: the order in which a case's coroutines act is fixed by its history.

A case runs several coroutines side by side: its main path, and the handlers of the
events that reach it while it waits. Left to asyncio, whichever resumes first would
issue the next command, and that order is not always the same on replay: when a
query is answered while a local activity runs, the SDK core completes the workflow
task as soon as the local activity has finished and hands its result to the workflow
only with the next task's events (a signal, an update, an activity's result), where a
replay hands it over alone, before them, as its marker stands in the history. The
case would then resume its coroutines in another order on replay than it did live,
issue its commands in another order, and stop with a nondeterminism error (issue #23,
found by the chaos soak).

So a coroutine acts on the case only while it holds the case's turn:

- It takes the turn when it begins (the main path, a handler) and when something the
  history records wakes it (an activity's result, a timer).
- It keeps the turn while a local activity runs: nobody else acts until the holder
  waits for something the history records, whenever the core hands the result over.
- When the holder waits, the turn passes first to a coroutine whose condition now
  holds (in the order they began to wait), then to those the history woke (in the
  order they woke).
- The clock a holder reads (`now`) is the time of the history event that gave it the
  turn, never the time a local activity's result happened to arrive.
- A timer is never cancelled: a wait that ends early leaves its timer to fire unheeded
  (a replay may end the wait before the timer's event where the live run saw both at
  once; a cancellation would be a command the history does not have).

With that, what a case does next depends on its history alone, however the core
groups what it hands over.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from temporalio import workflow

__all__ = ["Gate", "Turns"]

T = TypeVar("T")


class _Waiting:
    """A coroutine waiting for its condition, the turn given up meanwhile."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        self.ready = ready
        self.granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Turn:
    """`async with turns.turn():` — a plain context manager, not a generator: when the
    worker evicts a case, the coroutine holding the turn is closed, and a generator-based
    manager then complains ("generator didn't stop after athrow()") instead of passing
    the turn on."""

    def __init__(self, turns: Turns, handler: bool) -> None:
        self._turns, self._handler = turns, handler

    async def __aenter__(self) -> None:
        turns = self._turns
        turns.handlers += self._handler
        try:
            await turns.take()
        except BaseException:
            turns.handlers -= self._handler
            raise

    async def __aexit__(self, *_: object) -> None:
        self._turns.handlers -= self._handler
        self._turns.give()


class Turns:
    """The case's turn (see the module's docstring). Everything that reads or changes the
    case, or issues a command, runs while holding it."""

    def __init__(self) -> None:
        self._held = False
        self._woken: deque[tuple[asyncio.Future[None], datetime]] = deque()
        self._waiting: list[_Waiting] = []
        self._timers: dict[tuple[datetime, str | None], asyncio.Task[None]] = {}
        self.now: datetime = workflow.now()
        self.local_steps = 0  # local activities run so far
        self.handlers = 0  # handlers begun and not yet done

    def turn(self, *, handler: bool = False) -> _Turn:
        """Hold the turn for the main path or a `handler` of an event; pass it on when done.
        A handler counts from when it begins waiting for its turn to when it is done."""
        return _Turn(self, handler)

    async def take(self) -> None:
        """Take the turn, after those the history woke before this coroutine."""
        woke_at = workflow.now()
        if not self._held:
            self._held = True
            self.now = max(self.now, woke_at)
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._woken.append((granted, woke_at))
        await granted

    def give(self) -> None:
        """Pass the turn on: to a waiter whose condition holds now, else to the next one
        the history woke, else to nobody (the next to take it has it at once)."""
        for waiting in list(self._waiting):
            if waiting.granted.done():  # (cancelled: the case is being evicted)
                self._waiting.remove(waiting)
            elif waiting.ready():
                self._waiting.remove(waiting)
                waiting.granted.set_result(None)  # (the clock stays: its holder decided)
                return
        while self._woken:
            granted, woke_at = self._woken.popleft()
            if not granted.done():
                self.now = max(self.now, woke_at)
                granted.set_result(None)
                return
        self._held = False

    async def wait(
        self,
        ready: Callable[[], bool],
        *,
        until: datetime | None = None,
        summary: str | None = None,
    ) -> bool:
        """Wait, holding the turn before and after, until `ready()` holds (True) or `until`
        passes (False). The turn passes on meanwhile; `summary` names the timer."""
        if ready():
            return True
        timer = None
        if until is not None:
            if until <= self.now:
                return False
            timer = self._timer(until, summary)
        waiting = _Waiting(ready)
        self._waiting.append(waiting)
        self.give()
        await workflow.wait_condition(
            lambda: waiting.granted.done() or (timer is not None and timer.done())
        )
        if waiting.granted.done():
            return True
        self._waiting.remove(waiting)  # the timer fired first: back in line
        await self.take()
        return ready()

    async def let_others_go(self) -> None:
        """Let every coroutine that may act now (its condition holds, or the history woke
        it) have its turn before this one goes on."""
        if not any(w.ready() for w in self._waiting) and not self._woken:
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._woken.append((granted, self.now))
        self.give()
        await granted

    async def outside(self, step: Awaitable[T]) -> T:
        """Await something the history records (an activity), the turn given up meanwhile."""
        self.give()
        try:
            result = await step
        except Exception:  # (not a cancellation: the case is being evicted, nothing more)
            await self.take()
            raise
        await self.take()
        return result

    def _timer(self, until: datetime, summary: str | None) -> asyncio.Task[None]:
        """A timer to `until` (one per deadline: a wait that starts again reuses it)."""
        key = (until, summary)
        timer = self._timers.get(key)
        if timer is None:
            timer = asyncio.ensure_future(workflow.sleep(until - self.now, summary=summary))
            self._timers[key] = timer
        return timer


class Gate:
    """Steps of one kind that must not interleave (registry changes, money) while the turn
    passes on during them: whoever goes through waits its turn at the gate."""

    def __init__(self, turns: Turns) -> None:
        self._turns = turns
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    def through(self) -> Gate:
        """`async with gate.through():` (a plain context manager, as `Turns.turn`)."""
        return self

    async def __aenter__(self) -> None:
        await self._turns.wait(lambda: not self._busy)
        self._busy = True

    async def __aexit__(self, *_: object) -> None:
        self._busy = False
