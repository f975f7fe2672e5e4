"""Hostile callers and bad timing, as programs: random sequences of events against one case.

A `Program` is what a partner system, a clerk, operations and the clock might do to
a case, in order, some of it at the same moment (a `race`): submissions, the ID
check at a counter, card found, cancellation (through the case or through
Temporal itself), reviews, payments right and wrong, duplicated and late, the
bureau's report, pickup, time passing, a second start for the card under another
workflow ID, plaintext sent without the codec. Every refusal is expected; what
must never happen is a broken invariant (`clients.invariants`).

The property tests generate programs with hypothesis (`tests/reliability`);
`reissue soak --chaos` draws them at random by the thousand.
"""

from __future__ import annotations

import ast
import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from reissue.client._client import ReissueClient
from reissue.devtools.seed import standard_submission
from reissue.schemas.case import CaseInput, CaseStatus
from reissue.schemas.enums import Stage

__all__ = [
    "ACTIONS",
    "CaseProgram",
    "ChaosDriver",
    "Race",
    "expected_card",
    "parse_program",
    "random_program",
]

ACTIONS = (
    "submit",
    "formal",
    "found",
    "cancel",
    "temporal_cancel",
    "approve",
    "correct",
    "reject",
    "unit_yes",
    "unit_no",
    "pay",
    "pay_wrong_amount",
    "pay_wrong_order",
    "pay_again",
    "produced",
    "collected",
    "jump_day",
    "jump_week",
    "jump_month",
    "intruder",
    "plaintext",
)

# A race: events sent at the same moment.
Race = tuple[str, ...]


@dataclass(frozen=True)
class CaseProgram:
    channel: str
    affiliated: bool
    instant: bool
    steps: tuple[Race, ...]


