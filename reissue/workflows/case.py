"""One lost-card reissue case, from the loss report to the new card in hand.

Read `CardReissueWorkflow._story` for the story: report and freeze, materials,
unit/school confirmation, review (with correction rounds), fee, production, pickup.
Each stage is a module of its own beside this one, with its state and its handlers;
this class wires them to Temporal: the input, the run, the events in, the query.

Any wait can be cut short by the person finding the card, by operations cancelling,
or by a cancellation requested through Temporal itself; the case then takes the one
way out (`early_ends`), undoing what must be undone in reverse order. Every duration,
limit and fee comes from the case policy, which the system of record resolves when
the case opens. Every coroutine acts only while holding the case's turn
(`workflows.turns`), so that what the case does depends on its history alone.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
    from reissue.schemas.codec import PLAINTEXT_MARK
    from reissue.schemas.converter import PLAINTEXT_REFUSED
    from reissue.schemas.enums import ReviewVerdict, Stage
    from reissue.schemas.errors import (
        CASE_ENDING,
        INVALID_CASE_INPUT,
        PLAINTEXT_PAYLOAD,
        REGISTRATION_REFUSALS,
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
    from reissue.workflows import view
    from reissue.workflows.affiliation import Affiliation
    from reissue.workflows.calls import return_payment
    from reissue.workflows.core import Case, Ending
    from reissue.workflows.early_ends import EarlyEnds
    from reissue.workflows.materials import Materials
    from reissue.workflows.metrics import CaseMetrics
    from reissue.workflows.money import Money
    from reissue.workflows.pickup import Pickup
    from reissue.workflows.production import Production
    from reissue.workflows.report import Report
    from reissue.workflows.review import Review
    from reissue.workflows.turns import Turns

__all__ = ["CardReissueWorkflow"]

M = TypeVar("M", bound=BaseModel)


def _describe(error: Exception) -> str:
    """Which fields are wrong and why, without echoing the values (they may be personal)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}" for e in error.errors()
        )
    return "input is not a JSON object matching CaseInput"


# How long a closing case lets the events being handled finish before it looks again.
_SETTLE = timedelta(milliseconds=100)


class _Refused(Exception):
    """The case could not open (see `schemas.errors.REGISTRATION_REFUSALS`): nothing was written."""


