"""Early ends: the person found the card (while the report is temporary), operations
cancel, Temporal itself is asked to cancel, a deadline lapses or the review rejects.
All take one path: undo in reverse order what the outcome must undo, tell the
person, close."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.case import CaseResult
    from reissue.schemas.clock import beijing_cn
    from reissue.schemas.enums import AwaitingParty, Recipient, Stage
    from reissue.schemas.errors import REPORT_FORMAL
    from reissue.schemas.events import CancelRequest, CardFound, EventAck
    from reissue.schemas.reasons import Reason
    from reissue.workflows.core import Case, Ending
    from reissue.workflows.money import Money
    from reissue.workflows.production import Production
    from reissue.workflows.report import Report

__all__ = ["EarlyEnds"]

_VOID = (
    "card_found: the loss report is formal (or a reissue was applied for); "
    "the old card is void and cannot be revived"
)


class EarlyEnds:
    """How a case ends without a new card, and what it undoes on the way."""

    def __init__(
        self,
        case: Case,
        report: Report,
        money: Money,
        production: Production,
        refusal: Callable[[], tuple[str, str] | None],
    ) -> None:
        self.case = case
        self.report = report
        self.money = money
        self.production = production
        self._refusal = refusal  # why the case could not open, if it could not

    # ------------------------------------------------------------------ events in

    async def card_found(self, found: CardFound) -> EventAck:
        """The person found the card: lift the temporary report, end the case (update)."""
        case = self.case
        async with case.registry.through():  # a submission or formalisation decides first
            case.require_open("card_found", refuse=True)
            if self.report.formal:
                raise ApplicationError(_VOID, type=REPORT_FORMAL, non_retryable=True)
            case.ending = Ending(Stage.WITHDRAWN, f"card found ({found.channel.value})")
        return await self._ended()

    def check_found(self, found: CardFound) -> None:
        self.case.require_open("card_found")
        if self.report.formal:
            raise ValueError(_VOID)

    async def cancel(self, request: CancelRequest) -> EventAck:
        """Operations end the case; a paid fee is refunded (update `cancel`)."""
        case = self.case
        async with case.registry.through():  # a submission or formalisation decides first
            case.require_open("cancel", refuse=True)
            case.ending = Ending(
                Stage.CANCELLED,
                f"cancelled by {request.operator}: {request.reason}",
                notice=request.reason,
            )
        return await self._ended()

    def through_temporal(self) -> None:
        """A cancellation requested through Temporal (the Web UI's "Request Cancellation")."""
        case = self.case
        if case.ending is not None or case.stage.terminal or case.activating:
            return  # already ending, or completing: the request changes nothing
        case.ending = Ending(
            Stage.CANCELLED,
            "cancellation requested through Temporal",
            notice=Reason.CANCELLED_BY_SERVICE_CENTRE,
            through_temporal=True,
        )

    async def _ended(self) -> EventAck:
        """Answer an early end once the case has closed (or could not open at all)."""
        case = self.case
        await case.turns.wait(lambda: self._refusal() is not None or case.stage.terminal)
        refusal = self._refusal()
        if refusal is not None:
            kind, message = refusal
            raise ApplicationError(message, type=kind, non_retryable=True)
        return EventAck(stage=case.stage, at=case.now())

    # ------------------------------------------------------------------ closing

    async def end(self, end: Ending) -> CaseResult:
        """Undo in reverse order what this outcome must undo, tell the person, close."""
        case = self.case
        outcome, reason = end.outcome, end.reason
        case.closing = end
        case.enter(case.stage, AwaitingParty.SYSTEM, f"closing: {outcome.value} ({reason})")
        if self.production.order is not None:
            await self.production.undo(outcome)
        if self.money.order is not None:
            await self.money.undo(outcome)
        if case.report is not None and case.opened:
            await self.report.settle_old_card(outcome)
        unfrozen = case.report is not None and not self.report.card_frozen
        if outcome is Stage.WITHDRAWN:
            await case.notify(Recipient.APPLICANT, "withdrawn", card=case.card_masked)
        elif outcome is Stage.LAPSED:
            template = "lapsed_temporary" if unfrozen else "lapsed"
            await case.notify(
                Recipient.APPLICANT, template, card=case.card_masked, reason=end.notice
            )
        elif outcome is Stage.REJECTED:
            await case.notify(Recipient.APPLICANT, "rejected", reasons=end.notice)
        elif outcome is Stage.CANCELLED:
            refunded = self.money.order is not None and self.money.order.status == "refunded"
            until = self.report.standing_until
            await case.notify(
                Recipient.APPLICANT,
                "cancelled",
                reason=end.notice,
                refund_note="已缴费用将原路退回。" if refunded else "",
                report_note=f"您的临时挂失继续有效至 {beijing_cn(until)}，届时自动解除，此前原卡不能使用。"
                if until is not None
                else "",
            )
        await case.close(outcome, reason)
        return CaseResult(outcome=outcome, reason=reason)
