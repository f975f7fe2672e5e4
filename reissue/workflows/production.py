"""Production: the new card printed at once at a counter that can, or ordered from the
card bureau, which reports it made or failed; an overdue order is escalated, a failed
one ordered again up to the policy's limit, after which a supervisor decides."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        CANCEL_CARD_PRODUCTION,
        ORDER_CARD_PRODUCTION,
        RECORD_CARD_PRODUCED,
        RECORD_PRODUCTION_FAILED,
        CardProducedInput,
        OrderInput,
        ProductionFailedInput,
        ProductionInput,
        ProductionOrder,
    )
    from reissue.schemas.enums import AwaitingParty, CaseFlag, ProductionMode, Recipient, Stage
    from reissue.schemas.errors import WRONG_STAGE
    from reissue.schemas.events import CardProduced, EventAck, ProductionFailed, ProductionReorder
    from reissue.workflows.core import Case
    from reissue.workflows.materials import Materials

__all__ = ["Production"]


class Production:
    """The production order of the moment, the bureau's reports on it, the failed ones."""

    def __init__(self, case: Case, materials: Materials) -> None:
        self.case = case
        self.materials = materials
        self.order: ProductionOrder | None = None
        self.ordering = False  # a card is being ordered from the bureau
        self.produced: CardProduced | None = None
        self.failed: ProductionFailed | None = None  # a failure report to act on
        self.failed_orders: list[str] = []
        self.reorders_allowed = 0  # by a supervisor, past the policy's limit
        self.reorder: ProductionReorder | None = None  # a supervisor's reorder to act on

    @property
    def new_card(self) -> str | None:
        """Printed at once (instant), or as the bureau reported it (standard)."""
        if self.order is not None and self.order.new_card_number:
            return self.order.new_card_number
        return self.produced.new_card_number if self.produced else None

    @property
    def mode(self) -> ProductionMode:
        assert self.materials.latest is not None
        return self.materials.latest.production_mode

    # ------------------------------------------------------------------ the main path

    async def produce(self) -> None:
        """Order the card; an instant one is printed, a standard one waits for the bureau."""
        case = self.case
        await self._order("order_card_production")
        if self.mode is ProductionMode.INSTANT:
            case.enter(Stage.CARD_PRODUCTION, AwaitingParty.SYSTEM, "instant card printing")
            return
        overdue_at = self._await_bureau()
        while True:
            if not await case.wait(self._settled, overdue_at, "production overdue"):
                if CaseFlag.PRODUCTION_OVERDUE not in case.flags:
                    case.flag(CaseFlag.PRODUCTION_OVERDUE)
                    assert self.order is not None
                    await case.notify(
                        Recipient.SUPERVISOR,
                        "production_overdue",
                        ref=case.inp.district,
                        case=case.workflow_id,
                        order=self.order.order_id,
                        district=case.inp.district,
                    )
                await case.wait(self._settled, None)
            if self.failed is not None:
                await self._failed(self.failed)
                overdue_at = self._await_bureau()
                continue
            produced = self.produced
            assert produced is not None
            try:
                await case.act(
                    RECORD_CARD_PRODUCED,
                    CardProducedInput(
                        **case.step_key(f"record_card_produced:{produced.new_card_number}"),
                        order_id=produced.order_id,
                        account_id=case.account_id,
                        new_card_number=produced.new_card_number,
                        produced_at=produced.produced_at,
                        card_id_code=produced.card_id_code,
                    ),
                    summary="record the produced card in the registry",
                )
            except ActivityError as e:
                # The bureau's report could not be applied (say, a card number already in
                # use): keep it as an anomaly and wait for a good one.
                case.anomaly("card_produced", f"card_produced refused: {e.cause}")
                self.produced = None
                continue
            return

    async def undo(self, outcome: Stage) -> None:
        """The case ends early: the order is cancelled (a printed card voided)."""
        assert self.order is not None
        await self.case.act(
            CANCEL_CARD_PRODUCTION,
            OrderInput(
                **self.case.step_key("cancel_card_production"),
                order_id=self.order.order_id,
                reason=outcome.value.lower(),
            ),
            summary="cancel card production",
        )

    def _settled(self) -> bool:
        """The bureau reported the card made, or a failure."""
        return self.produced is not None or self.failed is not None

    async def _order(self, step: str) -> None:
        case = self.case
        self.ordering = True
        try:
            self.order = await case.act(
                ORDER_CARD_PRODUCTION,
                ProductionInput(
                    **case.step_key(step),
                    account_id=case.account_id,
                    old_card_number=case.inp.card_number,
                    mode=self.mode,
                    district=case.inp.district,
                ),
                summary=f"order {self.mode.value} card production",
            )
        finally:
            self.ordering = False
        if self.order.status == "failed":  # the bureau refused it as such
            self.failed = ProductionFailed(
                order_id=self.order.order_id,
                reason="the card bureau refused the order",
                failed_at=case.now(),
            )

    def _await_bureau(self) -> datetime:
        """Wait for the bureau's report on the current order; when it is overdue."""
        case = self.case
        assert self.order is not None
        overdue_at = case.now() + case.policy.production_overdue_after
        case.enter(
            Stage.CARD_PRODUCTION,
            AwaitingParty.BUREAU,
            f"card bureau to produce the card (order {self.order.order_id})",
            overdue_at,
        )
        return overdue_at

    async def _failed(self, failed: ProductionFailed) -> None:
        """The bureau could not make the card: order it again, up to the policy's limit;
        past it, a supervisor is told and decides (`reorder_card`, or a cancellation)."""
        case = self.case
        self.failed = None
        self.failed_orders.append(failed.order_id)
        case.metrics.production_failed(district=case.inp.district)
        await case.act(
            RECORD_PRODUCTION_FAILED,
            ProductionFailedInput(
                **case.step_key(f"record_production_failed:{failed.order_id}"),
                order_id=failed.order_id,
                reason=failed.reason,
                failed_at=failed.failed_at,
            ),
            summary=f"the bureau could not make the card: {failed.reason}",
        )
        case.flag(CaseFlag.PRODUCTION_OVERDUE, on=False)  # the new order has its own time
        failures, limit = len(self.failed_orders), case.policy.max_production_reorders
        if failures > limit + self.reorders_allowed:
            case.flag(CaseFlag.PRODUCTION_FAILED)
            case.enter(
                Stage.CARD_PRODUCTION,
                AwaitingParty.STAFF,
                f"supervisor to decide: the bureau failed {failures} times"
                " (reorder_card, or cancel the case)",
            )
            await case.notify(
                Recipient.SUPERVISOR,
                "production_failed",
                ref=case.inp.district,
                step=f"production_failed:{failures}",
                case=case.workflow_id,
                order=failed.order_id,
                failures=str(failures),
                reason=failed.reason,
            )
            await case.wait(lambda: self.reorder is not None, None)
            self.reorders_allowed += 1
            self.reorder = None
            case.flag(CaseFlag.PRODUCTION_FAILED, on=False)
        await self._order(f"order_card_production:{failures + 1}")

    # ------------------------------------------------------------------ events in

    def _awaited(self) -> bool:
        """A report on the current order is awaited (none being handled, no card yet)."""
        return (
            self.case.stage is Stage.CARD_PRODUCTION
            and self.order is not None
            and self.produced is None
            and self.failed is None
            and self.new_card is None
        )

    async def card_produced(self, produced: CardProduced) -> None:
        """The card bureau reports the new card made (signal `card_produced`). A report can
        arrive with the answer to the order itself (a fast bureau): it is judged once the
        case has taken the order in."""
        case = self.case
        await case.turns.wait(lambda: not self.ordering)
        if not self._awaited() or self.order is None:
            await case.ignore("card_produced", f"order={produced.order_id}")
            return
        if produced.order_id in self.failed_orders:  # the bureau contradicts itself
            case.anomaly("card_produced", f"card_produced for failed order {produced.order_id}")
            await case.audit("production_anomaly", "card-bureau", {"order_id": produced.order_id})
            return
        if produced.order_id != self.order.order_id:
            case.anomaly("card_produced", f"card_produced for another order {produced.order_id}")
            await case.audit("production_anomaly", "card-bureau", {"order_id": produced.order_id})
            return
        self.produced = produced

    async def production_failed(self, failed: ProductionFailed) -> None:
        """The card bureau reports it could not make the card (signal `production_failed`)."""
        case = self.case
        await case.turns.wait(lambda: not self.ordering)
        repeated = failed.order_id in self.failed_orders  # (the bureau retried its report)
        awaited = self._awaited() and case.awaiting is AwaitingParty.BUREAU
        if not awaited or repeated or self.order is None:
            await case.ignore("production_failed", f"order={failed.order_id}")
            return
        if failed.order_id != self.order.order_id:
            case.anomaly(
                "production_failed", f"production_failed for another order {failed.order_id}"
            )
            await case.audit("production_anomaly", "card-bureau", {"order_id": failed.order_id})
            return
        self.failed = failed

    async def reorder_card(self, reorder: ProductionReorder) -> EventAck:
        """A supervisor orders the card again after the bureau failed past the limit
        (update `reorder_card`)."""
        case = self.case
        case.require_stage("reorder_card", Stage.CARD_PRODUCTION, refuse=True)
        if CaseFlag.PRODUCTION_FAILED not in case.flags or self.reorder is not None:
            raise ApplicationError(_NO_REORDER, type=WRONG_STAGE, non_retryable=True)
        self.reorder = reorder
        await case.audit("production_reordered", reorder.supervisor, {"reason": reorder.reason})
        await case.turns.wait(lambda: self.reorder is None or case.stage.terminal)
        return EventAck(stage=case.stage, at=case.now())

    def check_reorder(self, reorder: ProductionReorder) -> None:
        self.case.require_stage("reorder_card", Stage.CARD_PRODUCTION)
        if CaseFlag.PRODUCTION_FAILED not in self.case.flags or self.reorder is not None:
            raise ValueError(_NO_REORDER)


_NO_REORDER = "reorder_card: allowed only after the bureau failed as often as the policy allows"
