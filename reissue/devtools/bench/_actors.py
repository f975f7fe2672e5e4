"""The simulated people and partners that drive each benchmark case, reacting to its
history as it is written: ours and the bare reference alike."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from reissue.client import ReissueClient
from reissue.devtools.bench._measures import Timings
from reissue.devtools.seed import enrol_person, standard_submission, synthetic_resident_id
from reissue.devtools.stack import OwnStack
from reissue.ops.audit import HistoryReader
from reissue.schemas.activities import NOTIFY, ORDER_CARD_PRODUCTION, REGISTER_LOSS
from reissue.schemas.case import CaseInput

__all__ = ["Actors", "Review", "Watch", "bare_actors", "our_actors"]


class Watch:
    """One case's history as it is written (a long poll: no busy polling, no query to the
    worker), read step by step: what the actors react to, the same way for ours and for
    the bare reference. A step is known by the side effect it is: `notify:<template>`
    for a notice, else the activity's name (bare: the name its no-op is given)."""

    def __init__(self, client: Client, wid: str) -> None:
        self._reader = HistoryReader(client.data_converter)
        self._steps: dict[str, tuple[int, Any, Any]] = {}
        self._last_timer = 0  # the event ID of the latest timer started: the case waits
        self._wake = asyncio.Event()
        self._following = asyncio.create_task(self._follow(client, wid))

    async def _follow(self, client: Client, wid: str) -> None:
        async for event in client.get_workflow_handle(wid).fetch_history_events(
            wait_new_event=True
        ):
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                self._last_timer = event.event_id
                self._wake.set()
            step = await self._reader.step(event)
            if step is None:
                continue
            kind, arg, result = step
            arg = arg if isinstance(arg, dict) else {}
            if kind == NOTIFY.name:
                kind = f"notify:{arg.get('template')}"
            elif kind == "noop":
                kind = str(arg.get("step"))
            self._steps.setdefault(kind, (event.event_id, arg, result))
            self._wake.set()

    async def _until(self, seen: Callable[[], bool], what: str) -> None:
        while not seen():
            if self._following.done():
                self._following.result()  # (raises what stopped it)
                raise AssertionError(f"the case ended without {what}")
            self._wake.clear()
            await self._wake.wait()

    async def step(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The step's input and result, once the case has done it."""
        await self._until(lambda: name in self._steps, name)
        _, arg, result = self._steps[name]
        return arg, result if isinstance(result, dict) else {}

    async def waiting_after(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The step, once the case has done it and then started waiting (a timer)."""
        found = await self.step(name)
        after = self._steps[name][0]
        await self._until(lambda: self._last_timer > after, f"a wait after {name}")
        return found

    def close(self) -> None:
        self._following.cancel()


Review = Callable[[str], Awaitable[Any]]


class Actors:
    """Simulated counter, reviewer, payer, bureau and collector for one kind of workflow.

    Each reacts to what it would see: the clerk to the notice that the card is frozen,
    the reviewer to the submission's answer, the payer to the payment notice, the
    bureau to the order, the collector to the pickup notice (`Watch`)."""

    def __init__(
        self,
        *,
        start: Callable[[int], Awaitable[str]],
        client: Client,
        materials: Callable[[dict[str, Any]], Awaitable[Any]],
        review_arg: Any,
        payment: Callable[[dict[str, Any]], Awaitable[Any]],
        produced: Callable[[dict[str, Any]], Awaitable[tuple[Any, Any]]],
    ) -> None:
        self.start, self.client = start, client
        self.materials, self.review_arg = materials, review_arg
        self.payment, self.produced = payment, produced

    async def direct_review(self, wid: str) -> Any:
        return await self.client.get_workflow_handle(wid).execute_update("review", self.review_arg)

    async def opened(self, n: int) -> str:
        """Start case `n`; its ID once it has frozen the card and waits for the applicant."""
        wid = await self.start(n)
        watch = Watch(self.client, wid)
        try:
            await watch.waiting_after("notify:card_frozen")
        finally:
            watch.close()
        return wid

    async def case(self, n: int, t: Timings, *, review_http: Review | None = None) -> str:
        began = time.perf_counter()
        wid = await self.start(n)
        t.start.append(time.perf_counter() - began)
        handle = self.client.get_workflow_handle(wid)
        watch = Watch(self.client, wid)
        try:
            await watch.waiting_after("notify:card_frozen")  # for the applicant
            _, registered = await watch.step(REGISTER_LOSS.name)
            await handle.execute_update("submit_materials", await self.materials(registered))
            sent = time.perf_counter()
            if review_http is None:
                await self.direct_review(wid)
                t.update.append(time.perf_counter() - sent)
            else:
                await review_http(wid)
                t.review_http.append(time.perf_counter() - sent)
            notice, _ = await watch.step("notify:payment_requested")
            sent = time.perf_counter()
            await handle.signal("payment_confirmed", await self.payment(notice))
            _, ordered = await watch.step(ORDER_CARD_PRODUCTION.name)
            t.signal_effect.append(time.perf_counter() - sent)
            produced, collected = await self.produced(ordered)
            await handle.signal("card_produced", produced)
            await watch.step("notify:ready_for_pickup")
            await handle.signal("card_collected", collected)
            await handle.result()
        finally:
            watch.close()
        t.end_to_end.append(time.perf_counter() - began)
        return wid


def our_actors(stack: OwnStack, run_id: str, *, channel: str = "counter") -> Actors:
    client: ReissueClient = stack.client
    pool = stack.pool

    async def start(n: int) -> str:
        resident_id = synthetic_resident_id(random.Random(n))
        async with pool.acquire() as conn:
            card = await enrol_person(
                conn,
                secret=stack.settings.case_secret(),
                resident_id=resident_id,
                insured_category="urban_employee",
                district="500103",
                balance_fen=10_000,
                bank_url=stack.settings.require_partner_url("bank"),
                mobile="13800138000",
            )
        app = CaseInput.model_validate(
            {
                "applicant": {"name": "压测", "resident_id": resident_id, "mobile": "13800138000"},
                "card_number": card,
                "insured_category": "urban_employee",
                "district": "500103",
                "channel": channel,
            }
        )
        return (await client.report_loss(app)).workflow_id

    async def materials(registered: dict[str, Any]) -> Any:
        return standard_submission(registered["report_number"], received_by="bench-clerk")

    async def payment(notice: dict[str, Any]) -> Any:
        params = notice["params"]
        return {
            "order_id": params["order"],
            "amount_fen": round(float(params["amount"]) * 100),
            "payment_ref": f"B-{uuid.uuid4().hex[:12]}",
            "paid_at": datetime.now(UTC),
        }

    async def produced(ordered: dict[str, Any]) -> tuple[Any, Any]:
        async with pool.acquire() as conn:  # the bureau's next card number
            card = await conn.fetchval("SELECT next_card_number()")
        return (
            {
                "order_id": ordered["order_id"],
                "new_card_number": card,
                "produced_at": datetime.now(UTC),
            },
            {"new_card_number": card, "handed_over_by": "bench"},
        )

    return Actors(
        start=start,
        client=client.temporal,
        materials=materials,
        review_arg={"reviewer": "bench", "verdict": "approve"},
        payment=payment,
        produced=produced,
    )


def bare_actors(stack: OwnStack, task_queue: str, run_id: str) -> Actors:
    client: Client = stack.client.temporal

    async def start(n: int) -> str:
        wid = f"bare-{run_id}-{n}"
        await client.start_workflow("BareCaseWorkflow", {}, id=wid, task_queue=task_queue)
        return wid

    async def empty(_: dict[str, Any]) -> Any:
        return {}

    async def produced(_: dict[str, Any]) -> tuple[Any, Any]:
        return {}, {}

    return Actors(
        start=start,
        client=client,
        materials=empty,
        review_arg={},
        payment=empty,
        produced=produced,
    )
