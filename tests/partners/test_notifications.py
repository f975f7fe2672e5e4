"""The outbox reaches its recipients through the notification gateway: at least
once from our side, exactly once as the recipient sees it, whatever the gateway
does; a message that cannot be delivered goes to the dead letter and operations
are told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from reissue.activities.outbox import deliver_due, message_id
from reissue.activities.partners import HttpNotificationGateway
from tests.partners.conftest import Simulator
from tests.support import Stack, eventually

NO_WAIT = timedelta(0)


async def _deliver_all(stack: Stack, gateway: HttpNotificationGateway, **kw: object) -> int:
    """Deliver until nothing is due; returns how many rounds it took."""
    for rounds in range(1, 200):
        await deliver_due(stack.pool, gateway, backoff=NO_WAIT, **kw)  # type: ignore[arg-type]
        due = await stack.one(
            "SELECT count(*) FROM notifications WHERE sent_at IS NULL AND dead_at IS NULL"
        )
        if due == 0:
            return rounds
    raise AssertionError("the outbox never emptied")


async def _recipients_saw(sim: Simulator) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for m in await sim.get("/_inbox"):
        seen.setdefault(m["message_id"], []).append(m["text"])
    return seen


async def test_half_the_calls_failing_every_message_arrives_exactly_once(
    stack: Stack, simulator: Callable[..., Awaitable[Simulator]]
) -> None:
    # Half the calls fail: some before the gateway does anything, some after it
    # delivered (the answer is lost, so we send again with the same message ID).
    # (Seeded: the first call fails, so retries always happen; the rest come as drawn.)
    sim = await simulator("notifications", error_rate=0.25, lost_answer_rate=0.35, seed=1)
    for _ in range(3):
        _, case, report = await stack.open_case()
        await stack.submit(case, report)
    outbox = await stack.rows("SELECT id, dedupe_key, message FROM notifications ORDER BY id")
    assert len(outbox) >= 6
    gateway = HttpNotificationGateway(sim.url)
    rounds = await _deliver_all(stack, gateway)
    assert rounds > 1  # failures happened and were retried
    saw = await _recipients_saw(sim)
    assert saw == {message_id(r["dedupe_key"]): [r["message"]] for r in outbox}
    rows = await stack.rows("SELECT sent_at, receipt, attempts FROM notifications")
    assert all(r["sent_at"] is not None and r["receipt"].startswith("RCPT-") for r in rows)
    assert max(r["attempts"] for r in rows) > 1


async def test_an_undeliverable_message_goes_to_the_dead_letter_and_operations_are_told(
    stack: Stack, simulator: Callable[..., Awaitable[Simulator]]
) -> None:
    sim = await simulator("notifications", down=True)
    _, case, _ = await stack.open_case()
    gateway = HttpNotificationGateway(sim.url)
    for _ in range(3):
        await deliver_due(
            stack.pool, gateway, max_attempts=3, backoff=NO_WAIT, give_up_after=NO_WAIT
        )
    dead = await stack.rows(
        "SELECT template, attempts, last_error FROM notifications WHERE dead_at IS NOT NULL"
    )
    assert [(r["template"], r["attempts"], r["last_error"]) for r in dead] == [
        ("card_frozen", 3, "PartnerUnavailable")
    ]
    told = await stack.rows(
        "SELECT recipient, message FROM notifications WHERE template = 'notification_dead_letter'"
    )
    assert len(told) == 1 and told[0]["recipient"] == "operations"
    assert case in told[0]["message"]
    # The notice to operations dies too while the gateway is down, and is not told of again.
    for _ in range(3):
        await deliver_due(
            stack.pool, gateway, max_attempts=3, backoff=NO_WAIT, give_up_after=NO_WAIT
        )
    assert (
        await stack.one(
            "SELECT count(*) FROM notifications WHERE template = 'notification_dead_letter'"
        )
        == 1
    )
    assert await sim.get("/_inbox") == []


async def test_a_gateway_killed_mid_call_and_restarted_delivers_once(
    stack: Stack, simulator: Callable[..., Awaitable[Simulator]]
) -> None:
    sim = await simulator("notifications", latency_ms=3000)
    await stack.open_case()
    gateway = HttpNotificationGateway(sim.url)
    sending = asyncio.create_task(deliver_due(stack.pool, gateway, backoff=NO_WAIT))

    async def in_flight() -> None:  # the message's row is held while its call is out
        assert await stack.one(
            "SELECT count(*) FROM pg_locks WHERE relation = 'notifications'::regclass"
            " AND mode = 'RowShareLock' AND granted"
        )

    await eventually(in_flight, every=0.01)
    await sim.kill()
    assert await sending == (0, 1)  # no answer: not marked sent, tried again later
    await sim.start()
    await _deliver_all(stack, gateway)
    saw = await _recipients_saw(sim)
    assert len(saw) == 1 and all(len(texts) == 1 for texts in saw.values())
    assert await stack.one("SELECT attempts FROM notifications") == 2


class _Broken:
    """A gateway whose answers make no sense (a proxy's error page, say)."""

    async def send(self, *, message_id: str, to: str, text: str) -> str:
        raise KeyError("receipt")


async def test_a_nonsense_answer_fails_that_message_only_and_delivery_goes_on(
    stack: Stack,
) -> None:
    await stack.open_case()
    assert await deliver_due(stack.pool, _Broken(), backoff=NO_WAIT) == (0, 1)
    rows = await stack.rows("SELECT attempts, last_error, sent_at, dead_at FROM notifications")
    assert [(r["attempts"], r["last_error"], r["sent_at"], r["dead_at"]) for r in rows] == [
        (1, "KeyError", None, None)
    ]
