"""One input and one result model per activity.

Every input carries the case ID and a step name; together they are the
activity's idempotency key, so a retried or duplicated activity finds its own
earlier write instead of writing again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from reissue.schemas.enums import (
    Channel,
    DocumentType,
    FeeExemption,
    InsuredCategory,
    ProductionMode,
    Recipient,
    ReviewVerdict,
)
from reissue.schemas.events import LEDGER_MAX_FEN, MaterialRef, PaymentConfirmation
from reissue.schemas.policy import CasePolicy
from reissue.schemas.precheck import precheck_problems

__all__ = [
    "OWNER_LIFTS",
    "ActivateCardInput",
    "ActivateCardResult",
    "AffiliationRequestInput",
    "AssessFeeInput",
    "AuditInput",
    "CardProducedInput",
    "CaseStep",
    "CreatePaymentInput",
    "Done",
    "FeeAssessment",
    "FormaliseInput",
    "FreezeInput",
    "FreezeResult",
    "LiftLossInput",
    "LiftResult",
    "LocalRun",
    "NotifyInput",
    "OrderInput",
    "PaymentAtPlatform",
    "PaymentOrder",
    "PaymentReceipt",
    "PrecheckInput",
    "PrecheckResult",
    "ProductionFailedInput",
    "ProductionInput",
    "ProductionOrder",
    "ReceivePaymentInput",
    "RefundInput",
    "RefundResult",
    "RegisterLossInput",
    "RegisterLossResult",
    "ReviewRecordInput",
    "VoidCardInput",
]


class CaseStep(BaseModel):
    """Base of every activity input: which case, which step, at what (workflow) time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    step: str
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.case_id}:{self.step}"


class Done(BaseModel):
    """Result of an activity whose only answer is whether it changed anything."""

    changed: bool


class RegisterLossInput(CaseStep):
    """Open the case in the registry: the system of record checks what the caller said.

    `reported_at` is the time the caller gave (or None); `opened_at` is when the
    case started.
    """

    card_number: str
    resident_id: str
    channel: Channel
    district: str
    reported_at: datetime | None
    opened_at: datetime


class RegisterLossResult(BaseModel):
    """What the registry decided: the report, the liability cut-off, the policy in force."""

    report_number: str
    account_id: str
    reported_at: datetime
    formal: bool
    policy: CasePolicy
    policy_hash: str


class FreezeInput(CaseStep):
    card_number: str
    report_number: str


class FreezeResult(BaseModel):
    card_number: str
    status: str
    changed: bool


class MoveBankAccountInput(CaseStep):
    old_card_number: str
    new_card_number: str


class BankAccountMove(BaseModel):
    """What the bank did: `migrated` the old card's account to the new card, `opened` a
    new one on the same medical insurance account, found it `exists`, or `none` (the
    old card was not a third-generation card); and the old card's account after."""

    mode: str
    old_account: str


class FormaliseInput(CaseStep):
    report_number: str


class AffiliationRequestInput(CaseStep):
    kind: str
    org_code: str
    org_name: str
    district: str


class PrecheckInput(CaseStep):
    round: int
    category: InsuredCategory
    resident_id: str
    report_number: str
    loss_proof_number: str
    documents: list[MaterialRef]
    required: list[DocumentType]
    photo_min_width_px: int
    photo_min_height_px: int
    fee_exemption: FeeExemption | None

    def problems(self) -> list[str]:
        """Everything wrong with the submission (`precheck_problems`), as the activity
        checks it."""
        return precheck_problems(
            documents=self.documents,
            required=self.required,
            loss_proof_number=self.loss_proof_number,
            report_number=self.report_number,
            resident_id=self.resident_id,
            photo_min_width_px=self.photo_min_width_px,
            photo_min_height_px=self.photo_min_height_px,
            fee_exemption=self.fee_exemption,
        )


class PrecheckResult(BaseModel):
    passed: bool
    problems: list[str]


class ReviewRecordInput(CaseStep):
    round: int
    reviewer: str
    verdict: ReviewVerdict
    reasons: list[str]
    waive_fee: bool
    waiver_reason: str | None


class AssessFeeInput(CaseStep):
    schedule: str
    account_id: str
    exemption: FeeExemption | None
    waived: bool
    waiver_reason: str | None


class FeeAssessment(BaseModel):
    amount_fen: int
    base_fen: int
    exemption: FeeExemption | None
    waived: bool


class CreatePaymentInput(CaseStep):
    amount_fen: int
    due_at: datetime


