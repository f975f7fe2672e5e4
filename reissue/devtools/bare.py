"""Bare-Temporal reference for the benchmark: the happy path's shape with nothing inside.

The same activities (17, all no-ops), updates (2), signals (3) and timers (5) in
the same order as a happy-path CardReissueWorkflow reported at a counter, with
the fee paid and standard production, so that `reissue bench` can put our cost
next to what Temporal itself costs: the naive shape, one activity per side effect.
Each no-op is given the name of the side effect it stands for, which the benchmark's
actors react to as they do to ours (a notice sent, a card ordered).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

__all__ = ["BareCaseWorkflow", "noop"]

_TIMER = timedelta(days=2)


@workflow.defn(name="BareCaseWorkflow")
class BareCaseWorkflow:
    def __init__(self) -> None:
        self.stage = "LOSS_REPORTED"
        self.events: set[str] = set()
        self.decided = False

    async def _acts(self, *steps: str) -> None:
        for step in steps:
            await workflow.execute_activity(
                "noop",
                {"step": step},
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )

    async def _until(self, event: str) -> None:
        try:
            await workflow.wait_condition(lambda: event in self.events, timeout=_TIMER)
        except TimeoutError:
            await workflow.wait_condition(lambda: event in self.events)

    @workflow.run
    async def run(self, arg: dict[str, Any]) -> dict[str, Any]:
        await self._acts("register_loss")
        await asyncio.gather(self._acts("freeze_card"), self._acts("freeze_bank_account"))
        await self._acts("notify:card_frozen")
        self.stage = "AWAITING_MATERIALS"
        await self._until("materials")
        self.stage = "UNDER_REVIEW"
        await self._until("review")
        await self._acts("assess_fee", "open_payment_order")
        self.stage = "AWAITING_PAYMENT"
        await self._acts("notify:payment_requested")
        await self._until("payment")
        await self._acts("receive_payment", "order_card_production")
        self.stage = "CARD_PRODUCTION"
        await self._until("produced")
        await self._acts("record_card_produced")
        self.stage = "READY_FOR_PICKUP"
        await self._acts("notify:ready_for_pickup")
        await self._until("collected")
        await self._acts(
            "activate_new_card", "move_bank_account", "notify:completed", "append_audit_event"
        )
        self.stage = "COMPLETED"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return {"stage": self.stage}

    @workflow.update
    async def submit_materials(self, arg: dict[str, Any]) -> dict[str, Any]:
        await self._acts("precheck_materials")
        self.events.add("materials")
        return {"stage": self.stage}

    @submit_materials.validator
    def _check_materials(self, arg: dict[str, Any]) -> None:
        if self.stage != "AWAITING_MATERIALS":
            raise ValueError("not accepted now")

    @workflow.update
    async def review(self, arg: dict[str, Any]) -> dict[str, Any]:
        await self._acts("record_review_decision")
        self.events.add("review")
        await workflow.wait_condition(lambda: self.stage != "UNDER_REVIEW")
        return {"stage": self.stage}

    @review.validator
    def _check_review(self, arg: dict[str, Any]) -> None:
        if self.stage != "UNDER_REVIEW":
            raise ValueError("not accepted now")

    @workflow.signal
    def payment_confirmed(self, arg: dict[str, Any]) -> None:
        self.events.add("payment")

    @workflow.signal
    def card_produced(self, arg: dict[str, Any]) -> None:
        self.events.add("produced")

    @workflow.signal
    def card_collected(self, arg: dict[str, Any]) -> None:
        self.events.add("collected")

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"stage": self.stage}


@activity.defn(name="noop")
async def noop(arg: dict[str, Any]) -> dict[str, Any]:
    """The reference activity: does nothing, so only Temporal's own cost remains."""
    return {}