def parse_program(text: str) -> CaseProgram:
    """A program as a soak's error names it: `CaseProgram(channel='counter', …)`."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "CaseProgram"):
            raise ValueError("not a CaseProgram(...)")
        fields = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        program = CaseProgram(
            channel=str(fields["channel"]),
            affiliated=bool(fields["affiliated"]),
            instant=bool(fields["instant"]),
            steps=tuple(tuple(str(a) for a in race) for race in fields["steps"]),
        )
    except (SyntaxError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"must read CaseProgram(channel=…, affiliated=…, instant=…, steps=…): {e}"
        ) from None
    unknown = {a for race in program.steps for a in race} - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown actions {sorted(unknown)}; known: {', '.join(ACTIONS)}")
    return program


def random_program(rng: random.Random, *, length: int = 10) -> CaseProgram:
    """A program drawn at random. Half of them follow the happy path in order (so that
    cases complete, and races hit the late stages too), with other events mixed in."""
    happy = ("submit", "unit_yes", "approve", "pay", "produced", "collected")
    enders = ("found", "cancel", "temporal_cancel", "reject")
    others = tuple(a for a in ACTIONS if a not in enders)

    def any_event() -> str:  # an early end now and then, so that some cases get far
        return rng.choice(enders if rng.random() < 0.2 else others)

    spine = list(happy) if rng.random() < 0.5 else []
    steps: list[Race] = []
    while spine or len(steps) < length:
        action = spine.pop(0) if spine and rng.random() < 0.7 else any_event()
        steps.append((action, any_event()) if rng.random() < 0.15 else (action,))
    return CaseProgram(
        channel=rng.choice(["hotline_12333", "online", "counter"]),
        affiliated=rng.random() < 0.3,
        instant=rng.random() < 0.5,
        steps=tuple(steps),
    )


# What a refused or pointless event looks like to the caller: all expected.
_REFUSALS = (
    WorkflowUpdateFailedError,
    WorkflowFailureError,
    WorkflowAlreadyStartedError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    RPCError,
)


@dataclass
class ChaosDriver:
    """Runs programs against cases on one stack."""

    client: ReissueClient
    pool: asyncpg.Pool
    jump: Callable[[str, timedelta], Awaitable[None]]
    """Lets time pass for a case (virtual time in tests, a short sleep in the soak)."""
    refusals: int = 0
    events: int = 0
    _refs: dict[str, list[str]] = field(default_factory=dict)
    _clocks: dict[str, asyncio.Lock] = field(default_factory=dict)  # per case: one jump at a time

    async def run(self, app: CaseInput, program: CaseProgram) -> CaseStatus | None:
        """Open the case, send the program's events, let it settle; the last status."""
        case = (await self.client.report_loss(app)).workflow_id
        try:
            await self.client.status(case)
        except RPCError:
            pass
        for race in program.steps:
            await asyncio.gather(*(self._send(case, app, program, a) for a in race))
        return await self.settle(case)

    async def settle(self, case: str, *, timeout: float = 30) -> CaseStatus | None:
        """Wait until the case is closed, or waits with no step in flight."""
        handle = self.client.handle(case)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline:
            desc = await handle.describe()
            if desc.close_time is not None:
                try:
                    return await self.client.status(case)
                except Exception:  # a refused case has no status
                    return None
            busy = desc.raw_description.pending_activities
            quiet = 0 if busy else quiet + 1
            if quiet >= 3:
                return await self.client.status(case)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"case {case} did not settle")

    async def _send(self, case: str, app: CaseInput, program: CaseProgram, action: str) -> None:
        self.events += 1
        try:
            await asyncio.wait_for(self._act(case, app, program, action), timeout=60)
        except _REFUSALS:
            self.refusals += 1
        except TimeoutError:
            raise TimeoutError(f"{action} on {case} had no answer in 60 s") from None

    async def _status(self, case: str) -> CaseStatus:
        return await self.client.status(case)

    def _ref(self, case: str) -> str:
        ref = f"CH-{uuid.uuid4().hex[:12]}"
        self._refs.setdefault(case, []).append(ref)
        return ref

    async def _act(self, case: str, app: CaseInput, program: CaseProgram, action: str) -> None:
        c = self.client
        match action:
            case "submit":
                st = await self._status(case)
                if st.loss_report_number is None:
                    return
                sub = standard_submission(
                    st.loss_report_number,
                    category=app.insured_category,
                    mode="instant" if program.instant else "standard",
                    received_by="chaos-clerk",
                    n=st.correction_round,
                )
                await c.submit_materials(case, sub)
            case "formal":
                await c.make_report_formal(
                    case, {"resident_id": app.applicant.resident_id, "received_by": "chaos"}
                )
            case "found":
                await c.card_found(case, {"channel": "hotline_12333"})
            case "cancel":
                await c.cancel(case, {"operator": "chaos", "reason": "data_error"})
            case "temporal_cancel":
                await c.handle(case).cancel()
            case "approve" | "correct" | "reject":
                verdict = {
                    "approve": "approve",
                    "correct": "request_correction",
                    "reject": "reject",
                }[action]
                reasons = [] if verdict == "approve" else ["other"]
                await c.review(case, {"reviewer": "chaos", "verdict": verdict, "reasons": reasons})
            case "unit_yes" | "unit_no":
                answer: dict[str, Any] = {"confirmed": action == "unit_yes", "responder": "hr"}
                if action == "unit_no":
                    answer["reason"] = "not employed here"
                await c.respond_affiliation(case, answer)
            case "pay" | "pay_wrong_amount" | "pay_wrong_order" | "pay_again":
                await self._pay(case, action)
            case "produced":
                st = await self._status(case)
                if st.production_order_id is None:
                    return
                async with self.pool.acquire() as conn:
                    new = str(await conn.fetchval("SELECT next_card_number()"))
                await c.card_produced(
                    case,
                    {
                        "order_id": st.production_order_id,
                        "new_card_number": new,
                        "produced_at": datetime.now(UTC),
                    },
                )
            case "collected":
                st = await self._status(case)
                async with self.pool.acquire() as conn:
                    new = await conn.fetchval(
                        "SELECT new_card_number FROM production_orders WHERE case_id = $1"
                        " AND status = 'produced'",
                        st.case_id,
                    )
                if new:
                    await c.card_collected(
                        case, {"new_card_number": new, "handed_over_by": "counter-1"}
                    )
            case "jump_day" | "jump_week" | "jump_month":
                days = {"jump_day": 1, "jump_week": 8, "jump_month": 31}[action]
                async with self._clocks.setdefault(case, asyncio.Lock()):
                    await self.jump(case, timedelta(days=days))
            case "intruder":
                # A second start for the same card under a workflow ID of the caller's choosing.
                intruder = await c.temporal.start_workflow(
                    "CardReissueWorkflow",
                    app,
                    id=f"reissue-{uuid.uuid4().hex[:16]}",
                    task_queue=c.task_queue,
                )
                await intruder.result()
            case "plaintext":
                plain = Client(
                    c.temporal.service_client,
                    namespace=c.temporal.namespace,
                    data_converter=pydantic_data_converter,
                )
                await plain.get_workflow_handle(case).execute_update(
                    "card_found", {"channel": "online"}
                )

    async def _pay(self, case: str, action: str) -> None:
        st = await self._status(case)
        refs = self._refs.get(case, [])
        if action == "pay_again" and refs:
            ref = refs[-1]
        else:
            ref = self._ref(case)
        order = st.fee.order_id if st.fee and st.fee.order_id else "PY19990101000001"
        amount = st.fee.amount_fen if st.fee and st.fee.amount_fen else 2500
        if action == "pay_wrong_amount":
            amount -= 1
        if action == "pay_wrong_order":
            order = "PY19990101000001"
        await self.client.confirm_payment(
            case,
            {
                "order_id": order,
                "amount_fen": amount,
                "payment_ref": ref,
                "paid_at": datetime.now(UTC),
            },
        )


def expected_card(st: CaseStatus) -> set[str]:
    """What the old card may be once the case has settled in this state."""
    if st.closing is not None:  # undoing or activating: on its way to the outcome
        return {"frozen", "void", "active", "replaced"}
    if not st.stage.terminal:
        return {"frozen"}
    if st.stage is Stage.COMPLETED:
        return {"replaced"}
    if st.report_formal:
        return {"void"}
    # A temporary report stands after a cancellation while valid (issue 24, finding 3).
    return {"frozen"} if st.report_stands_until is not None else {"active"}