class OrderInput(CaseStep):
    """Act on one payment or production order (cancel, refund)."""

    order_id: str
    reason: str


class ProductionInput(CaseStep):
    account_id: str
    old_card_number: str
    mode: ProductionMode
    district: str


class ProductionOrder(BaseModel):
    order_id: str
    mode: ProductionMode
    status: str
    new_card_number: str | None


class CardProducedInput(CaseStep):
    order_id: str
    account_id: str
    new_card_number: str
    produced_at: datetime
    card_id_code: str | None = None


class ProductionFailedInput(CaseStep):
    order_id: str
    reason: str
    failed_at: datetime


class ActivateCardInput(CaseStep):
    old_card_number: str
    new_card_number: str
    report_number: str


class ActivateCardResult(BaseModel):
    account_id: str
    new_card_number: str
    balance_fen: int
    changed: bool


class LiftLossInput(CaseStep):
    """Lift a temporary report; `LiftResult` tells whether anything was lifted, or left
    standing. `reason` is the case's outcome in lower case."""

    card_number: str
    report_number: str
    reason: str


# The outcomes at which the owner's report is lifted at once: they proved they found
# the card, or its validity ran out. Any other end leaves a valid temporary report
# standing (the card is still lost).
OWNER_LIFTS: frozenset[str] = frozenset({"withdrawn", "lapsed"})


class LiftResult(Done):
    """`changed`: the report was lifted, or left standing until `standing_until` (the
    card still frozen, the registry lifts it itself then)."""

    standing_until: datetime | None = None


class VoidCardInput(CaseStep):
    """The case ends without a new card after the report became formal: the old card is void."""

    card_number: str
    report_number: str
    reason: str


class PaymentOrder(BaseModel):
    order_id: str
    amount_fen: int
    status: str
    payment_ref: str | None = None
    # The payment platform's own reference of the order, once it is open there.
    platform_ref: str | None = None


class PaymentAtPlatform(BaseModel):
    """What the payment platform says of an order: still `open`, `closed` (it can no
    longer be paid) or `paid`, with the payment, whose webhook may not have arrived."""

    order_id: str
    status: str
    payment: PaymentConfirmation | None = None


class ReceivePaymentInput(CaseStep):
    """A payment that reached the case: into the ledger, applied to the fee or to be refunded.

    The case decides `apply`; the ledger still refunds a payment it cannot apply
    (the order is no longer open, or it is another's).
    """

    order_id: str
    amount_fen: int
    payment_ref: str
    paid_at: datetime
    apply: bool
    reason: str | None = None


class PaymentReceipt(BaseModel):
    """A payment as the ledger holds it; `new` is False when the ledger already had its
    reference (from another case): then the fields are the ledger's, not the caller's;
    or when no ledger row can hold it (0 fen, or above `LEDGER_MAX_FEN`): then it is
    not recorded (0 fen, no order, `reason` says why) and operations are told."""

    payment_ref: str
    amount_fen: int
    order_id: str | None = None
    applied: bool
    reason: str | None = None
    order: PaymentOrder | None = None
    new: bool = True

    @classmethod
    def not_recorded(cls, payment_ref: str) -> PaymentReceipt:
        """The answer for a payment no ledger row can hold."""
        return cls(
            payment_ref=payment_ref,
            amount_fen=0,
            applied=False,
            reason=f"amount_fen: must be more than 0 and at most {LEDGER_MAX_FEN}; not recorded",
            new=False,
        )

    @property
    def unrecorded(self) -> bool:
        """The ledger could not hold the payment at all (`not_recorded`)."""
        return self.order_id is None and self.amount_fen == 0 and bool(self.reason)


class RefundInput(CaseStep):
    """Refund one payment through the payment platform, by its reference."""

    payment_ref: str
    reason: str


class RefundResult(BaseModel):
    """The refund; for a payment that paid the fee also its order, now refunded."""

    refund_id: str
    payment_ref: str
    amount_fen: int
    status: str
    order_id: str | None = None


class NotifyInput(CaseStep):
    recipient: Recipient
    recipient_ref: str
    template: str
    params: dict[str, str]


class AuditInput(CaseStep):
    event_type: str
    actor: str
    detail: dict[str, Any]


# ----------------------------------------------------------------------------- the activities

