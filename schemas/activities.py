"""One input and one result model per activity.

Every input carries the case ID and a step name; together they are the
activity's idempotency key, so a retried or duplicated activity finds its own
earlier write instead of writing again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.enums import (
    Channel,
    DocumentType,
    FeeExemption,
    InsuredCategory,
    ProductionMode,
    Recipient,
    ReviewVerdict,
)
from schemas.events import MaterialRef

__all__ = [
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
    "NotifyInput",
    "OrderInput",
    "PaymentOrder",
    "PrecheckInput",
    "PrecheckResult",
    "ProductionInput",
    "ProductionOrder",
    "RecordPaymentInput",
    "RegisterLossInput",
    "RegisterLossResult",
    "ReviewRecordInput",
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
    card_number: str
    resident_id: str
    channel: Channel
    district: str
    reported_at: datetime


class RegisterLossResult(BaseModel):
    report_number: str
    account_id: str
    reported_at: datetime
    formal: bool


class FreezeInput(CaseStep):
    card_number: str
    report_number: str


class FreezeResult(BaseModel):
    card_number: str
    status: str
    changed: bool


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


class RecordPaymentInput(CaseStep):
    order_id: str
    amount_fen: int
    payment_ref: str
    paid_at: datetime


class PaymentOrder(BaseModel):
    order_id: str
    amount_fen: int
    status: str
    payment_ref: str | None = None


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
    card_number: str
    report_number: str
    reason: str


class NotifyInput(CaseStep):
    recipient: Recipient
    recipient_ref: str
    template: str
    params: dict[str, str]


class AuditInput(CaseStep):
    event_type: str
    actor: str
    detail: dict[str, Any]
