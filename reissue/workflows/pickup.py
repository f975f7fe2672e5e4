"""Pickup: the applicant is told the new card is ready and reminded; when the counter
hands it over, the new card is activated on the same account, the old one replaced,
and the bank moves the account to the new card."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        ACTIVATE_NEW_CARD,
        MOVE_BANK_ACCOUNT,
        ActivateCardInput,
        MoveBankAccountInput,
    )
    from reissue.schemas.case import CaseResult
    from reissue.schemas.enums import AwaitingParty, Recipient, Stage
    from reissue.schemas.events import CardCollected
    from reissue.schemas.identifiers import mask_card_number
    from reissue.workflows.core import Case, Ending, every
    from reissue.workflows.materials import Materials
    from reissue.workflows.production import Production
    from reissue.workflows.report import Report

__all__ = ["Pickup"]


class Pickup:
    """The hand-over of the new card, and what completes the case."""

    def __init__(
        self, case: Case, report: Report, materials: Materials, production: Production
    ) -> None:
        self.case = case
        self.report = report
        self.materials = materials
        self.production = production
        self.collected: CardCollected | None = None

    async def hand_over(self) -> CaseResult:
        """Wait for the applicant to collect the card (reminding), then activate it."""
        case = self.case
        new_card = self.production.new_card
        assert new_card is not None and case.report is not None
        policy = case.policy
        new_masked = mask_card_number(new_card)
        case.enter(
            Stage.READY_FOR_PICKUP,
            AwaitingParty.APPLICANT,
            f"applicant to collect the new card {new_masked} at the counter",
        )
        await case.notify(Recipient.APPLICANT, "ready_for_pickup", card=new_masked)
        most = policy.max_pickup_reminders

        async def remind(nth: int) -> None:
            await case.remind(
                "pickup",
                Recipient.APPLICANT,
                "pickup_reminder",
                nth=nth,
                of=most,
                round_=self.materials.accepted_rounds,
                card=new_masked,
            )

        await case.wait_reminding(
            lambda: self.collected is not None,
            reminders=every(case.now, policy.pickup_reminder_interval, most),
            remind=remind,
            label=lambda nth: f"pickup reminder {nth} of {most}",
            show_deadline=True,
        )
        case.checkpoint()
        # From here the case completes: no early end is accepted any more.
        done = Ending(Stage.COMPLETED, "new card collected and activated")
        case.closing = done
        await case.act(
            ACTIVATE_NEW_CARD,
            ActivateCardInput(
                **case.step_key("activate_new_card"),
                old_card_number=case.inp.card_number,
                new_card_number=new_card,
                report_number=case.report.report_number,
            ),
            summary=f"activate {new_masked}, replace {case.card_masked}",
        )
        self.report.card_frozen = False
        await case.act(
            MOVE_BANK_ACCOUNT,
            MoveBankAccountInput(
                **case.step_key("move_bank_account"),
                old_card_number=case.inp.card_number,
                new_card_number=new_card,
            ),
            summary=f"bank: account for {new_masked}, {case.card_masked}'s closed",
        )
        await case.notify(Recipient.APPLICANT, "completed", card=new_masked)
        await case.close(Stage.COMPLETED, done.reason, note="done")
        return CaseResult(outcome=Stage.COMPLETED, reason=done.reason, new_card_masked=new_masked)

    async def card_collected(self, collected: CardCollected) -> None:
        """The counter handed the new card over (signal `card_collected`)."""
        case = self.case
        if case.stage is not Stage.READY_FOR_PICKUP or self.collected is not None:
            await case.ignore("card_collected", f"by={collected.handed_over_by}")
        elif collected.new_card_number != self.production.new_card:
            case.anomaly("card_collected", "card_collected names a different card")
            await case.audit("pickup_anomaly", collected.handed_over_by, {})
        else:
            self.collected = collected