In = TypeVar("In", bound=CaseStep)
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class ActivityDef(Generic[In, Out]):
    """An activity as both sides know it: its name, its input and its result.

    The workflow calls it through this (`CardReissueWorkflow._act`) and the activity
    is defined with it (`reissue.activities.db.idempotent`), so mypy checks that both
    agree on every call, and each name is written once.
    """

    name: str
    arg: type[In]
    result: type[Out]
    # Calls a partner system, which may be slow or down for hours: retried with a
    # longer backoff, and heartbeating (`reissue.activities.db.partner_step`).
    partner: bool = False
    # False: a case's timeline (`reissue audit`) does not show the step. Every other
    # activity says there what it did, in `reissue.schemas.timeline` (a test holds both
    # to it).
    on_timeline: bool = True

    @property
    def local_name(self) -> str:
        """The name it runs under as a local activity (`LocalRun`); partner calls never do."""
        assert not self.partner, f"{self.name} calls a partner: never a local activity"
        return f"{self.name}.local"


class LocalRun(BaseModel):
    """What a step run as a local activity returns, so that the history's marker keeps
    its input as well as its result, as a scheduled and a completed activity event do:
    auditors read both (`reissue audit`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arg: dict[str, Any]
    result: dict[str, Any]


@cache
def definitions() -> Mapping[str, ActivityDef[Any, Any]]:
    """Every activity defined in this module, by name: the one registry of them, where
    a name read from a history is looked up. Where two definitions share a name (an
    older reading of the same activity), the first stands for it."""
    found: dict[str, ActivityDef[Any, Any]] = {}
    for value in list(globals().values()):
        if isinstance(value, ActivityDef):
            found.setdefault(value.name, value)
    return MappingProxyType(found)


REGISTER_LOSS = ActivityDef("register_loss", RegisterLossInput, RegisterLossResult)
FREEZE_CARD = ActivityDef("freeze_card", FreezeInput, FreezeResult)
FORMALISE_LOSS_REPORT = ActivityDef("formalise_loss_report", FormaliseInput, Done)
LIFT_LOSS_REPORT = ActivityDef("lift_loss_report", LiftLossInput, LiftResult)
VOID_OLD_CARD = ActivityDef("void_old_card", VoidCardInput, Done)
ORDER_CARD_PRODUCTION = ActivityDef(
    "order_card_production", ProductionInput, ProductionOrder, partner=True
)
RECORD_CARD_PRODUCED = ActivityDef("record_card_produced", CardProducedInput, Done)
CANCEL_CARD_PRODUCTION = ActivityDef("cancel_card_production", OrderInput, Done, partner=True)
RECORD_PRODUCTION_FAILED = ActivityDef("record_production_failed", ProductionFailedInput, Done)
ACTIVATE_NEW_CARD = ActivityDef("activate_new_card", ActivateCardInput, ActivateCardResult)
FREEZE_BANK_ACCOUNT = ActivityDef("freeze_bank_account", FreezeInput, FreezeResult, partner=True)
UNFREEZE_BANK_ACCOUNT = ActivityDef(
    "unfreeze_bank_account", FreezeInput, FreezeResult, partner=True
)
# The bank's side of activating the new card, which the timeline shows (ACTIVATE_NEW_CARD).
MOVE_BANK_ACCOUNT = ActivityDef(
    "move_bank_account", MoveBankAccountInput, BankAccountMove, partner=True, on_timeline=False
)
ASSESS_FEE = ActivityDef("assess_fee", AssessFeeInput, FeeAssessment)
RECEIVE_PAYMENT = ActivityDef("receive_payment", ReceivePaymentInput, PaymentReceipt)
CANCEL_PAYMENT_ORDER = ActivityDef("cancel_payment_order", OrderInput, PaymentOrder)
# The payment order is opened at the payment platform, where the payer pays it, and
# closed there before the case gives up on it.
OPEN_PAYMENT_ORDER = ActivityDef(
    "open_payment_order", CreatePaymentInput, PaymentOrder, partner=True
)
CLOSE_PAYMENT_ORDER = ActivityDef(
    "close_payment_order", OrderInput, PaymentAtPlatform, partner=True
)
REFUND_PAYMENT = ActivityDef("refund_payment", RefundInput, RefundResult, partner=True)
REQUEST_AFFILIATION_CONFIRMATION = ActivityDef(
    "request_affiliation_confirmation", AffiliationRequestInput, Done
)
PRECHECK_MATERIALS = ActivityDef("precheck_materials", PrecheckInput, PrecheckResult)
RECORD_REVIEW_DECISION = ActivityDef("record_review_decision", ReviewRecordInput, Done)
NOTIFY = ActivityDef("notify", NotifyInput, Done)
APPEND_AUDIT_EVENT = ActivityDef("append_audit_event", AuditInput, Done)
