"""One lost-card reissue case, from the loss report to the new card in hand.

Read `CardReissueWorkflow._story` top to bottom for the story: report and
freeze, materials, unit/school confirmation, review (with correction rounds),
fee, production, pickup. Any wait can be cut short by the person finding the
card, by operations cancelling, or by a cancellation requested through Temporal
itself; an early end accepted while an activity runs takes effect right after
it. `_end_early` then undoes what must be undone, in reverse order. Every
duration, limit and fee comes from the case policy, which the system of record
resolves when the case opens.

Cases started before `PATCH_SYSTEM_OF_RECORD` (corpus v1) keep the rules they
were started under, so that their histories replay unchanged: where the two
differ, `self._v2` chooses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from reissue.schemas.activities import (
        ACTIVATE_NEW_CARD,
        APPEND_AUDIT_EVENT,
        ASSESS_FEE,
        CANCEL_CARD_PRODUCTION,
        CANCEL_PAYMENT_ORDER,
        CLOSE_PAYMENT_ORDER,
        CREATE_PAYMENT_ORDER,
        FORMALISE_LOSS_REPORT,
        FREEZE_BANK_ACCOUNT,
        FREEZE_CARD,
        LEGACY_REFUND_ORDER,
        LIFT_LOSS_REPORT,
        MOVE_BANK_ACCOUNT,
        NOTIFY,
        OPEN_PAYMENT_ORDER,
        ORDER_CARD_PRODUCTION,
        PRECHECK_MATERIALS,
        RECEIVE_PAYMENT,
        RECORD_CARD_PRODUCED,
        RECORD_PAYMENT,
        RECORD_PRODUCTION_FAILED,
        RECORD_REVIEW_DECISION,
        REFUND_PAYMENT,
        REGISTER_LOSS,
        REQUEST_AFFILIATION_CONFIRMATION,
        UNFREEZE_BANK_ACCOUNT,
        VOID_OLD_CARD,
        ActivateCardInput,
        ActivityDef,
        AffiliationRequestInput,
        AssessFeeInput,
        AuditInput,
        CardProducedInput,
        CaseStep,
        CreatePaymentInput,
        FormaliseInput,
        FreezeInput,
        LiftLossInput,
        MoveBankAccountInput,
        NotifyInput,
        OrderInput,
        PaymentReceipt,
        PrecheckInput,
        ProductionFailedInput,
        ProductionInput,
        ReceivePaymentInput,
        RecordPaymentInput,
        RefundInput,
        RefundResult,
        RegisterLossInput,
        ReviewRecordInput,
        VoidCardInput,
    )
    from reissue.schemas.case import (
        RECORDED,
        CaseInput,
        CaseResult,
        CaseStatus,
        EmployerUnit,
        School,
        StageEntry,
    )
    from reissue.schemas.clock import beijing, beijing_cn, duration_cn
    from reissue.schemas.codec import PLAINTEXT_MARK
    from reissue.schemas.converter import PLAINTEXT_REFUSED
    from reissue.schemas.enums import (
        AwaitingParty,
        ProductionMode,
        Recipient,
        ReviewVerdict,
        Stage,
    )
    from reissue.schemas.errors import (
        ALREADY_DECIDED,
        BUSY,
        CARD_NOT_ACTIVE,
        CARD_NOT_FOUND,
        CARD_OWNER_MISMATCH,
        CASE_ENDING,
        INVALID_CASE_INPUT,
        MATERIALS_INCOMPLETE,
        PLAINTEXT_PAYLOAD,
        REGISTRATION_REFUSALS,
        REPORT_FORMAL,
        WRONG_STAGE,
    )
    from reissue.schemas.events import (
        AffiliationOverride,
        AffiliationResponse,
        CancelRequest,
        CardCollected,
        CardFound,
        CardProduced,
        ClaimState,
        EventAck,
        MaterialsAccepted,
        MaterialsSubmission,
        PaymentConfirmation,
        ProductionFailed,
        ProductionReorder,
        ReportFormalisation,
        ReviewClaim,
        ReviewDecision,
        ReviewOutcome,
        ReviewRelease,
    )
    from reissue.schemas.identifiers import mask_card_number
    from reissue.schemas.policy import CasePolicy
    from reissue.schemas.precheck import precheck_problems
    from reissue.workflows.calls import call, return_payment
    from reissue.workflows.metrics import CaseMetrics
    from reissue.workflows.state import Asked, CaseState, Ending

__all__ = [
    "PATCH_BANK_ACCOUNT_MOVED",
    "PATCH_BUREAU_FAILURES",
    "PATCH_CASE_CLOSED_AUDIT",
    "PATCH_FINAL_PAYMENT_REMINDER",
    "PATCH_LEAN",
    "PATCH_PAYMENT_PLATFORM",
    "PATCH_SYSTEM_OF_RECORD",
    "PATCH_VOID_ON_FORMAL_END",
    "CardReissueWorkflow",
]

# Patch IDs of changes made behind `workflow.patched`; see README "Changing the workflow".
PATCH_FINAL_PAYMENT_REMINDER = "payment-final-reminder"
PATCH_CASE_CLOSED_AUDIT = "case-closed-audit"
# Added 2026-11 for every new case: the registry opens the case and resolves the
# policy; every payment goes through the ledger; early ends (Temporal's own
# cancellation too) are honoured after every activity; a formal early end voids
# the old card; deadlines are kept in visibility; updates answer after the move.
PATCH_SYSTEM_OF_RECORD = "system-of-record-decides"
PATCH_VOID_ON_FORMAL_END = "void-on-formal-end"
PATCH_BANK_ACCOUNT_MOVED = "bank-account-moved"
# Added 2026-11: the bureau may report a failed production; the card is ordered
# again up to the policy's limit, then a supervisor decides.
PATCH_BUREAU_FAILURES = "bureau-failures"
# Added 2026-11 (half the cost of a case): steps on our own system of record run as
# local activities; the review answers once its decision is recorded and taken in.
# A case with this patch has every earlier patch too (their markers are not written).
PATCH_LEAN = "lean-case"
# Added 2026-11 (the payment platform is a partner): the payment order is opened at the
# platform, where the payer pays it, and closed there before the case gives up on it —
# a payment the platform took first (its webhook late or lost) is taken in then. Cases
# whose order was ours alone keep it so (their order has no `platform_ref`).
PATCH_PAYMENT_PLATFORM = "payment-platform-orders"

R = TypeVar("R", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)
In = TypeVar("In", bound=CaseStep)


# Cases started before PATCH_SYSTEM_OF_RECORD ended REJECTED on these.
_LEGACY_BUSINESS_STOPS = frozenset({CARD_NOT_FOUND, CARD_OWNER_MISMATCH, CARD_NOT_ACTIVE})

# The policy a case started before the policy table ran by when its input named
# none: CQ-2026.1 as it was then, frozen here so that replay never depends on
# today's defaults.
_LEGACY_DEFAULT_POLICY: dict[str, Any] = {
    "version": "CQ-2026.1",
    "temporary_report_validity": "P7D",
    "materials_reminder_interval": "P2D",
    "max_materials_reminders": 3,
    "formal_materials_deadline": "P30D",
    "resubmission_deadline": "P15D",
    "require_affiliation_confirmation": True,
    "affiliation_reminder_interval": "P3D",
    "affiliation_reminders_before_escalation": 2,
    "review_sla": "P5D",
    "review_claim_ttl": "PT4H",
    "max_correction_rounds": 2,
    "fee_schedule": "CQ-2006",
    "payment_reminder_after": "P3D",
    "payment_deadline": "P7D",
    "payment_final_reminder_before": "P1D",
    "production_overdue_after": "P30D",
    "pickup_reminder_interval": "P7D",
    "max_pickup_reminders": 3,
    "photo_min_width_px": 295,
    "photo_min_height_px": 413,
}


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _describe_input_error(error: Exception) -> str:
    """Which fields are wrong and why, without echoing the values (they may be personal)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}" for e in error.errors()
        )
    return "input is not a JSON object matching CaseInput"


def _decode(raw: RawValue) -> CaseState | None:
    """The case's state from its input as recorded (None if undecodable: refused in `_open`)."""
    try:
        data = json.loads(raw.payload.data)  # JSON whether encrypted or not: `_open` decides
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "policy"}
        inp = CaseInput.model_validate(data, context=RECORDED)
    except Exception:
        return None
    info = workflow.info()
    return CaseState(
        inp=inp,
        case_id=f"{info.workflow_id}:{info.first_execution_run_id}",
        started_at=info.start_time,
        formal=inp.channel.formal,
    )


def _every(interval: timedelta, most: int) -> Callable[[int], datetime | None]:
    """Reminders one `interval` apart, at most `most` of them."""
    return lambda sent: workflow.now() + interval if sent < most else None


class _Refused(Exception):
    """The case could not open (see `schemas.errors.REGISTRATION_REFUSALS`): nothing was written."""


