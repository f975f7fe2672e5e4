"""What each activity says on a case's timeline (`reissue audit`, the console's case page).

Every activity the timeline shows has one function here, registered for its
definition with `tells`: from the step's input and result, as the history holds
them, it gives who acted, what happened and the detail. An activity the timeline
does not show says so where it is defined (`ActivityDef.on_timeline`); a test holds
every definition to one or the other. Card numbers are masked even in a timeline
that shows personal data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel

from reissue.schemas.activities import (
    ACTIVATE_NEW_CARD,
    APPEND_AUDIT_EVENT,
    ASSESS_FEE,
    CANCEL_CARD_PRODUCTION,
    CANCEL_PAYMENT_ORDER,
    CLOSE_PAYMENT_ORDER,
    FORMALISE_LOSS_REPORT,
    FREEZE_BANK_ACCOUNT,
    FREEZE_CARD,
    LIFT_LOSS_REPORT,
    NOTIFY,
    OPEN_PAYMENT_ORDER,
    ORDER_CARD_PRODUCTION,
    PRECHECK_MATERIALS,
    RECEIVE_PAYMENT,
    RECORD_CARD_PRODUCED,
    RECORD_PRODUCTION_FAILED,
    RECORD_REVIEW_DECISION,
    REFUND_PAYMENT,
    REGISTER_LOSS,
    REQUEST_AFFILIATION_CONFIRMATION,
    UNFREEZE_BANK_ACCOUNT,
    VOID_OLD_CARD,
    ActivateCardInput,
    ActivateCardResult,
    ActivityDef,
    AffiliationRequestInput,
    AssessFeeInput,
    AuditInput,
    CardProducedInput,
    CaseStep,
    CreatePaymentInput,
    Done,
    FeeAssessment,
    FormaliseInput,
    FreezeInput,
    FreezeResult,
    LiftLossInput,
    LiftResult,
    NotifyInput,
    OrderInput,
    PaymentAtPlatform,
    PaymentOrder,
    PaymentReceipt,
    PrecheckInput,
    PrecheckResult,
    ProductionFailedInput,
    ProductionInput,
    ProductionOrder,
    ReceivePaymentInput,
    RefundInput,
    RefundResult,
    RegisterLossInput,
    RegisterLossResult,
    ReviewRecordInput,
    VoidCardInput,
)
from reissue.schemas.clock import beijing
from reissue.schemas.identifiers import mask_card_number
from reissue.schemas.reasons import known, label

__all__ = ["TimelineLine", "described", "line", "tells"]

In = TypeVar("In", bound=CaseStep)
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class TimelineLine:
    """One completed step as the timeline tells it: who acted, what happened, the
    detail; `policy_in_force` when the step settled the policy the case is judged by."""

    actor: str
    what: str
    detail: str = ""
    policy_in_force: str | None = None


Tell: TypeAlias = Callable[[In, Out], TimelineLine]

_TOLD: dict[ActivityDef[Any, Any], Tell[Any, Any]] = {}


def tells(activity: ActivityDef[In, Out]) -> Callable[[Tell[In, Out]], Tell[In, Out]]:
    """Register the decorated function as what `activity` says on the timeline."""

    def register(tell: Tell[In, Out]) -> Tell[In, Out]:
        assert activity not in _TOLD, f"{activity.name} is told twice"
        _TOLD[activity] = tell
        return tell

    return register


def line(activity: ActivityDef[In, Out], arg: In, result: Out) -> TimelineLine | None:
    """What a completed run of `activity` says on the timeline; None for an activity the
    timeline does not show."""
    return _TOLD[activity](arg, result) if activity.on_timeline else None


def described() -> frozenset[ActivityDef[Any, Any]]:
    """The activities that have their line here."""
    return frozenset(_TOLD)


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def _card(number: str | None) -> str:
    return mask_card_number(number) if number else "-"


def _when(at: datetime) -> str:
    return beijing(at, seconds=True)


# ----------------------------------------------------------------------------- the system of record


@tells(REGISTER_LOSS)
def _loss_registered(arg: RegisterLossInput, r: RegisterLossResult) -> TimelineLine:
    policy = r.policy.version if r.policy else None
    in_force = f"; policy in force {policy} (sha256 {str(r.policy_hash)[:12]}…)"
    return TimelineLine(
        "registry",
        "Loss registered",
        f"report {r.report_number}; reported at {_when(r.reported_at)} (liability cut-off); "
        f"{'formal' if r.formal else 'temporary'} report" + (in_force if policy else ""),
        policy_in_force=policy,
    )


@tells(FREEZE_CARD)
def _card_frozen(arg: FreezeInput, _: FreezeResult) -> TimelineLine:
    return TimelineLine("registry", "Card frozen in the registry", f"card {_card(arg.card_number)}")


@tells(FORMALISE_LOSS_REPORT)
def _report_formal(arg: FormaliseInput, _: Done) -> TimelineLine:
    return TimelineLine("registry", "Loss report made formal", "the old card is void from now on")


@tells(LIFT_LOSS_REPORT)
def _report_lifted(arg: LiftLossInput, r: LiftResult) -> TimelineLine:
    if not r.changed:
        return TimelineLine("registry", "Loss report not lifted", "it is not a temporary report")
    if r.standing_until is not None:
        return TimelineLine(
            "registry",
            "Loss report stands, card still frozen",
            f"until {beijing(r.standing_until)} (its validity), unless the owner lifts it; "
            f"reason: {arg.reason}",
        )
    return TimelineLine("registry", "Loss report lifted, card unfrozen", f"reason: {arg.reason}")


@tells(VOID_OLD_CARD)
def _old_card_void(arg: VoidCardInput, _: Done) -> TimelineLine:
    return TimelineLine(
        "registry",
        "Loss report closed, old card void",
        f"card {_card(arg.card_number)} stays unusable; reason: {arg.reason}",
    )


@tells(ACTIVATE_NEW_CARD)
def _new_card_active(arg: ActivateCardInput, r: ActivateCardResult) -> TimelineLine:
    return TimelineLine(
        "registry",
        "New card activated",
        f"new card {_card(arg.new_card_number)} on the same account "
        f"(balance {_yuan(r.balance_fen)} untouched); old card "
        f"{_card(arg.old_card_number)} replaced; loss report resolved",
    )


# ----------------------------------------------------------------------------- the bank


@tells(FREEZE_BANK_ACCOUNT)
def _account_frozen(_: FreezeInput, r: FreezeResult) -> TimelineLine:
    return TimelineLine("bank", "Bank account frozen", f"status {r.status}")


@tells(UNFREEZE_BANK_ACCOUNT)
def _account_unfrozen(_: FreezeInput, r: FreezeResult) -> TimelineLine:
    return TimelineLine("bank", "Bank account unfrozen", f"status {r.status}")


# ----------------------------------------------------------------------------- materials, review


@tells(REQUEST_AFFILIATION_CONFIRMATION)
def _confirmation_requested(arg: AffiliationRequestInput, _: Done) -> TimelineLine:
    return TimelineLine(
        "system", "Confirmation requested", f"{arg.kind} {arg.org_name} ({arg.org_code})"
    )


@tells(PRECHECK_MATERIALS)
def _materials_prechecked(arg: PrecheckInput, r: PrecheckResult) -> TimelineLine:
    verdict = "passed" if r.passed else "failed: " + "; ".join(r.problems)
    docs = ", ".join(f"{d.type}:{d.doc_id}" for d in arg.documents)
    return TimelineLine("system", f"Materials pre-check {verdict}", docs)


@tells(RECORD_REVIEW_DECISION)
def _review_recorded(arg: ReviewRecordInput, _: Done) -> TimelineLine:
    waiver = f"; fee waived ({arg.waiver_reason})" if arg.waive_fee else ""
    # A code as its label; a reason recorded as free text (before the catalogue) as it is.
    reasons = [label(reason) if (reason := known(r)) else r for r in arg.reasons]
    return TimelineLine(
        arg.reviewer,
        f"Review decision: {arg.verdict} (round {arg.round})",
        f"reasons: {'; '.join(reasons) or '-'}{waiver}",
    )


# ----------------------------------------------------------------------------- fee, money


@tells(ASSESS_FEE)
def _fee_assessed(arg: AssessFeeInput, r: FeeAssessment) -> TimelineLine:
    return TimelineLine(
        "payments",
        f"Fee assessed: {_yuan(r.amount_fen)}",
        f"schedule {arg.schedule}, base {_yuan(r.base_fen)}, "
        f"exemption {r.exemption or '-'}, waived {r.waived}",
    )


@tells(OPEN_PAYMENT_ORDER)
def _order_opened(arg: CreatePaymentInput, r: PaymentOrder) -> TimelineLine:
    there = f", at the payment platform as {r.platform_ref}" if r.platform_ref else ""
    return TimelineLine(
        "payments",
        f"Payment order {r.order_id} for {_yuan(r.amount_fen)}",
        f"due {_when(arg.due_at)}{there}",
    )


@tells(CLOSE_PAYMENT_ORDER)
def _order_closed(arg: OrderInput, r: PaymentAtPlatform) -> TimelineLine:
    return TimelineLine(
        "payment platform",
        f"Payment order {r.order_id} closed at the payment platform",
        f"paid first: {_yuan(r.payment.amount_fen)}, reference {r.payment.payment_ref}"
        if r.payment
        else f"unpaid: {arg.reason}",
    )


@tells(CANCEL_PAYMENT_ORDER)
def _order_cancelled(arg: OrderInput, r: PaymentOrder) -> TimelineLine:
    return TimelineLine("payments", "Payment order cancelled", f"order {r.order_id}: {arg.reason}")


@tells(RECEIVE_PAYMENT)
def _payment_received(arg: ReceivePaymentInput, r: PaymentReceipt) -> TimelineLine:
    if not r.new and r.amount_fen == 0:  # (the ledger holds no payment of 0 fen)
        return TimelineLine(
            "payment platform",
            "Payment not recorded: no ledger row can hold its amount",
            f"order {arg.order_id}, reference {arg.payment_ref}, {arg.amount_fen} fen; "
            "operations told",
        )
    what = "applied to the fee" if r.applied else f"to refund: {r.reason}"
    return TimelineLine(
        "payment platform",
        f"Payment received: {_yuan(r.amount_fen)}",
        f"order {arg.order_id}, reference {arg.payment_ref}; {what}",
    )


@tells(REFUND_PAYMENT)
def _refunded(arg: RefundInput, r: RefundResult) -> TimelineLine:
    order = f", order {r.order_id}" if r.order_id else ""
    return TimelineLine(
        "payments",
        f"Refunded: {_yuan(r.amount_fen)}",
        f"reference {r.payment_ref}{order}: {arg.reason}",
    )


# ----------------------------------------------------------------------------- the card bureau


@tells(ORDER_CARD_PRODUCTION)
def _production_ordered(arg: ProductionInput, r: ProductionOrder) -> TimelineLine:
    new = f", new card {_card(r.new_card_number)}" if r.new_card_number else ""
    return TimelineLine(
        "card bureau", f"Card production ordered ({arg.mode})", f"order {r.order_id}{new}"
    )


@tells(RECORD_CARD_PRODUCED)
def _card_produced(arg: CardProducedInput, _: Done) -> TimelineLine:
    return TimelineLine("card bureau", "Card produced", f"new card {_card(arg.new_card_number)}")


@tells(RECORD_PRODUCTION_FAILED)
def _production_failed(arg: ProductionFailedInput, _: Done) -> TimelineLine:
    return TimelineLine(
        "card bureau", "Card production failed", f"order {arg.order_id}: {arg.reason}"
    )


@tells(CANCEL_CARD_PRODUCTION)
def _production_cancelled(arg: OrderInput, _: Done) -> TimelineLine:
    return TimelineLine("card bureau", "Card production cancelled", f"order {arg.order_id}")


# ----------------------------------------------------------------------------- notices, audit log


@tells(NOTIFY)
def _notice(arg: NotifyInput, _: Done) -> TimelineLine:
    return TimelineLine(
        "outbox",
        f"Notice to {arg.recipient}: {arg.template}",
        ", ".join(f"{k}={v}" for k, v in arg.params.items()),
    )


@tells(APPEND_AUDIT_EVENT)
def _audit_event(arg: AuditInput, _: Done) -> TimelineLine:
    return TimelineLine(
        arg.actor, f"Recorded: {arg.event_type}", json.dumps(arg.detail, ensure_ascii=False)
    )
