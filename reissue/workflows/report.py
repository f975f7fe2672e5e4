"""Report and freeze: the loss registered, the card frozen in the registry and at the
bank, the report made formal at a counter, and what becomes of the old card when a
case ends without a new one."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        FORMALISE_LOSS_REPORT,
        FREEZE_BANK_ACCOUNT,
        FREEZE_CARD,
        LIFT_LOSS_REPORT,
        REGISTER_LOSS,
        UNFREEZE_BANK_ACCOUNT,
        VOID_OLD_CARD,
        FormaliseInput,
        FreezeInput,
        LiftLossInput,
        RegisterLossInput,
        VoidCardInput,
    )
    from reissue.schemas.clock import beijing_cn
    from reissue.schemas.enums import AwaitingParty, Recipient, Stage
    from reissue.schemas.events import EventAck, ReportFormalisation
    from reissue.workflows.calls import start_step
    from reissue.workflows.core import Case

__all__ = ["Report"]


class Report:
    """The loss report and the old card: frozen, formal or temporary, lifted or void."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.formal = case.inp.channel.formal  # the registry confirms it when it opens
        self.card_frozen = False
        self.bank_frozen = False
        self.standing_until: datetime | None = None  # a report left standing, until

    def temporary_expiry(self) -> datetime:
        return self.case.reported_at + self.case.policy.temporary_report_validity

    # ------------------------------------------------------------------ the main path

    async def open(self) -> None:
        """Register the loss and freeze the card; the registry checks the case ID, the
        card and the reported time, and resolves the policy in force (the history
        records what it decided). Its refusals reach the caller as `ActivityError`s."""
        case, inp = self.case, self.case.inp
        case.enter(Stage.LOSS_REPORTED, AwaitingParty.SYSTEM, case.action)
        case.report = await case.act(
            REGISTER_LOSS,
            RegisterLossInput(
                **case.step_key("register_loss"),
                card_number=inp.card_number,
                resident_id=inp.applicant.resident_id,
                channel=inp.channel,
                district=inp.district,
                reported_at=inp.reported_at,
                opened_at=case.started_at,
            ),
            summary=f"register loss of card {case.card_masked}",
        )
        case.policy_in_force = case.report.policy
        self.formal = case.report.formal
        freeze = FreezeInput(
            **case.step_key("freeze_card"),
            card_number=inp.card_number,
            report_number=case.report.report_number,
        )
        # The bank (a partner, maybe slow) and our registry freeze side by side.
        bank = start_step(
            FREEZE_BANK_ACCOUNT,
            freeze.model_copy(update={"step": "freeze_bank_account"}),
            summary="freeze the card's bank account",
        )
        registry = await case.act(FREEZE_CARD, freeze, summary="freeze card in the registry")
        bank_frozen = await case.turns.outside(bank)
        self.card_frozen = registry.status in ("frozen", "void")
        self.bank_frozen = bank_frozen.status == "frozen"
        case.opened = True
        case.metrics.opened(district=inp.district, channel=inp.channel.value)
        case.checkpoint()  # found or cancelled while the freeze was under way
        note = (
            ""
            if self.formal
            else f"临时挂失有效期至 {beijing_cn(self.temporary_expiry())}，请在此前持身份证到网点办理。"
        )
        await case.notify(
            Recipient.APPLICANT,
            "card_frozen",
            card=case.card_masked,
            reported_at=beijing_cn(case.reported_at),
            temporary_note=note,
        )

    async def formalise(self, template: str, *, by: str | None = None) -> None:
        """Make the loss report formal (the caller is through the registry gate)."""
        case = self.case
        assert case.report is not None
        await case.act(
            FORMALISE_LOSS_REPORT,
            FormaliseInput(
                **case.step_key("formalise_loss_report"),
                report_number=case.report.report_number,
            ),
            summary="make the loss report formal",
        )
        self.formal = True
        if by is not None:
            await case.audit("report_made_formal", by, {"with": "ID checked at the counter"})
        await case.notify(
            Recipient.APPLICANT,
            template,
            card=case.card_masked,
            deadline=beijing_cn(case.now() + case.policy.formal_materials_deadline),
        )

    async def settle_old_card(self, outcome: Stage) -> None:
        """While the report is temporary, the card is the person's again once they
        proved they found it or the report ran out; at any other end (a cancellation) a
        valid report stands, the card frozen until it runs out (the registry decides
        and says until when; the bank step then keeps the account frozen). Once formal,
        the old card is void: it stays unusable whatever the outcome."""
        case = self.case
        assert case.report is not None
        async with case.registry.through():  # a formalisation under way decides first
            report = case.report.report_number
            if self.formal:
                await case.act(
                    VOID_OLD_CARD,
                    VoidCardInput(
                        **case.step_key("void_old_card"),
                        card_number=case.inp.card_number,
                        report_number=report,
                        reason=outcome.value.lower(),
                    ),
                    summary=f"close the loss report; {case.card_masked} stays void",
                )
                return
            lifted = await case.act(
                LIFT_LOSS_REPORT,
                LiftLossInput(
                    **case.step_key("lift_loss_report"),
                    card_number=case.inp.card_number,
                    report_number=report,
                    reason=outcome.value.lower(),
                ),
                summary="lift the loss report and unfreeze the card",
            )
            if not lifted.changed:
                case.anomaly(
                    "lift_loss_report", "lift_loss_report refused: the report is not temporary"
                )
                return
            bank = await case.act(
                UNFREEZE_BANK_ACCOUNT,
                FreezeInput(
                    **case.step_key("unfreeze_bank_account"),
                    card_number=case.inp.card_number,
                    report_number=report,
                ),
                summary="unfreeze the card's bank account",
            )
            self.standing_until = lifted.standing_until
            self.card_frozen = lifted.standing_until is not None
            self.bank_frozen = bank.status == "frozen"

    # ------------------------------------------------------------------ events in

    async def make_formal(self, req: ReportFormalisation) -> EventAck:
        """The person showed their ID at a counter: the report is formal, before any
        application (update `make_report_formal`)."""
        case = self.case
        async with case.registry.through():
            case.require_stage("make_report_formal", Stage.AWAITING_MATERIALS, refuse=True)
            if not self.formal:
                await self.formalise("report_formal_at_counter", by=req.received_by)
        return EventAck(stage=case.stage, at=case.now())

    def check_formal(self, req: ReportFormalisation) -> None:
        self.case.require_stage("make_report_formal", Stage.AWAITING_MATERIALS)
        if self.formal:
            raise ValueError("make_report_formal: the loss report is already formal")
        if req.resident_id != self.case.inp.applicant.resident_id:
            raise ValueError(
                "resident_id: does not match the applicant of this case "
                "(the person must show their own ID card)"
            )