@workflow.defn(name="CardReissueWorkflow")
class CardReissueWorkflow:
    """A reissue case: the durable state of one person's lost card."""

    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        # The input arrives raw so that a bad one from a by-name start fails the
        # case with a readable error instead of failing workflow tasks forever.
        self._refusal: tuple[str, str] | None = None
        # The state exists from the start: events delivered with the start are handled
        # before `run` begins. The input is checked strictly in `_open`.
        self._case = _decode(raw)
        self._v2 = True
        self._lean = False  # (set in `run`: a handler run before it calls as cases did)
        self._ordering = False  # a card is being ordered from the bureau
        # Registry changes of handlers (submission, formalisation, found, cancel)
        # and of compensation take turns; so do the payments.
        self._registry = asyncio.Lock()
        self._money = asyncio.Lock()
        self._main: asyncio.Task[CaseResult] | None = None
        self._metrics = CaseMetrics()

    @property
    def case(self) -> CaseState:
        assert self._case is not None
        return self._case

    # ------------------------------------------------------------------ the case

    @workflow.run
    async def run(self, raw: RawValue) -> CaseResult:
        """Takes a `CaseInput` (see schemas/json/CaseInput.schema.json)."""
        self._lean = workflow.patched(PATCH_LEAN)
        self._v2 = self._lean or workflow.patched(PATCH_SYSTEM_OF_RECORD)
        self._open(raw)
        if self._refusal is not None:
            await self._refuse()
        self._main = asyncio.create_task(self._run_case())
        while True:
            try:
                # Shielded: a cancellation requested through Temporal does not cut an
                # activity short; it becomes an early end like `cancel`.
                result = await asyncio.shield(self._main)
                break
            except asyncio.CancelledError:
                if not self._v2:
                    self._main.cancel()  # as cases started before the patch did
                    await self._main
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()  # handled: the case ends early instead
                self._end_through_temporal()
            except _Refused:
                await self._refuse()
        await self._finish_handlers()
        if self.case.ending is not None and self.case.ending.through_temporal:
            raise asyncio.CancelledError("cancellation requested through Temporal")
        return result

    async def _run_case(self) -> CaseResult:
        try:
            return await self._story()
        except Ending as end:
            earlier = self.case.ending
            if earlier is not None and earlier.through_temporal:
                end.through_temporal = True  # the workflow still ends cancelled, as asked
            self.case.ending = end
            return await self._end_early(end)

    async def _story(self) -> CaseResult:
        await self._report_and_freeze()
        while True:
            await self._collect_materials()
            await self._confirm_affiliation()
            verdict = await self._review()
            if verdict is ReviewVerdict.APPROVE:
                break
            if verdict is ReviewVerdict.REJECT:
                raise Ending(Stage.REJECTED, "; ".join(self.case.correction_reasons))
        await self._collect_fee()
        await self._produce_card()
        return await self._hand_over()

    async def _report_and_freeze(self) -> None:
        self._enter(Stage.LOSS_REPORTED, AwaitingParty.SYSTEM, self.case.action)
        inp = self.case.inp
        try:
            # The registry checks the case ID, the card and the reported time, and
            # resolves the policy in force: the history records what it decided.
            self.case.report = await self._act(
                REGISTER_LOSS,
                RegisterLossInput(
                    **self._step("register_loss"),
                    card_number=inp.card_number,
                    resident_id=inp.applicant.resident_id,
                    channel=inp.channel,
                    district=inp.district,
                    reported_at=inp.reported_at,
                    opened_at=workflow.info().start_time,
                ),
                summary=f"register loss of card {self.case.card_masked}",
            )
        except ActivityError as e:
            cause = e.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            if self._v2 and kind in REGISTRATION_REFUSALS:
                assert isinstance(cause, ApplicationError)
                self._refusal = (kind, cause.message)
                raise _Refused from e
            if not self._v2 and kind in _LEGACY_BUSINESS_STOPS:
                raise Ending(Stage.REJECTED, f"{kind}: {cause}") from e
            raise
        if self.case.report.policy is not None:
            self.case.policy = self.case.report.policy
        self.case.formal = self.case.report.formal
        freeze = FreezeInput(
            **self._step("freeze_card"),
            card_number=inp.card_number,
            report_number=self.case.report.report_number,
        )
        registry, bank = await asyncio.gather(
            self._act(FREEZE_CARD, freeze, summary="freeze card in the registry"),
            self._act(
                FREEZE_BANK_ACCOUNT,
                freeze.model_copy(update={"step": "freeze_bank_account"}),
                summary="freeze the card's bank account",
            ),
        )
        self.case.card_frozen = registry.status in ("frozen", "void")
        self.case.bank_frozen = bank.status == "frozen"
        self.case.opened = True
        self._metrics.opened(district=inp.district, channel=inp.channel.value)
        if self.case.ending is not None:  # found or cancelled while the freeze was under way
            raise self.case.ending
        note = (
            ""
            if self.case.formal
            else f"临时挂失有效期至 {beijing_cn(self._temporary_expiry())}，请在此前持身份证到网点办理。"
        )
        await self._notify(
            Recipient.APPLICANT,
            "card_frozen",
            card=self.case.card_masked,
            reported_at=beijing_cn(self.case.reported_at),
            temporary_note=note,
        )

    async def _collect_materials(self) -> None:
        policy = self.policy
        most = policy.max_materials_reminders
        accepted_before = self.case.accepted_rounds
        while True:
            # A report made formal at a counter (ID only) changes the deadline: start over.
            formal_at_entry = self.case.formal
            if self.case.correction_round:
                deadline = workflow.now() + policy.resubmission_deadline
                action = f"resubmit corrected materials (round {self.case.correction_round})"
                lapse = "corrected materials not resubmitted by the deadline"
                lapse_what = "resubmission deadline"
            elif not self.case.formal:
                deadline = self._temporary_expiry()
                action = "hand in the application in person (temporary report)"
                lapse = "temporary loss report expired without a formal application"
                lapse_what = "temporary report expires"
            else:
                deadline = workflow.now() + policy.formal_materials_deadline
                action = "hand in the application and materials"
                lapse = "application not handed in by the deadline"
                lapse_what = "application deadline"
            self._enter(Stage.AWAITING_MATERIALS, AwaitingParty.APPLICANT, action, deadline)

            def moved(formal_at_entry: bool = formal_at_entry) -> bool:
                # Made formal by `make_report_formal` (a submission does both at once).
                made_formal = self.case.formal != formal_at_entry and not self._registry.locked()
                return self.case.accepted_rounds > accepted_before or made_formal

            async def remind(nth: int, deadline: datetime = deadline) -> None:
                await self._remind(
                    "materials",
                    Recipient.APPLICANT,
                    "materials_reminder",
                    nth=nth,
                    of=most,
                    deadline=beijing_cn(deadline),
                )

            if not await self._wait_reminding(
                moved,
                reminders=_every(policy.materials_reminder_interval, most),
                remind=remind,
                label=lambda nth: f"materials reminder {nth} of {most}",
                deadline=deadline,
                deadline_label=f"{lapse_what} at {beijing(deadline)}",
            ):
                # A submission or formalisation being checked right now still counts.
                await workflow.wait_condition(lambda: not self._registry.locked())
                if not moved():
                    raise Ending(Stage.LAPSED, lapse)
            if self.case.accepted_rounds > accepted_before:
                return
            # Made formal: a new deadline.

    async def _confirm_affiliation(self) -> None:
        aff = self.case.inp.affiliation
        if isinstance(aff, EmployerUnit):
            org_code = aff.credit_code
        elif isinstance(aff, School):
            org_code = aff.code
        else:
            return
        policy = self.policy
        if not policy.require_affiliation_confirmation:
            return
        if self.case.affiliation_status in ("confirmed", "overridden"):
            return  # a correction round does not ask the unit again
        self.case.affiliation = Asked()
        ask_round = self.case.accepted_rounds
        self._enter(
            Stage.AWAITING_AFFILIATION,
            AwaitingParty.UNIT,
            f"confirmation from the {aff.kind} (unit/school portal)",
        )
        await self._act(
            REQUEST_AFFILIATION_CONFIRMATION,
            AffiliationRequestInput(
                **self._step(f"affiliation_request:{ask_round}"),
                kind=aff.kind,
                org_code=org_code,
                org_name=aff.name,
                district=self.case.inp.district,
            ),
            summary=f"ask the {aff.kind} to confirm the applicant",
        )
        await self._notify(
            Recipient.UNIT,
            "affiliation_request",
            ref=org_code,
            step=f"affiliation:{ask_round}",
            card=self.case.card_masked,
            case=workflow.info().workflow_id,
        )
        answered = lambda: not isinstance(self.case.affiliation, Asked)  # noqa: E731
        most = policy.affiliation_reminders_before_escalation

        async def remind_or_escalate(nth: int) -> None:
            if nth <= most:
                await self._remind(
                    "unit",
                    Recipient.UNIT,
                    "affiliation_reminder",
                    nth=nth,
                    of=most,
                    ref=org_code,
                    card=self.case.card_masked,
                    case=workflow.info().workflow_id,
                )
                return
            # One interval after the last reminder: a supervisor takes over.
            self.case.affiliation = Asked(escalated=True)
            self.case.flags.append("affiliation_escalated")
            self._enter(
                Stage.AWAITING_AFFILIATION,
                AwaitingParty.STAFF,
                "escalated: staff may accept the unit's paper letter (override_affiliation)",
            )
            await self._notify(
                Recipient.SUPERVISOR,
                "affiliation_escalation",
                ref=self.case.inp.district,
                step=f"affiliation_escalation:{ask_round}",
                case=workflow.info().workflow_id,
                district=self.case.inp.district,
            )

        await self._wait_reminding(
            answered,
            reminders=_every(policy.affiliation_reminder_interval, most + 1),
            remind=remind_or_escalate,
            label=lambda nth: (
                f"unit reminder {nth} of {most}" if nth <= most else "unit escalation"
            ),
            show_deadline=True,
        )
        if self.case.affiliation_status == "denied":
            self.case.flags.append("affiliation_denied")

    async def _review(self) -> ReviewVerdict:
        policy = self.policy
        sla_due = workflow.now() + policy.review_sla
        self.case.review_due = sla_due
        self._enter(
            Stage.UNDER_REVIEW, AwaitingParty.STAFF, "staff review of the materials", sla_due
        )
        self.case.review_rounds += 1
        while self.case.decision is None:
            # Wake for a decision, a change of claim, the SLA, or the claim running out.
            claim = (self.case.assignee, self.case.claim_until)
            wake = [
                t for t in (None if self.case.sla_breached else sla_due, self.case.claim_until) if t
            ]
            until = min(wake) if wake else None
            what = "review SLA" if until == sla_due else "review claim expires"

            def moved(seen: tuple[str | None, datetime | None] = claim) -> bool:
                now = (self.case.assignee, self.case.claim_until)
                return self.case.decision is not None or now != seen

            if await self._wait(moved, until, what):
                continue
            now = workflow.now()
            if self.case.claim_until is not None and now >= self.case.claim_until:
                self._set_claim(None, reason="claim expired")
            if not self.case.sla_breached and now >= sla_due:
                self.case.sla_breached = True
                self._metrics.sla_breached(district=self.case.inp.district)
                self._upsert_visibility()
                await self._notify(
                    Recipient.SUPERVISOR,
                    "review_sla_breached",
                    ref=self.case.inp.district,
                    step=f"sla_breach:{self.case.accepted_rounds}",
                    case=workflow.info().workflow_id,
                    district=self.case.inp.district,
                    sla=duration_cn(policy.review_sla),
                )
        self.case.review_due = None
        self._set_claim(None, reason="decided")
        verdict = self.case.decisions[-1].verdict
        if verdict is ReviewVerdict.REQUEST_CORRECTION:
            await self._notify(
                Recipient.APPLICANT,
                "correction_requested",
                step=f"correction:{self.case.correction_round}",
                round=str(self.case.correction_round),
                reasons="; ".join(self.case.correction_reasons),
                deadline=beijing_cn(workflow.now() + policy.resubmission_deadline),
            )
        return verdict

    async def _collect_fee(self) -> None:
        approval, submission = self.case.decision, self.case.submission
        assert approval is not None and submission is not None
        policy = self.policy
        self.case.fee = await self._act(
            ASSESS_FEE,
            AssessFeeInput(
                **self._step("assess_fee"),
                schedule=policy.fee_schedule,
                account_id=self._account_id,
                exemption=submission.fee_exemption,
                waived=approval.waive_fee,
                waiver_reason=approval.waiver_reason,
            ),
            summary=f"assess the fee (schedule {policy.fee_schedule})",
        )
        if self.case.fee.amount_fen == 0:
            if self.case.fee.exemption or self.case.fee.waived:
                ground = (
                    self.case.fee.exemption.value if self.case.fee.exemption else "staff waiver"
                )
                await self._notify(Recipient.APPLICANT, "fee_waived", ground=ground)
            return
        due = workflow.now() + policy.payment_deadline
        at_platform = self._v2 and workflow.patched(PATCH_PAYMENT_PLATFORM)
        if at_platform:  # (the platform may be slow or down: the decision is made)
            self._enter(
                Stage.AWAITING_PAYMENT,
                AwaitingParty.SYSTEM,
                f"opening a payment order of ¥{_yuan(self.case.fee.amount_fen)}"
                " at the payment platform",
            )
        self.case.order = await self._act(
            OPEN_PAYMENT_ORDER if at_platform else CREATE_PAYMENT_ORDER,
            CreatePaymentInput(
                **self._step("create_payment_order"),
                amount_fen=self.case.fee.amount_fen,
                due_at=due,
            ),
            summary=f"create a payment order of ¥{_yuan(self.case.fee.amount_fen)}"
            + (" at the payment platform" if at_platform else ""),
        )
        amount = _yuan(self.case.order.amount_fen)
        self._enter(Stage.AWAITING_PAYMENT, AwaitingParty.PAYMENT, f"payment of ¥{amount}", due)
        await self._notify(
            Recipient.APPLICANT,
            "payment_requested",
            amount=amount,
            deadline=beijing_cn(due),
            order=self.case.order.order_id,
        )

        def paid() -> bool:
            return self.case.payment is not None

        # Not `_wait_reminding`: a payment during the final reminder's wait still
        # starts the deadline's wait (a timer cancelled at once), as recorded cases did.
        reminder_at = workflow.now() + policy.payment_reminder_after
        if not await self._wait(paid, reminder_at, "payment reminder"):
            # Added 2026-11: a last reminder shortly before the deadline. Cases that
            # passed this point under the old code replay without it.
            final = self._lean or workflow.patched(PATCH_FINAL_PAYMENT_REMINDER)
            await self._remind(
                "payment",
                Recipient.APPLICANT,
                "payment_reminder",
                nth=1,
                of=2 if final else 1,
                amount=amount,
                deadline=beijing_cn(due),
                order=self.case.order.order_id,
            )
            final_at = due - policy.payment_final_reminder_before
            if (
                final
                and final_at > workflow.now()
                and not await self._wait(paid, final_at, "final payment reminder")
            ):
                await self._remind(
                    "payment",
                    Recipient.APPLICANT,
                    "payment_final_reminder",
                    nth=2,
                    of=2,
                    amount=amount,
                    deadline=beijing_cn(due),
                    order=self.case.order.order_id,
                )
            if not await self._wait(paid, due, "payment deadline"):
                if self.case.order.platform_ref is not None:
                    # Nobody can pay it from now on; a payment made before is taken in.
                    async with self._money:  # (a payment being taken in is settled first)
                        if not paid() and self.case.order.status == "open":
                            self._enter(
                                Stage.AWAITING_PAYMENT,
                                AwaitingParty.SYSTEM,
                                "deadline passed: closing the order at the payment platform",
                            )
                            await self._close_order("fee not paid by the deadline")
                if self._v2:
                    # A payment being recorded right now still counts.
                    await workflow.wait_condition(lambda: not self._money.locked())
                if not paid():
                    raise Ending(Stage.LAPSED, "fee not paid by the deadline")
        assert self.case.payment is not None
        if self._v2:
            return  # the ledger applied the payment to the order (`payment_confirmed`)
        self.case.order = await self._act(
            RECORD_PAYMENT,
            RecordPaymentInput(
                **self._step("record_payment"),
                order_id=self.case.payment.order_id,
                amount_fen=self.case.payment.amount_fen,
                payment_ref=self.case.payment.payment_ref,
                paid_at=self.case.payment.paid_at,
            ),
            summary=f"record payment of ¥{amount}",
        )

    async def _produce_card(self) -> None:
        assert self.case.submission is not None
        mode = self.case.submission.production_mode
        await self._order_card(mode, "order_card_production")
        if mode is ProductionMode.INSTANT:
            self._enter(Stage.CARD_PRODUCTION, AwaitingParty.SYSTEM, "instant card printing")
            return
        overdue_at = self._await_bureau()
        while True:

            def settled() -> bool:  # the bureau reported the card made, or a failure
                return self.case.produced is not None or self.case.production_failed is not None

            if not await self._wait(settled, overdue_at, "production overdue"):
                if "production_overdue" not in self.case.flags:
                    self.case.flags.append("production_overdue")
                    assert self.case.production is not None
                    await self._notify(
                        Recipient.SUPERVISOR,
                        "production_overdue",
                        ref=self.case.inp.district,
                        case=workflow.info().workflow_id,
                        order=self.case.production.order_id,
                        district=self.case.inp.district,
                    )
                await self._wait(settled, None)
            if self.case.production_failed is not None:
                await self._production_failed(self.case.production_failed)
                overdue_at = self._await_bureau()
                continue
            assert self.case.produced is not None
            try:
                await self._act(
                    RECORD_CARD_PRODUCED,
                    CardProducedInput(
                        **self._step(f"record_card_produced:{self.case.produced.new_card_number}"),
                        order_id=self.case.produced.order_id,
                        account_id=self._account_id,
                        new_card_number=self.case.produced.new_card_number,
                        produced_at=self.case.produced.produced_at,
                        card_id_code=self.case.produced.card_id_code,
                    ),
                    summary="record the produced card in the registry",
                )
            except ActivityError as e:
                # The bureau's report could not be applied (say, a card number
                # already in use): keep it as an anomaly and wait for a good one.
                self._anomaly("card_produced", f"card_produced refused: {e.cause}")
                self.case.produced = None
                continue
            return

    async def _order_card(self, mode: ProductionMode, step: str) -> None:
        self._ordering = True
        try:
            self.case.production = await self._act(
                ORDER_CARD_PRODUCTION,
                ProductionInput(
                    **self._step(step),
                    account_id=self._account_id,
                    old_card_number=self.case.inp.card_number,
                    mode=mode,
                    district=self.case.inp.district,
                ),
                summary=f"order {mode.value} card production",
            )
        finally:
            self._ordering = False
        if self.case.production.status == "failed":  # the bureau refused it as such
            self.case.production_failed = ProductionFailed(
                order_id=self.case.production.order_id,
                reason="the card bureau refused the order",
                failed_at=workflow.now(),
            )

    def _await_bureau(self) -> datetime:
        """Wait for the bureau's report on the current order; when it is overdue."""
        assert self.case.production is not None
        overdue_at = workflow.now() + self.policy.production_overdue_after
        self._enter(
            Stage.CARD_PRODUCTION,
            AwaitingParty.BUREAU,
            f"card bureau to produce the card (order {self.case.production.order_id})",
            overdue_at,
        )
        return overdue_at

    async def _production_failed(self, failed: ProductionFailed) -> None:
        """The bureau could not make the card: order it again, up to the policy's limit;
        past it, a supervisor is told and decides (`reorder_card`, or a cancellation)."""
        if not self._lean:  # (no case before it had a failure report)
            workflow.patched(PATCH_BUREAU_FAILURES)
        self.case.production_failed = None
        self.case.failed_orders.append(failed.order_id)
        self._metrics.production_failed(district=self.case.inp.district)
        await self._act(
            RECORD_PRODUCTION_FAILED,
            ProductionFailedInput(
                **self._step(f"record_production_failed:{failed.order_id}"),
                order_id=failed.order_id,
                reason=failed.reason,
                failed_at=failed.failed_at,
            ),
            summary=f"the bureau could not make the card: {failed.reason}",
        )
        if "production_overdue" in self.case.flags:  # the new order has its own time
            self.case.flags.remove("production_overdue")
        failures, limit = len(self.case.failed_orders), self.policy.max_production_reorders
        if failures > limit + self.case.reorders_allowed:
            if "production_failed" not in self.case.flags:
                self.case.flags.append("production_failed")
            self._enter(
                Stage.CARD_PRODUCTION,
                AwaitingParty.STAFF,
                f"supervisor to decide: the bureau failed {failures} times"
                " (reorder_card, or cancel the case)",
            )
            await self._notify(
                Recipient.SUPERVISOR,
                "production_failed",
                ref=self.case.inp.district,
                step=f"production_failed:{failures}",
                case=workflow.info().workflow_id,
                order=failed.order_id,
                failures=str(failures),
                reason=failed.reason,
            )
            await self._wait(lambda: self.case.reorder is not None, None)
            self.case.reorders_allowed += 1
            self.case.reorder = None
            if "production_failed" in self.case.flags:
                self.case.flags.remove("production_failed")
        assert self.case.submission is not None
        await self._order_card(
            self.case.submission.production_mode, f"order_card_production:{failures + 1}"
        )

    async def _hand_over(self) -> CaseResult:
        assert self.case.new_card is not None and self.case.report is not None
        policy = self.policy
        new_masked = mask_card_number(self.case.new_card)
        self._enter(
            Stage.READY_FOR_PICKUP,
            AwaitingParty.APPLICANT,
            f"applicant to collect the new card {new_masked} at the counter",
        )
        await self._notify(Recipient.APPLICANT, "ready_for_pickup", card=new_masked)
        most = policy.max_pickup_reminders
        if most == 0:
            self._set_deadline(None)  # (as recorded cases did)

        async def remind(nth: int) -> None:
            await self._remind(
                "pickup", Recipient.APPLICANT, "pickup_reminder", nth=nth, of=most, card=new_masked
            )

        await self._wait_reminding(
            lambda: self.case.collected is not None,
            reminders=_every(policy.pickup_reminder_interval, most),
            remind=remind,
            label=lambda nth: f"pickup reminder {nth} of {most}",
            show_deadline=True,
        )
        self._checkpoint()
        # From here the case completes: no early end is accepted any more.
        done = Ending(Stage.COMPLETED, "new card collected and activated")
        self.case.closing = done
        await self._act(
            ACTIVATE_NEW_CARD,
            ActivateCardInput(
                **self._step("activate_new_card"),
                old_card_number=self.case.inp.card_number,
                new_card_number=self.case.new_card,
                report_number=self.case.report.report_number,
            ),
            summary=f"activate {new_masked}, replace {self.case.card_masked}",
        )
        self.case.card_frozen = False
        # Added 2026-11: the bank moves the account to the new card and closes the old.
        if self._lean or workflow.patched(PATCH_BANK_ACCOUNT_MOVED):
            await self._act(
                MOVE_BANK_ACCOUNT,
                MoveBankAccountInput(
                    **self._step("move_bank_account"),
                    old_card_number=self.case.inp.card_number,
                    new_card_number=self.case.new_card,
                ),
                summary=f"bank: account for {new_masked}, {self.case.card_masked}'s closed",
            )
        await self._notify(Recipient.APPLICANT, "completed", card=new_masked)
        await self._record_closed(Stage.COMPLETED, done.reason)
        self._enter(Stage.COMPLETED, AwaitingParty.NONE, "done")
        return CaseResult(outcome=Stage.COMPLETED, reason=done.reason, new_card_masked=new_masked)

    # ------------------------------------------------------------------ ending early

    async def _end_early(self, end: Ending) -> CaseResult:
        """Undo in reverse order what this outcome must undo, tell the person, close."""
        outcome, reason = end.outcome, end.reason
        self.case.closing = end
        if self._v2:  # what the case does now, until it has closed
            self._enter(
                self.case.stage, AwaitingParty.SYSTEM, f"closing: {outcome.value} ({reason})"
            )
        if self.case.production is not None:
            await self._undo_production(outcome)
        if self.case.order is not None:
            await self._undo_payment(outcome)
        if self.case.report is not None and (self.case.opened or not self._v2):
            await self._settle_old_card(outcome)
        unfrozen = self.case.report is not None and not self.case.card_frozen
        if outcome is Stage.WITHDRAWN:
            await self._notify(Recipient.APPLICANT, "withdrawn", card=self.case.card_masked)
        elif outcome is Stage.LAPSED:
            template = "lapsed_temporary" if unfrozen else "lapsed"
            await self._notify(
                Recipient.APPLICANT, template, card=self.case.card_masked, reason=reason
            )
        elif outcome is Stage.REJECTED:
            await self._notify(Recipient.APPLICANT, "rejected", reasons=reason)
        elif outcome is Stage.CANCELLED:
            refunded = self.case.order is not None and self.case.order.status == "refunded"
            await self._notify(
                Recipient.APPLICANT,
                "cancelled",
                reason=reason,
                refund_note="已缴费用将原路退回。" if refunded else "",
            )
        await self._record_closed(outcome, reason)
        self._enter(outcome, AwaitingParty.NONE, reason)
        return CaseResult(outcome=outcome, reason=reason)

    async def _record_closed(self, outcome: Stage, reason: str) -> None:
        # Added 2026-11: the outcome goes on the audit log, so the system of record
        # knows which cases are closed (check-invariants relies on it).
        if self._lean or workflow.patched(PATCH_CASE_CLOSED_AUDIT):
            await self._audit("case_closed", "system", {"outcome": outcome.value, "reason": reason})

    async def _settle_old_card(self, outcome: Stage) -> None:
        # While the report is temporary (card found, report ran out, or cancelled
        # before it became formal) the card is the person's again. Once formal, the
        # old card is void: it stays unusable whatever the outcome.
        assert self.case.report is not None
        async with self._turn():  # a formalisation under way decides first
            report = self.case.report.report_number
            if self.case.formal:
                # Cases started before the patch that end now void the card too; their
                # histories that ended earlier replay without it.
                if self._v2 or workflow.patched(PATCH_VOID_ON_FORMAL_END):
                    await self._act(
                        VOID_OLD_CARD,
                        VoidCardInput(
                            **self._step("void_old_card"),
                            card_number=self.case.inp.card_number,
                            report_number=report,
                            reason=outcome.value.lower(),
                        ),
                        summary=f"close the loss report; {self.case.card_masked} stays void",
                    )
                return
            lifted = await self._act(
                LIFT_LOSS_REPORT,
                LiftLossInput(
                    **self._step("lift_loss_report"),
                    card_number=self.case.inp.card_number,
                    report_number=report,
                    reason=outcome.value.lower(),
                ),
                summary="lift the loss report and unfreeze the card",
            )
            if self._v2 and not lifted.changed:
                self._anomaly(
                    "lift_loss_report", "lift_loss_report refused: the report is not temporary"
                )
                return
            await self._act(
                UNFREEZE_BANK_ACCOUNT,
                FreezeInput(
                    **self._step("unfreeze_bank_account"),
                    card_number=self.case.inp.card_number,
                    report_number=report,
                ),
                summary="unfreeze the card's bank account",
            )
            self.case.card_frozen = self.case.bank_frozen = False

    async def _undo_payment(self, outcome: Stage) -> None:
        assert self.case.order is not None
        async with self._money:  # a payment being recorded is settled first
            if self.case.order.status == "paid":
                if self._v2:
                    assert self.case.payment is not None
                    refund = await self._refund(
                        self.case.payment.payment_ref, outcome.value.lower()
                    )
                    self.case.order = self.case.order.model_copy(update={"status": "refunded"})
                    amount = refund.amount_fen
                else:
                    self.case.order = await self._act(
                        LEGACY_REFUND_ORDER,
                        OrderInput(
                            **self._step("refund_payment"),
                            order_id=self.case.order.order_id,
                            reason=outcome.value.lower(),
                        ),
                        summary=f"refund ¥{_yuan(self.case.order.amount_fen)}",
                    )
                    amount = self.case.order.amount_fen
                await self._notify(
                    Recipient.APPLICANT,
                    "refund_issued",
                    amount=_yuan(amount),
                    order=self.case.order.order_id,
                )
            elif self.case.order.status == "open":
                await self._close_order(outcome.value.lower())

    async def _close_order(self, reason: str) -> None:
        """Close the open payment order (the money lock held): first at the payment
        platform, when it is open there, which answers whether somebody paid it before
        it closed — that payment is taken in as its webhook would have been (applied
        while the fee is still due, else refunded); then ours, unless it was paid."""
        order = self.case.order
        assert order is not None and order.status == "open"
        if order.platform_ref is not None:
            at = await self._act(
                CLOSE_PAYMENT_ORDER,
                OrderInput(
                    **self._step("close_payment_order"), order_id=order.order_id, reason=reason
                ),
                summary="close the payment order at the payment platform",
            )
            if at.payment is not None:
                await self._receive(at.payment)
        if self.case.order is not None and self.case.order.status == "open":
            self.case.order = await self._act(
                CANCEL_PAYMENT_ORDER,
                OrderInput(
                    **self._step("cancel_payment_order"),
                    order_id=order.order_id,
                    reason=reason,
                ),
                summary="cancel the unpaid payment order",
            )

    async def _undo_production(self, outcome: Stage) -> None:
        assert self.case.production is not None
        await self._act(
            CANCEL_CARD_PRODUCTION,
            OrderInput(
                **self._step("cancel_card_production"),
                order_id=self.case.production.order_id,
                reason=outcome.value.lower(),
            ),
            summary="cancel card production",
        )

    def _end_through_temporal(self) -> None:
        """A cancellation requested through Temporal (the Web UI's "Request Cancellation")."""
        case = self._case
        if case is None or case.ending is not None or case.stage.terminal or case.activating:
            return  # not opened, already ending, or completing: the request changes nothing
        case.ending = Ending(
            Stage.CANCELLED, "cancellation requested through Temporal", through_temporal=True
        )

    # ------------------------------------------------------------------ events in

    @workflow.update
    async def submit_materials(self, sub: MaterialsSubmission) -> MaterialsAccepted:
        """The application and materials handed in at a counter."""
        if not self._v2 and self._registry.locked():  # as cases started before the patch
            raise ApplicationError(
                "submit_materials: another submission is being checked",
                type=BUSY,
                non_retryable=True,
            )
        async with self._registry:
            # Waited for a submission, formalisation or early end being decided.
            self._require_stage("submit_materials", Stage.AWAITING_MATERIALS, refuse=True)
            self.case.submit_attempts += 1
            assert self.case.report is not None
            policy = self.policy
            check = await self._act(
                PRECHECK_MATERIALS,
                PrecheckInput(
                    **self._step(f"precheck:{self.case.submit_attempts}"),
                    round=self.case.submit_attempts,
                    category=self.case.inp.insured_category,
                    resident_id=self.case.inp.applicant.resident_id,
                    report_number=self.case.report.report_number,
                    loss_proof_number=sub.loss_proof_number,
                    documents=sub.documents,
                    required=policy.materials_for(self.case.inp.insured_category),
                    photo_min_width_px=policy.photo_min_width_px,
                    photo_min_height_px=policy.photo_min_height_px,
                    fee_exemption=sub.fee_exemption,
                ),
                summary="automatic pre-check of the materials",
            )
            if not check.passed:
                raise ApplicationError(
                    "; ".join(check.problems), type=MATERIALS_INCOMPLETE, non_retryable=True
                )
            if self.case.ending is not None:
                raise ApplicationError(
                    f"submit_materials: the case is ending ({self.case.ending.outcome.value})",
                    type=CASE_ENDING,
                    non_retryable=True,
                )
            if not self.case.formal:
                await self._formalise("report_formal")
            self.case.submissions.append(sub)
            accepted = self.case.accepted_rounds
        if self._v2:
            # Answer with where the case went, once the main path has moved it on.
            await workflow.wait_condition(lambda: self.case.stage is not Stage.AWAITING_MATERIALS)
        return MaterialsAccepted(
            round=accepted, stage=self.case.stage, report_formal=self.case.formal
        )

    @submit_materials.validator
    def _check_materials(self, sub: MaterialsSubmission) -> None:
        # The same pure check as the activity, so bad submissions are refused
        # before anything is written or recorded in history.
        self._require_stage("submit_materials", Stage.AWAITING_MATERIALS)
        if self._registry.locked():
            raise ValueError("submit_materials: another submission is being checked")
        assert self.case.report is not None
        policy = self.policy
        problems = precheck_problems(
            documents=sub.documents,
            required=policy.materials_for(self.case.inp.insured_category),
            loss_proof_number=sub.loss_proof_number,
            report_number=self.case.report.report_number,
            resident_id=self.case.inp.applicant.resident_id,
            photo_min_width_px=policy.photo_min_width_px,
            photo_min_height_px=policy.photo_min_height_px,
            fee_exemption=sub.fee_exemption,
        )
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.update
    async def make_report_formal(self, req: ReportFormalisation) -> EventAck:
        """The person showed their ID at a counter: the report is formal, before any application."""
        async with self._registry:
            self._require_stage("make_report_formal", Stage.AWAITING_MATERIALS, refuse=True)
            if not self.case.formal:
                await self._formalise("report_formal_at_counter", by=req.received_by)
        return EventAck(stage=self.case.stage, at=workflow.now())

    @make_report_formal.validator
    def _check_formalisation(self, req: ReportFormalisation) -> None:
        self._require_stage("make_report_formal", Stage.AWAITING_MATERIALS)
        if self.case.formal:
            raise ValueError("make_report_formal: the loss report is already formal")
        if req.resident_id != self.case.inp.applicant.resident_id:
            raise ValueError(
                "resident_id: does not match the applicant of this case "
                "(the person must show their own ID card)"
            )

    async def _formalise(self, template: str, *, by: str | None = None) -> None:
        """Make the loss report formal (the caller holds the registry lock)."""
        assert self.case.report is not None
        await self._act(
            FORMALISE_LOSS_REPORT,
            FormaliseInput(
                **self._step("formalise_loss_report"),
                report_number=self.case.report.report_number,
            ),
            summary="make the loss report formal",
        )
        self.case.formal = True
        if by is not None:
            await self._audit("report_made_formal", by, {"with": "ID checked at the counter"})
        await self._notify(
            Recipient.APPLICANT,
            template,
            card=self.case.card_masked,
            deadline=beijing_cn(workflow.now() + self.policy.formal_materials_deadline),
        )

    @workflow.signal(name="affiliation_response")
    async def affiliation_response(self, raw: RawValue) -> None:
        """The employer unit's or school's confirmation or denial (`AffiliationResponse`)."""
        answer = await self._signal_arg("affiliation_response", raw, AffiliationResponse)
        if answer is None or self._case is None:
            return
        if self.case.stage is not Stage.AWAITING_AFFILIATION:
            await self._ignore("affiliation_response", f"confirmed={answer.confirmed}")
            return
        if not isinstance(self.case.affiliation, Asked):
            await self._ignore("affiliation_response", "already answered")
            return
        self.case.affiliation = answer

    @workflow.update
    async def override_affiliation(self, override: AffiliationOverride) -> EventAck:
        """After escalation, staff accept the unit's paper letter instead of a portal answer."""
        self.case.affiliation = override
        await self._audit(
            "affiliation_overridden",
            override.staff_id,
            {"letter_doc_id": override.letter.doc_id, "note": override.note},
        )
        await workflow.wait_condition(lambda: self.case.stage is not Stage.AWAITING_AFFILIATION)
        return EventAck(stage=self.case.stage, at=workflow.now())

    @override_affiliation.validator
    def _check_override(self, override: AffiliationOverride) -> None:
        self._require_stage("override_affiliation", Stage.AWAITING_AFFILIATION)
        asked = self.case.affiliation
        if not isinstance(asked, Asked):
            raise ValueError("override_affiliation: the affiliation is already settled")
        if not asked.escalated:
            raise ValueError("override_affiliation: allowed only after escalation to a supervisor")

    @workflow.update
    async def review(self, decision: ReviewDecision) -> ReviewOutcome:
        """A reviewer approves, asks for a correction, or rejects."""
        if not self.case.review_open:
            raise ApplicationError(
                "review: this round has already been decided",
                type=ALREADY_DECIDED,
                non_retryable=True,
            )
        self.case.deciding = True
        verdict, reasons = decision.verdict, list(decision.reasons)
        limit = self.policy.max_correction_rounds
        if verdict is ReviewVerdict.REQUEST_CORRECTION and self.case.correction_round >= limit:
            verdict = ReviewVerdict.REJECT
            reasons.append(f"correction rounds exhausted (at most {limit})")
        effective = decision.model_copy(update={"verdict": verdict, "reasons": reasons})
        await self._act(
            RECORD_REVIEW_DECISION,
            ReviewRecordInput(
                **self._step(f"review:{self.case.accepted_rounds}"),
                round=self.case.accepted_rounds,
                reviewer=decision.reviewer,
                verdict=verdict,
                reasons=reasons,
                waive_fee=decision.waive_fee,
                waiver_reason=decision.waiver_reason,
            ),
            summary=f"record review decision: {verdict.value}",
        )
        self.case.decisions.append(effective)
        self.case.deciding = False
        if self._lean:
            # Answer once the decision is recorded and the case has taken it in (an
            # approval: its fee assessed), with the stage it goes to; the steps after
            # that (the payment order, the bureau) do not keep the reviewer waiting.
            await workflow.wait_condition(lambda: self._heading_to() is not None)
            stage = self._heading_to()
            assert stage is not None
            return ReviewOutcome(
                verdict=verdict, correction_round=self.case.correction_round, stage=stage
            )
        # Answer with where the case went, once the main path has moved it.
        await workflow.wait_condition(lambda: self.case.stage is not Stage.UNDER_REVIEW)
        return ReviewOutcome(
            verdict=verdict, correction_round=self.case.correction_round, stage=self.case.stage
        )

    def _heading_to(self) -> Stage | None:
        """After a review decision: the stage the case is going to, once it is known."""
        if self.case.stage is not Stage.UNDER_REVIEW:
            return self.case.stage
        if self.case.closing is not None:
            return self.case.closing.outcome
        if self.case.fee is not None:
            return Stage.AWAITING_PAYMENT if self.case.fee.amount_fen else Stage.CARD_PRODUCTION
        return None

    @review.validator
    def _check_review(self, decision: ReviewDecision) -> None:
        self._require_stage("review", Stage.UNDER_REVIEW)
        if not self.case.review_open:
            raise ValueError("review: this round has already been decided")
        if self.case.assignee is not None and self.case.assignee != decision.reviewer:
            raise ValueError(f"review: the case is claimed by {self.case.assignee}")
        self._check_four_eyes("review", decision.reviewer)

    @workflow.update
    def claim_review(self, claim: ReviewClaim) -> ClaimState:
        """A reviewer takes the case from the queue; the claim runs out after the policy's TTL."""
        self._set_claim(claim.reviewer, reason=f"claimed by {claim.reviewer}")
        return self._claim_state()

    @claim_review.validator
    def _check_claim(self, claim: ReviewClaim) -> None:
        self._require_stage("claim_review", Stage.UNDER_REVIEW)
        if not self.case.review_open:
            raise ValueError("claim_review: this round has already been decided")
        if self.case.assignee is not None and self.case.assignee != claim.reviewer:
            raise ValueError(f"claim_review: the case is claimed by {self.case.assignee}")
        self._check_four_eyes("claim_review", claim.reviewer)

    def _check_four_eyes(self, name: str, reviewer: str) -> None:
        """Four eyes: nobody reviews materials they received at the counter themselves.
        (A validator: it never runs on replay, and a refusal writes no history.)"""
        # Staff IDs compare case-insensitively (`Clerk-07` is `clerk-07`).
        if any(sub.received_by.lower() == reviewer.lower() for sub in self.case.submissions):
            raise ValueError(
                f"{name}: {reviewer} received this case's materials; another reviewer must decide"
            )

    @workflow.update
    async def release_review(self, release: ReviewRelease) -> ClaimState:
        """A supervisor returns a claimed case to the queue."""
        held_by = self.case.assignee
        self._set_claim(None, reason=f"released by {release.supervisor}")
        await self._audit(
            "review_released", release.supervisor, {"held_by": held_by, "reason": release.reason}
        )
        return self._claim_state()

    @release_review.validator
    def _check_release(self, release: ReviewRelease) -> None:
        self._require_stage("release_review", Stage.UNDER_REVIEW)
        if self.case.assignee is None:
            raise ValueError("release_review: nobody holds this case")
        if release.held_by is not None and release.held_by != self.case.assignee:
            raise ValueError(
                f"release_review: the claim has changed hands (now {self.case.assignee})"
            )

    @workflow.update
    async def registration(self) -> CaseStatus:
        """Answers once the loss is registered and the card frozen: the hotline's one round trip."""
        await workflow.wait_condition(
            lambda: (
                self._refusal is not None
                or (self._case is not None and self._case.stage is not Stage.LOSS_REPORTED)
            )
        )
        if self._refusal is not None:
            kind, message = self._refusal
            raise ApplicationError(message, type=kind, non_retryable=True)
        return self.status()

    async def _signal_arg(self, name: str, raw: RawValue, model: type[M]) -> M | None:
        """A signal's payload, decoded by the case itself: one sent unencrypted, or one
        that is not a valid `model`, is refused and kept on record (never applied)."""
        if self._v2 and PLAINTEXT_MARK in raw.payload.metadata:
            await self._ignore(name, "refused: sent unencrypted")
            return None
        try:
            value = workflow.payload_converter().from_payload(raw.payload, model)
        except Exception:  # the caller's error: refused, the value not echoed
            if self._v2:
                await self._ignore(name, "refused: not a valid payload")
            return None
        assert isinstance(value, model)
        return value

    def _claim_state(self) -> ClaimState:
        return ClaimState(
            assigned_to=self.case.assignee,
            claim_expires_at=self.case.claim_until,
            review_due_at=self.case.review_due,
        )

    @workflow.signal(name="payment_confirmed")
    async def payment_confirmed(self, raw: RawValue) -> None:
        """The payment platform reports a payment (`PaymentConfirmation`): it goes into the
        ledger, applied to the fee or refunded."""
        payment = await self._signal_arg("payment_confirmed", raw, PaymentConfirmation)
        if payment is None:
            return
        if self._case is None:  # the input was refused: no case, but the money goes back
            info = workflow.info()
            case_id = f"{info.workflow_id}:{info.first_execution_run_id}"
            await return_payment(case_id, payment, "the case did not open")
            return
        if not self._v2:
            await self._legacy_payment_confirmed(payment)
            return
        if self._opening_order():
            # The platform may tell us of a payment before its answer to our opening of
            # the order reaches us: the payment waits for the order.
            await workflow.wait_condition(lambda: not self._opening_order())
        async with self._money:
            await self._receive(payment)

    def _opening_order(self) -> bool:
        """The case's payment order is being opened at the payment platform (only cases
        under PATCH_PAYMENT_PLATFORM are in AWAITING_PAYMENT without an order)."""
        case = self.case
        return (
            case.stage is Stage.AWAITING_PAYMENT
            and case.order is None
            and case.ending is None
            and case.closing is None
        )

    async def _receive(self, payment: PaymentConfirmation) -> None:
        """A payment into the ledger (the money lock held): applied to the fee, or
        refunded; one already received is not received again."""
        detail = (
            f"order={payment.order_id} amount_fen={payment.amount_fen} ref={payment.payment_ref}"
        )
        earlier = next(
            (r for r in self.case.receipts if r.payment_ref == payment.payment_ref), None
        )
        if earlier is not None:
            if (earlier.amount_fen, earlier.order_id) == (payment.amount_fen, payment.order_id):
                await self._ignore("payment_confirmed", "duplicate: " + detail)
            else:
                await self._payment_conflict(detail, earlier)
            return
        if payment.amount_fen == 0:
            await self._ignore("payment_confirmed", "refused: a payment of 0 fen")
            return
        why_not = self._why_payment_not_applied(payment)
        receipt = await self._act(
            RECEIVE_PAYMENT,
            ReceivePaymentInput(
                **self._step(f"payment:{payment.payment_ref}"),
                order_id=payment.order_id,
                amount_fen=payment.amount_fen,
                payment_ref=payment.payment_ref,
                paid_at=payment.paid_at,
                apply=why_not is None,
                reason=why_not,
            ),
            summary=f"receive ¥{_yuan(payment.amount_fen)} into the ledger",
        )
        if not receipt.new:  # another case received this reference: its money, not ours
            if (receipt.amount_fen, receipt.order_id) == (payment.amount_fen, payment.order_id):
                await self._ignore("payment_confirmed", f"{receipt.reason}: {detail}")
            else:
                await self._payment_conflict(detail, receipt)
            return
        self.case.receipts.append(receipt)
        if receipt.applied and receipt.order is not None:
            self.case.order, self.case.payment = receipt.order, payment
            return
        self._anomaly(
            "payment_confirmed", f"payment_confirmed not applied ({receipt.reason}): {detail}"
        )
        refund = await self._refund(payment.payment_ref, receipt.reason or "not applied")
        await self._notify(
            Recipient.APPLICANT,
            "payment_returned",
            step=f"payment_returned:{payment.payment_ref}",
            amount=_yuan(refund.amount_fen),
        )

    async def _payment_conflict(self, detail: str, earlier: PaymentReceipt) -> None:
        """Two confirmations under one reference disagree: one of them is wrong. The
        ledger keeps the first; operations check with the platform."""
        await self._audit(
            "payment_conflict",
            "payment-platform",
            {
                "received": detail,
                "earlier": f"order={earlier.order_id} amount_fen={earlier.amount_fen}",
            },
        )
        self._anomaly(
            "payment_confirmed", f"payment_confirmed conflicts with an earlier one: {detail}"
        )
        if "payment_conflict" not in self.case.flags:
            self.case.flags.append("payment_conflict")

    def _why_payment_not_applied(self, payment: PaymentConfirmation) -> str | None:
        """Why a payment cannot pay this case's fee; None when it can."""
        if self._refusal is not None or self.case.stage.terminal:
            return "the case has closed"
        if self.case.ending is not None:
            return f"the case is ending ({self.case.ending.outcome.value})"
        if self.case.payment is not None:
            return "the fee is already paid (a second payment)"
        if self.case.stage is not Stage.AWAITING_PAYMENT or self.case.order is None:
            return f"no payment is due in stage {self.case.stage.value}"
        if payment.order_id != self.case.order.order_id:
            return f"the order is not this case's open order {self.case.order.order_id}"
        if payment.amount_fen != self.case.order.amount_fen:
            return f"paid {payment.amount_fen} fen against an order of {self.case.order.amount_fen} fen"
        return None

    async def _refund(self, payment_ref: str, reason: str) -> RefundResult:
        refund = await self._act(
            REFUND_PAYMENT,
            RefundInput(
                **self._step(f"refund:{payment_ref}"), payment_ref=payment_ref, reason=reason
            ),
            summary="refund through the payment platform",
        )
        self.case.refunds.append(refund)
        return refund

    async def _legacy_payment_confirmed(self, payment: PaymentConfirmation) -> None:
        """Payments of cases started before the ledger (corpus v1)."""
        detail = (
            f"order={payment.order_id} amount_fen={payment.amount_fen} ref={payment.payment_ref}"
        )
        if self.case.payment is not None and self.case.payment.payment_ref == payment.payment_ref:
            await self._ignore("payment_confirmed", "duplicate: " + detail)
            return
        if self.case.stage is not Stage.AWAITING_PAYMENT or self.case.payment is not None:
            await self._ignore("payment_confirmed", "late: " + detail)
            return
        assert self.case.order is not None
        if (
            payment.order_id != self.case.order.order_id
            or payment.amount_fen != self.case.order.amount_fen
        ):
            self._anomaly(
                "payment_confirmed",
                f"payment_confirmed not accepted: {detail}, expected order={self.case.order.order_id}"
                f" amount_fen={self.case.order.amount_fen}",
            )
            await self._audit("payment_anomaly", "payment-platform", {"received": detail})
            return
        self.case.payment = payment

    @workflow.signal(name="card_produced")
    async def card_produced(self, raw: RawValue) -> None:
        """The card bureau reports the new card made (`CardProduced`)."""
        produced = await self._signal_arg("card_produced", raw, CardProduced)
        if produced is None or self._case is None:
            return
        await self._bureau_answered()
        awaited = (
            self.case.stage is Stage.CARD_PRODUCTION
            and self.case.production is not None
            and self.case.produced is None
            and self.case.production_failed is None  # (a failure report is being handled)
            and self.case.new_card is None
        )
        if not awaited or self.case.production is None:
            await self._ignore("card_produced", f"order={produced.order_id}")
            return
        if produced.order_id in self.case.failed_orders:  # the bureau contradicts itself
            self._anomaly("card_produced", f"card_produced for failed order {produced.order_id}")
            await self._audit("production_anomaly", "card-bureau", {"order_id": produced.order_id})
            return
        if produced.order_id != self.case.production.order_id:
            self._anomaly("card_produced", f"card_produced for another order {produced.order_id}")
            await self._audit("production_anomaly", "card-bureau", {"order_id": produced.order_id})
            return
        self.case.produced = produced

    async def _bureau_answered(self) -> None:
        """A report on an order can arrive with the answer to the order itself (a fast
        bureau): it is judged once the case has taken the order in, not before."""
        if self._lean:
            await workflow.wait_condition(lambda: not self._ordering)

    @workflow.signal(name="production_failed")
    async def production_failed(self, raw: RawValue) -> None:
        """The card bureau reports it could not make the card (`ProductionFailed`)."""
        failed = await self._signal_arg("production_failed", raw, ProductionFailed)
        if failed is None or self._case is None:
            return
        if not (self._lean or workflow.patched(PATCH_BUREAU_FAILURES)):
            return  # (replaying a case whose worker did not know this report: it ignored it)
        await self._bureau_answered()
        awaited = (
            self.case.stage is Stage.CARD_PRODUCTION
            and self.case.awaiting is AwaitingParty.BUREAU
            and self.case.production is not None
            and self.case.produced is None
            and self.case.production_failed is None
        )
        repeated = failed.order_id in self.case.failed_orders  # (the bureau retried its report)
        if not awaited or repeated or self.case.production is None:
            await self._ignore("production_failed", f"order={failed.order_id}")
            return
        if failed.order_id != self.case.production.order_id:
            self._anomaly(
                "production_failed", f"production_failed for another order {failed.order_id}"
            )
            await self._audit("production_anomaly", "card-bureau", {"order_id": failed.order_id})
            return
        self.case.production_failed = failed

    @workflow.update
    async def reorder_card(self, reorder: ProductionReorder) -> EventAck:
        """A supervisor orders the card again after the bureau failed past the limit."""
        self.case.reorder = reorder
        await self._audit("production_reordered", reorder.supervisor, {"reason": reorder.reason})
        await workflow.wait_condition(lambda: self.case.reorder is None or self.case.stage.terminal)
        return EventAck(stage=self.case.stage, at=workflow.now())

    @reorder_card.validator
    def _check_reorder(self, reorder: ProductionReorder) -> None:
        self._require_stage("reorder_card", Stage.CARD_PRODUCTION)
        if "production_failed" not in self.case.flags or self.case.reorder is not None:
            raise ValueError(
                "reorder_card: allowed only after the bureau failed as often as the policy allows"
            )

    @workflow.signal(name="card_collected")
    async def card_collected(self, raw: RawValue) -> None:
        """The counter handed the new card over (`CardCollected`)."""
        collected = await self._signal_arg("card_collected", raw, CardCollected)
        if collected is None or self._case is None:
            return
        if self.case.stage is not Stage.READY_FOR_PICKUP or self.case.collected is not None:
            await self._ignore("card_collected", f"by={collected.handed_over_by}")
            return
        if collected.new_card_number != self.case.new_card:
            self._anomaly("card_collected", "card_collected names a different card")
            await self._audit("pickup_anomaly", collected.handed_over_by, {})
            return
        self.case.collected = collected

    @workflow.update
    async def card_found(self, found: CardFound) -> EventAck:
        """The person found the card: lift the temporary report and end the case."""
        async with self._turn():  # a submission or formalisation under way decides first
            self._require_open("card_found", refuse=True)
            if self.case.formal:
                raise ApplicationError(_VOID, type=REPORT_FORMAL, non_retryable=True)
            self.case.ending = Ending(Stage.WITHDRAWN, f"card found ({found.channel.value})")
        return await self._ended()

    @card_found.validator
    def _check_found(self, found: CardFound) -> None:
        self._require_open("card_found")
        if self.case.formal:
            raise ValueError(_VOID)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> EventAck:
        """Operations end the case; a paid fee is refunded."""
        async with self._turn():  # a submission or formalisation under way decides first
            self._require_open("cancel", refuse=True)
            self.case.ending = Ending(
                Stage.CANCELLED, f"cancelled by {request.operator}: {request.reason}"
            )
        return await self._ended()

    async def _ended(self) -> EventAck:
        """Answer an early end once the case has closed (or could not open at all)."""
        await workflow.wait_condition(
            lambda: (
                self._refusal is not None or (self._case is not None and self._case.stage.terminal)
            )
        )
        if self._refusal is not None:
            kind, message = self._refusal
            raise ApplicationError(message, type=kind, non_retryable=True)
        return EventAck(stage=self.case.stage, at=workflow.now())

    def _turn(self) -> AbstractAsyncContextManager[Any]:
        """Registry changes take turns (cases started before the patch did not wait)."""
        return self._registry if self._v2 else nullcontext()

    @cancel.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        self._require_open("cancel")

    @workflow.query
    def status(self) -> CaseStatus:
        """The full state of the case."""
        if self._refusal is not None:
            raise ApplicationError(self._refusal[1], type=self._refusal[0])
        return self.case.status()

    # ------------------------------------------------------------------ helpers

    @property
    def refuses_plaintext(self) -> bool:
        """Signals and updates that came unencrypted are refused (see `schemas.converter`)."""
        return self._v2

    @property
    def policy(self) -> CasePolicy:
        """The policy in force for this case (known once the case has opened)."""
        assert self.case.policy is not None
        return self.case.policy

    @property
    def _account_id(self) -> str:
        assert self.case.report is not None
        return self.case.report.account_id

    def _open(self, raw: RawValue) -> None:
        """Decode the input as the history holds it; a bad one refuses the case.

        The input arrives raw so that a bad one from a by-name start fails the case
        with a readable error instead of failing workflow tasks forever. It is decoded
        without today's reference data (see `schemas.identifiers`); the registry checks
        that when the case opens. Cases started before PATCH_SYSTEM_OF_RECORD carried
        their policy in the input and are decoded as they were then (`recorded`).
        """
        if self._v2 and PLAINTEXT_MARK in raw.payload.metadata:
            self._refusal = (PLAINTEXT_PAYLOAD, f"case refused: {PLAINTEXT_REFUSED}")
            return
        context = None if self._v2 else RECORDED
        try:
            data = workflow.payload_converter().from_payload(raw.payload, dict)
            given_policy = data.pop("policy", None) if isinstance(data, dict) else None
            CaseInput.model_validate(data, context=context)  # strictly, for new cases
            if not self._v2:
                self.case.policy = CasePolicy.model_validate(
                    given_policy or _LEGACY_DEFAULT_POLICY, context=context
                )
        except Exception as e:  # any undecodable input is the caller's error, not ours
            self._refusal = (INVALID_CASE_INPUT, f"invalid case input: {_describe_input_error(e)}")
            return
        if self._v2 and given_policy is not None:
            self._refusal = (
                INVALID_CASE_INPUT,
                "invalid case input: policy: the case policy is not chosen by the caller: "
                "the system of record resolves the policy in force when the case opens",
            )

    async def _refuse(self) -> NoReturn:
        """The case cannot open: nothing was written; say why, once handlers are answered."""
        assert self._refusal is not None
        kind, message = self._refusal
        await self._finish_handlers()
        raise ApplicationError(message, type=kind, non_retryable=True)

    async def _finish_handlers(self) -> None:
        """Updates and signals still running finish before the case closes: a payment
        being refunded is refunded, even if Temporal is asked to cancel meanwhile."""
        while True:
            try:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return
            except asyncio.CancelledError:
                if not self._v2:
                    raise  # as cases started before the patch did
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                self._end_through_temporal()

    def _temporary_expiry(self) -> datetime:
        return self.case.reported_at + self.policy.temporary_report_validity

    def _require_open(self, name: str, *, refuse: bool = False) -> None:
        """For a validator (ValueError), or after waiting in a handler (`refuse`: ApplicationError)."""
        problem = None
        if self._refusal is not None:
            problem = f"{name}: the case did not open ({self._refusal[0]})"
        elif self._case is None:
            problem = f"{name}: the case input is not valid; the case does not open"
        elif self.case.stage.terminal or self.case.ending is not None:
            problem = f"{name}: the case has ended ({self.case.stage.value})"
        elif self.case.activating:
            problem = f"{name}: the new card is being activated; the case is completing"
        if problem is None:
            return
        if refuse:
            raise ApplicationError(problem, type=CASE_ENDING, non_retryable=True)
        raise ValueError(problem)

    def _require_stage(self, name: str, stage: Stage, *, refuse: bool = False) -> None:
        self._require_open(name, refuse=refuse)
        if self.case.stage is not stage:
            problem = f"{name}: not accepted in stage {self.case.stage.value}"
            if refuse:
                raise ApplicationError(problem, type=WRONG_STAGE, non_retryable=True)
            raise ValueError(problem)

    def _step(self, name: str) -> dict[str, Any]:
        return {"case_id": self.case.case_id, "step": name, "at": workflow.now()}

    def _enter(
        self,
        stage: Stage,
        awaiting: AwaitingParty,
        action: str,
        deadline: datetime | None = None,
    ) -> None:
        self._checkpoint()  # a stage is not entered once an early end was accepted
        if stage is not self.case.stage or not self.case.timeline:
            if self.case.timeline:
                left = self.case.timeline[-1]
                self._metrics.left_stage(left.stage.value, workflow.now() - left.entered_at)
            if stage.terminal:
                self._metrics.closed(outcome=stage.value, district=self.case.inp.district)
            self.case.timeline.append(
                StageEntry(stage=stage, entered_at=workflow.now(), note=action)
            )
        self.case.stage, self.case.awaiting, self.case.action, self.case.deadline = (
            stage,
            awaiting,
            action,
            deadline,
        )
        self._upsert_visibility()

    def _anomaly(self, kind: str, text: str) -> None:
        """A partner's report the case could not accept: on the case, and counted by the
        event it came with (`kind`, a name of ours: never the report's content)."""
        self.case.anomalies.append(text)
        self._metrics.anomaly(kind)

    def _set_deadline(self, deadline: datetime | None) -> None:
        """The deadline of a wait within a stage, shown in visibility (`NextDeadline`)."""
        self.case.deadline = deadline
        if self._v2:
            self._upsert_visibility()

    def _upsert_visibility(self) -> None:
        workflow.upsert_search_attributes(self.case.search_attributes())
        workflow.set_current_details(self.case.details())

    def _set_claim(self, reviewer: str | None, *, reason: str) -> None:
        if reviewer is None and self.case.assignee is None:
            return
        self.case.assignee = reviewer
        self.case.claim_until = workflow.now() + self.policy.review_claim_ttl if reviewer else None
        self._upsert_visibility()
        workflow.logger.info("review claim changed: %s", reason)

    async def _wait(self, done: Callable[[], bool], until: datetime | None, what: str = "") -> bool:
        """Wait for `done`, an early end, or `until`. True if done; raises on an early end."""
        timeout = None
        if until is not None:
            timeout = until - workflow.now()
            if timeout <= timedelta(0):
                return done()
        try:
            await workflow.wait_condition(
                lambda: done() or self.case.ending is not None,
                timeout=timeout,
                timeout_summary=what or None,
            )
        except TimeoutError:
            pass
        if self.case.ending is not None:
            raise self.case.ending
        return done()

    async def _wait_reminding(
        self,
        done: Callable[[], bool],
        *,
        reminders: Callable[[int], datetime | None],
        remind: Callable[[int], Awaitable[None]],
        label: Callable[[int], str],
        deadline: datetime | None = None,
        deadline_label: str = "",
        show_deadline: bool = False,
    ) -> bool:
        """Wait for `done`, sending reminder n at `reminders(n - 1)` (None: no more) until
        `deadline` (None: for ever). True once done; False at the deadline; raises on an
        early end. `show_deadline`: each wait's end is the case's NextDeadline."""
        sent = 0
        while True:
            at = reminders(sent)
            reminder_first = at is not None and (deadline is None or at < deadline)
            until = at if reminder_first else deadline
            if show_deadline and until != self.case.deadline:
                self._set_deadline(until)
            if await self._wait(done, until, label(sent + 1) if reminder_first else deadline_label):
                return True
            if not reminder_first:
                return False
            sent += 1
            await remind(sent)

    def _checkpoint(self) -> None:
        """On the main path, an early end accepted meanwhile takes effect now."""
        if (
            self._v2
            and self.case.ending is not None
            and self.case.opened
            and self.case.closing is None
            and asyncio.current_task() is self._main
        ):
            raise self.case.ending

    async def _act(
        self,
        activity: ActivityDef[In, R],
        arg: In,
        *,
        summary: str | None = None,
    ) -> R:
        # Before every step of the main path: an early end accepted while the
        # previous one ran is honoured before anything further happens.
        self._checkpoint()
        local = self._lean and not activity.partner
        return await call(activity, arg, summary=summary, local=local)

    async def _notify(
        self,
        recipient: Recipient,
        template: str,
        *,
        ref: str | None = None,
        step: str | None = None,
        summary: str | None = None,
        **params: str,
    ) -> None:
        await self._act(
            NOTIFY,
            NotifyInput(
                **self._step(f"notify:{step or template}"),
                recipient=recipient,
                recipient_ref=ref or self._account_id_or_case(),
                template=template,
                params=params,
            ),
            summary=summary or f"notify {recipient.value}: {template}",
        )

    async def _remind(
        self,
        what: str,
        recipient: Recipient,
        template: str,
        *,
        nth: int,
        of: int,
        ref: str | None = None,
        **params: str,
    ) -> None:
        total = self.case.reminders.get(what, 0) + 1
        self.case.reminders[what] = total
        self._metrics.reminded(what)
        workflow.set_current_details(self.case.details())
        await self._notify(
            recipient,
            template,
            ref=ref,
            step=f"{template}:{self.case.accepted_rounds}:{total}",
            summary=f"reminder {nth} of {of} sent to {recipient.value}",
            n=str(nth),
            **params,
        )

    def _account_id_or_case(self) -> str:
        return self.case.report.account_id if self.case.report else workflow.info().workflow_id

    async def _audit(self, event_type: str, actor: str, detail: dict[str, Any]) -> None:
        if self._refusal is not None:
            return  # no case was opened: nothing to put on its record
        self.case.audit_events += 1
        await self._act(
            APPEND_AUDIT_EVENT,
            AuditInput(
                **self._step(f"event:{self.case.audit_events}:{event_type}"),
                event_type=event_type,
                actor=actor,
                detail=detail,
            ),
            summary=f"audit: {event_type}",
        )

    async def _ignore(self, event: str, detail: str) -> None:
        """Duplicate or late events change nothing; they are kept on record."""
        if self._case is None:
            return  # the case did not open: there is no record to keep it on
        self.case.ignored.append(f"{event} in {self.case.stage.value}: {detail}")
        await self._audit(
            "event_ignored",
            "system",
            {"event": event, "stage": self.case.stage.value, "detail": detail},
        )


_VOID = (
    "card_found: the loss report is formal (or a reissue was applied for); "
    "the old card is void and cannot be revived"
)