@workflow.defn(name="CardReissueWorkflow")
class CardReissueWorkflow:
    """A reissue case: the durable state of one person's lost card."""

    @workflow.init
    def __init__(self, raw: RawValue) -> None:
        # The input arrives raw so that a bad one from a by-name start fails the case
        # with a readable error instead of failing workflow tasks for ever. The case
        # exists from the start: events delivered with the start are handled first.
        self._refusal: tuple[str, str] | None = None
        self._main: asyncio.Task[CaseResult] | None = None
        self._turns = Turns()
        self._case: Case | None = None
        inp = self._decode(raw)
        if inp is None:
            return
        info = workflow.info()
        case = Case(
            inp=inp,
            case_id=f"{info.workflow_id}:{info.first_execution_run_id}",
            started_at=info.start_time,
            turns=self._turns,
            metrics=CaseMetrics(),
        )
        self._case = case
        # The stages, each with its state and its handlers (named for what they do: the
        # handlers' names are the contract's).
        self.reporting = Report(case)
        self.reviewing: Review
        self.collecting = Materials(case, self.reporting, lambda: self.reviewing.correction_round)
        self.confirming = Affiliation(case, self.collecting)
        self.reviewing = Review(case, self.collecting, self._heading_to)
        self.paying = Money(case, self.collecting, self.reviewing)
        self.producing = Production(case, self.collecting)
        self.handing_over = Pickup(case, self.reporting, self.collecting, self.producing)
        self.early_ends = EarlyEnds(
            case, self.reporting, self.paying, self.producing, lambda: self._refusal
        )
        case.shown = lambda: (view.search_attributes(self), view.details(self))

    @property
    def case(self) -> Case:
        assert self._case is not None
        return self._case

    # ------------------------------------------------------------------ the case

    @workflow.run
    async def run(self, raw: RawValue) -> CaseResult:
        """Takes a `CaseInput` (see schemas/json/CaseInput.schema.json)."""
        self._main = asyncio.create_task(self._run_case())
        while True:
            try:
                # Shielded: a cancellation requested through Temporal does not cut a step
                # short; it becomes an early end like `cancel`.
                return await asyncio.shield(self._main)
            except asyncio.CancelledError:
                if self._main.cancelled() or self._main.cancelling():
                    raise  # evicted from the worker's cache, or ended cancelled as asked
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()  # handled: the case ends early instead
                async with self._turns.turn():
                    if self._case is not None and self._refusal is None:
                        self.early_ends.through_temporal()

    async def _run_case(self) -> CaseResult:
        """The case, then the events still being handled; the way it ends, or why it could
        not open."""
        async with self._turns.turn():
            if self._case is not None:
                self.case.main = asyncio.current_task()
            try:
                if self._refusal is not None:
                    raise _Refused
                try:
                    result = await self._story()
                except Ending as end:
                    earlier = self.case.ending
                    if earlier is not None and earlier.through_temporal:
                        end.through_temporal = True  # (the workflow still ends cancelled)
                    self.case.ending = end
                    result = await self.early_ends.end(end)
            except _Refused:
                await self._settle(at_once=False)
                kind, message = self._refusal or ("", "")
                raise ApplicationError(message, type=kind, non_retryable=True) from None
            await self._settle(at_once=True)
        ending = self.case.closing
        if ending is not None and ending.through_temporal:
            raise asyncio.CancelledError("cancellation requested through Temporal")
        return result

    async def _settle(self, *, at_once: bool) -> None:
        """Updates and signals still being handled finish before the case closes (a payment
        being refunded is refunded, even if Temporal is asked to cancel meanwhile). The case
        closes only at a moment its history fixes: right after an event it records (its
        closing step, or a short timer), once the handlers that may act then have acted,
        none of them with a local activity (whose result the core may hand over with the
        next task's events), and none is left."""
        while True:
            if at_once:
                steps = self._turns.local_steps
                await self._turns.let_others_go()
                if self._turns.local_steps == steps and not self._turns.handlers:
                    return
            at_once = True
            await self._turns.wait(
                lambda: False,
                until=self._turns.now + _SETTLE,
                summary="events still being handled before the case closes",
            )

    async def _story(self) -> CaseResult:
        try:
            await self.reporting.open()
        except ActivityError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.type in REGISTRATION_REFUSALS:
                self._refusal = (cause.type, cause.message)
                raise _Refused from e
            raise
        while True:
            await self.collecting.collect()
            await self.confirming.confirm()
            verdict = await self.reviewing.review()
            if verdict is ReviewVerdict.APPROVE:
                break
            if verdict is ReviewVerdict.REJECT:
                raise Ending(Stage.REJECTED, "; ".join(self.reviewing.reasons))
        await self.paying.collect_fee()
        await self.producing.produce()
        return await self.handing_over.hand_over()

    def _heading_to(self) -> Stage | None:
        """After a review decision: the stage the case is going to, once it is known."""
        case = self.case
        if case.stage is not Stage.UNDER_REVIEW:
            return case.stage
        if case.closing is not None:
            return case.closing.outcome
        if self.paying.fee is not None:
            return Stage.AWAITING_PAYMENT if self.paying.fee.amount_fen else Stage.CARD_PRODUCTION
        return None

    # ------------------------------------------------------------------ events in

    @workflow.update
    async def make_report_formal(self, req: ReportFormalisation) -> EventAck:
        """The person showed their ID at a counter: the report is formal, before any application."""
        async with self._turns.turn(handler=True):
            return await self.reporting.make_formal(req)

    @make_report_formal.validator
    def _check_formal(self, req: ReportFormalisation) -> None:
        self._require_case("make_report_formal")
        self.reporting.check_formal(req)

    @workflow.update
    async def submit_materials(self, sub: MaterialsSubmission) -> MaterialsAccepted:
        """The application and materials handed in at a counter."""
        async with self._turns.turn(handler=True):
            return await self.collecting.submit(sub)

    @submit_materials.validator
    def _check_materials(self, sub: MaterialsSubmission) -> None:
        self._require_case("submit_materials")
        self.collecting.check(sub)

    @workflow.signal(name="affiliation_response")
    async def affiliation_response(self, raw: RawValue) -> None:
        """The employer unit's or school's confirmation or denial (`AffiliationResponse`)."""
        async with self._turns.turn(handler=True):
            answer = await self._signal_arg("affiliation_response", raw, AffiliationResponse)
            if answer is not None:
                await self.confirming.respond(answer)

    @workflow.update
    async def override_affiliation(self, override: AffiliationOverride) -> EventAck:
        """After escalation, staff accept the unit's paper letter instead of a portal answer."""
        async with self._turns.turn(handler=True):
            return await self.confirming.override(override)

    @override_affiliation.validator
    def _check_override(self, override: AffiliationOverride) -> None:
        self._require_case("override_affiliation")
        self.confirming.check_override(override)

    @workflow.update
    async def review(self, decision: ReviewDecision) -> ReviewOutcome:
        """A reviewer approves, asks for a correction, or rejects."""
        async with self._turns.turn(handler=True):
            return await self.reviewing.decide(decision)

    @review.validator
    def _check_review(self, decision: ReviewDecision) -> None:
        self._require_case("review")
        self.reviewing.check_decision(decision)

    @workflow.update
    async def claim_review(self, claim: ReviewClaim) -> ClaimState:
        """A reviewer takes the case from the queue; the claim runs out after the policy's TTL."""
        async with self._turns.turn(handler=True):
            return await self.reviewing.claim(claim)

    @claim_review.validator
    def _check_claim(self, claim: ReviewClaim) -> None:
        self._require_case("claim_review")
        self.reviewing.check_claim(claim)

    @workflow.update
    async def release_review(self, release: ReviewRelease) -> ClaimState:
        """A supervisor returns a claimed case to the queue."""
        async with self._turns.turn(handler=True):
            return await self.reviewing.release(release)

    @release_review.validator
    def _check_release(self, release: ReviewRelease) -> None:
        self._require_case("release_review")
        self.reviewing.check_release(release)

    @workflow.signal(name="payment_confirmed")
    async def payment_confirmed(self, raw: RawValue) -> None:
        """The payment platform reports a payment (`PaymentConfirmation`): it goes into the
        ledger, applied to the fee or refunded."""
        async with self._turns.turn(handler=True):
            payment = await self._signal_arg("payment_confirmed", raw, PaymentConfirmation)
            if payment is None:
                return
            if self._case is None or self._refusal is not None:
                # The case did not open: no fee, but the money goes back.
                info = workflow.info()
                case_id = f"{info.workflow_id}:{info.first_execution_run_id}"
                await return_payment(case_id, payment, "the case did not open", turns=self._turns)
                return
            await self.paying.confirmed(payment)

    @workflow.signal(name="card_produced")
    async def card_produced(self, raw: RawValue) -> None:
        """The card bureau reports the new card made (`CardProduced`)."""
        async with self._turns.turn(handler=True):
            produced = await self._signal_arg("card_produced", raw, CardProduced)
            if produced is not None:
                await self.producing.card_produced(produced)

    @workflow.signal(name="production_failed")
    async def production_failed(self, raw: RawValue) -> None:
        """The card bureau reports it could not make the card (`ProductionFailed`)."""
        async with self._turns.turn(handler=True):
            failed = await self._signal_arg("production_failed", raw, ProductionFailed)
            if failed is not None:
                await self.producing.production_failed(failed)

    @workflow.update
    async def reorder_card(self, reorder: ProductionReorder) -> EventAck:
        """A supervisor orders the card again after the bureau failed past the limit."""
        async with self._turns.turn(handler=True):
            return await self.producing.reorder_card(reorder)

    @reorder_card.validator
    def _check_reorder(self, reorder: ProductionReorder) -> None:
        self._require_case("reorder_card")
        self.producing.check_reorder(reorder)

    @workflow.signal(name="card_collected")
    async def card_collected(self, raw: RawValue) -> None:
        """The counter handed the new card over (`CardCollected`)."""
        async with self._turns.turn(handler=True):
            collected = await self._signal_arg("card_collected", raw, CardCollected)
            if collected is not None:
                await self.handing_over.card_collected(collected)

    @workflow.update
    async def card_found(self, found: CardFound) -> EventAck:
        """The person found the card: lift the temporary report and end the case."""
        async with self._turns.turn(handler=True):
            self._require_case("card_found", refuse=True)
            return await self.early_ends.card_found(found)

    @card_found.validator
    def _check_found(self, found: CardFound) -> None:
        self._require_case("card_found")
        self.early_ends.check_found(found)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> EventAck:
        """Operations end the case; a paid fee is refunded."""
        async with self._turns.turn(handler=True):
            self._require_case("cancel", refuse=True)
            return await self.early_ends.cancel(request)

    @cancel.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        self._require_case("cancel")
        self.case.require_open("cancel")

    @workflow.update
    async def registration(self) -> CaseStatus:
        """Answers once the loss is registered and the card frozen: the hotline's one round trip."""
        async with self._turns.turn(handler=True):
            await self._turns.wait(
                lambda: (
                    self._refusal is not None
                    or (self._case is not None and self._case.stage is not Stage.LOSS_REPORTED)
                )
            )
            if self._refusal is not None:
                kind, message = self._refusal
                raise ApplicationError(message, type=kind, non_retryable=True)
            return view.status(self)

    @workflow.query
    def status(self) -> CaseStatus:
        """The full state of the case."""
        if self._refusal is not None:
            raise ApplicationError(self._refusal[1], type=self._refusal[0])
        return view.status(self)

    # ------------------------------------------------------------------ helpers

    def _decode(self, raw: RawValue) -> CaseInput | None:
        """The input as the history holds it; a bad one refuses the case (nothing opens)."""
        if PLAINTEXT_MARK in raw.payload.metadata:
            self._refusal = (PLAINTEXT_PAYLOAD, f"case refused: {PLAINTEXT_REFUSED}")
            return None
        try:
            data = json.loads(raw.payload.data)  # JSON whether encrypted or not (decoded)
            if isinstance(data, dict) and data.get("policy") is not None:
                self._refusal = (
                    INVALID_CASE_INPUT,
                    "invalid case input: policy: the case policy is not chosen by the caller: "
                    "the system of record resolves the policy in force when the case opens",
                )
                return None
            return CaseInput.model_validate(data)
        except Exception as e:  # any undecodable input is the caller's error, not ours
            self._refusal = (INVALID_CASE_INPUT, f"invalid case input: {_describe(e)}")
            return None

    def _require_case(self, name: str, *, refuse: bool = False) -> None:
        """The case opened (or is opening): an event for one that could not is refused."""
        problem = None
        if self._refusal is not None:
            problem = f"{name}: the case did not open ({self._refusal[0]})"
        elif self._case is None:
            problem = f"{name}: the case input is not valid; the case does not open"
        if problem is None:
            return
        if refuse:
            raise ApplicationError(problem, type=CASE_ENDING, non_retryable=True)
        raise ValueError(problem)

    async def _signal_arg(self, name: str, raw: RawValue, model: type[M]) -> M | None:
        """A signal's payload, decoded by the case itself: one sent unencrypted, or one that
        is not a valid `model`, is refused and kept on record (never applied)."""
        refused = None
        if PLAINTEXT_MARK in raw.payload.metadata:
            refused = "refused: sent unencrypted"
        else:
            try:
                value = workflow.payload_converter().from_payload(raw.payload, model)
            except Exception:  # the caller's error: refused, the value not echoed
                refused = "refused: not a valid payload"
            else:
                assert isinstance(value, model)
                if self._case is not None or name == "payment_confirmed":
                    return value
                return None
        if self._case is not None and self._refusal is None:
            await self.case.ignore(name, refused)
        return None
