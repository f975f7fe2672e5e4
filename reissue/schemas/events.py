"""Events other systems send into a case: one model per signal and update, and their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from reissue.schemas.case import StaffId
from reissue.schemas.enums import (
    Channel,
    DocumentType,
    FeeExemption,
    ProductionMode,
    ReviewVerdict,
    Stage,
)
from reissue.schemas.identifiers import CardNumber, ResidentId
from reissue.schemas.reasons import FOR_DECISION, Decision, Reason, known, refuse_unless_for
from reissue.schemas.text import PlainText

__all__ = [
    "LEDGER_MAX_FEN",
    "AffiliationOverride",
    "AffiliationResponse",
    "CancelReason",
    "CancelRequest",
    "CardCollected",
    "CardFound",
    "CardProduced",
    "ClaimState",
    "EventAck",
    "LatePayment",
    "MaterialRef",
    "MaterialsAccepted",
    "MaterialsSubmission",
    "Note",
    "PaymentConfirmation",
    "ProductionFailed",
    "ProductionReorder",
    "ReportFormalisation",
    "ReviewClaim",
    "ReviewDecision",
    "ReviewOutcome",
    "ReviewRelease",
]

Why = Annotated[PlainText, Field(min_length=2, max_length=500)]
NOTE_MAX = 500
Note = Annotated[
    PlainText,
    Field(
        max_length=NOTE_MAX,
        description="Internal note for the staff (the timeline shows it, masked); "
        "never sent to the applicant, whose notice gives the reasons' catalogue text.",
    ),
]
OrderId = Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9A-Z-]{4,40}$")]


def _reading_history() -> bool:
    """Whether a workflow is replaying its history: only then may an event recorded
    before the reasons catalogue be read in its old shape. A new event, wherever it
    comes from (the API, the console, the client, a raw update), gives codes."""
    return workflow.in_workflow() and workflow.unsafe.is_replaying()


def _legacy_note(note: Any, texts: list[str]) -> str:
    said = "; ".join([*([note] if isinstance(note, str) and note else []), *texts])
    return said if len(said) <= NOTE_MAX else said[: NOTE_MAX - 1] + "…"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class MaterialRef(_Event):
    """A reference to a scanned document kept by the counter system (never the image)."""

    doc_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    type: DocumentType
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    pages: Annotated[int, Field(ge=1, le=50)] = 1
    photo_width_px: Annotated[int, Field(ge=1, le=20000)] | None = None
    photo_height_px: Annotated[int, Field(ge=1, le=20000)] | None = None

    @model_validator(mode="after")
    def _photo_has_size(self) -> Self:
        if self.type is DocumentType.PHOTO and (
            self.photo_width_px is None or self.photo_height_px is None
        ):
            raise ValueError("photo_width_px and photo_height_px are required for a photo")
        return self


class MaterialsSubmission(_Event):
    """The application and its materials, handed in at a counter (update `submit_materials`)."""

    documents: Annotated[list[MaterialRef], Field(min_length=1, max_length=20)]
    loss_proof_number: Annotated[str, Field(pattern=r"^LR[0-9]{8,20}$")]
    received_by: StaffId
    production_mode: ProductionMode = ProductionMode.STANDARD
    fee_exemption: FeeExemption | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [d.doc_id for d in self.documents]
        if len(ids) != len(set(ids)):
            raise ValueError("documents: each doc_id may appear only once")
        if self.fee_exemption is not None and not any(
            d.type is DocumentType.EXEMPTION_PROOF for d in self.documents
        ):
            raise ValueError("documents: a fee exemption needs an exemption_proof document")
        return self


class MaterialsAccepted(_Event):
    round: int
    stage: Stage
    report_formal: bool


class ReportFormalisation(_Event):
    """The person came to a counter with their ID: the loss report becomes formal
    (update `make_report_formal`), before or without the full application."""

    resident_id: Annotated[
        ResidentId,
        Field(
            description="The ID number on the ID card the clerk checked; must be the applicant's."
        ),
    ]
    received_by: StaffId
    note: Annotated[PlainText, Field(max_length=500)] = ""


class AffiliationResponse(_Event):
    """The employer unit's or school's answer (signal `affiliation_response`)."""

    confirmed: bool
    responder: StaffId
    reference: Annotated[PlainText, Field(max_length=64)] | None = None
    reason: Why | None = None

    @model_validator(mode="after")
    def _denial_has_reason(self) -> Self:
        if not self.confirmed and self.reason is None:
            raise ValueError("reason: a denial must give a reason")
        return self


class AffiliationOverride(_Event):
    """Staff accept the unit's paper letter after escalation (update `override_affiliation`)."""

    staff_id: StaffId
    letter: MaterialRef
    note: Why

    @model_validator(mode="after")
    def _is_letter(self) -> Self:
        if self.letter.type is not DocumentType.AFFILIATION_LETTER:
            raise ValueError("letter: must be an affiliation_letter document")
        return self


class ReviewDecision(_Event):
    """A reviewer's decision on the materials (update `review`): a correction request or
    a rejection gives reasons from the catalogue (`reasons.CORRECTION`,
    `reasons.REJECTION`), whose Chinese text the applicant's notice carries; `note` is
    for the staff only."""

    reviewer: StaffId
    verdict: ReviewVerdict
    reasons: Annotated[
        list[Reason],
        Field(
            max_length=20,
            description="Codes of the reasons catalogue, none for approve; for "
            "request_correction: " + ", ".join(FOR_DECISION[Decision.CORRECTION]) + "; for "
            "reject: " + ", ".join(FOR_DECISION[Decision.REJECTION]),
        ),
    ] = Field(default_factory=list)
    note: Note = ""
    waive_fee: bool = False
    waiver_reason: Why | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_history(cls, data: Any) -> Any:
        """A decision recorded before the catalogue (1.0.0) gave free-text reasons: read
        from history, its codes stay, the text becomes "other" and the note."""
        if not (_reading_history() and isinstance(data, dict)):
            return data
        given = data.get("reasons")
        if not isinstance(given, list) or all(known(r) for r in given):
            return data
        texts = [str(r) for r in given if not known(r)]
        codes = [r for r in given if known(r)]
        if data.get("verdict") != ReviewVerdict.APPROVE.value:
            codes.append(Reason.OTHER.value)
        return data | {"reasons": codes, "note": _legacy_note(data.get("note"), texts)}

    @model_validator(mode="after")
    def _reasons(self) -> Self:
        if self.verdict is ReviewVerdict.APPROVE and self.reasons:
            raise ValueError("reasons: an approval gives no reasons (put remarks in note)")
        if self.verdict is not ReviewVerdict.APPROVE and not self.reasons:
            raise ValueError(f"reasons: required when the verdict is {self.verdict.value}")
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError("reasons: each reason may be given only once")
        if self.verdict is ReviewVerdict.REQUEST_CORRECTION:
            refuse_unless_for(Decision.CORRECTION, "reasons", self.reasons)
        elif self.verdict is ReviewVerdict.REJECT:
            refuse_unless_for(Decision.REJECTION, "reasons", self.reasons)
        if self.waive_fee and self.waiver_reason is None:
            raise ValueError("waiver_reason: required when waive_fee is true")
        if self.waive_fee and self.verdict is not ReviewVerdict.APPROVE:
            raise ValueError("waive_fee: only an approval can waive the fee")
        return self


class ReviewOutcome(_Event):
    verdict: ReviewVerdict
    correction_round: int
    stage: Stage


class ReviewClaim(_Event):
    """A reviewer takes a case from the review queue (update `claim_review`)."""

    reviewer: StaffId


class ReviewRelease(_Event):
    """A supervisor puts a claimed case back in the queue (update `release_review`)."""

    supervisor: StaffId
    reason: Why
    held_by: StaffId | None = Field(
        default=None,
        description="Who the caller saw holding the claim; if given and the claim has "
        "changed hands since, the release is refused.",
    )


class ClaimState(_Event):
    """Who holds a case's review, until when, and when the review is due."""

    assigned_to: str | None
    claim_expires_at: datetime | None
    review_due_at: datetime | None


# The largest amount the ledger holds (PostgreSQL `bigint`, fen): every real payment is
# far below it. The partner API refuses more (and 0); a payment that reaches a case some
# other way above it is refused by the ledger and shown to operations, never retried.
LEDGER_MAX_FEN = 2**63 - 1


class PaymentConfirmation(_Event):
    """The payment platform's confirmation (signal `payment_confirmed`)."""

    order_id: OrderId
    amount_fen: Annotated[int, Field(ge=0)]
    payment_ref: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{4,64}$")]
    paid_at: AwareDatetime


class LatePayment(_Event):
    """A payment that reached a case after it had closed (workflow `LatePaymentWorkflow`):
    it is recorded in the ledger and refunded."""

    case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]
    payment: PaymentConfirmation


class CardProduced(_Event):
    """The card bureau's report that the new card exists (signal `card_produced`)."""

    order_id: OrderId
    new_card_number: CardNumber
    produced_at: AwareDatetime
    card_id_code: Annotated[str, Field(pattern=r"^[0-9A-Z]{32}$")] | None = Field(
        default=None,
        description="The card identification code (识别码, 32 characters) written on the chip.",
    )


class ProductionFailed(_Event):
    """The card bureau's report that it could not make the card (signal `production_failed`)."""

    order_id: OrderId
    reason: Annotated[PlainText, Field(min_length=2, max_length=200)]
    failed_at: AwareDatetime


class ProductionReorder(_Event):
    """A supervisor orders the card again after the bureau failed as often as the
    policy allows (update `reorder_card`)."""

    supervisor: StaffId
    reason: Why


class CardCollected(_Event):
    """The counter hands the new card over (signal `card_collected`)."""

    new_card_number: CardNumber
    handed_over_by: StaffId


class CardFound(_Event):
    """The person found the old card and wants the report lifted (update `card_found`)."""

    channel: Channel
    note: Annotated[PlainText, Field(max_length=500)] = ""


def _for_cancellation(reason: Reason) -> Reason:
    refuse_unless_for(Decision.CANCELLATION, "reason", [reason])
    return reason


CancelReason = Annotated[
    Reason,
    AfterValidator(_for_cancellation),
    Field(
        description="A code of the reasons catalogue for a cancellation by operations: "
        + ", ".join(FOR_DECISION[Decision.CANCELLATION])
    ),
]


class CancelRequest(_Event):
    """Operations cancel a case (update `cancel`), for a reason of the catalogue
    (`reasons.CANCELLATION`), whose Chinese text the applicant's notice carries; `note`
    is for the staff only."""

    operator: StaffId
    reason: CancelReason
    note: Note = ""

    @model_validator(mode="before")
    @classmethod
    def _from_history(cls, data: Any) -> Any:
        """A cancellation recorded before the catalogue (1.0.0) gave a free-text reason:
        read from history, it is "other", the text the note."""
        if not (_reading_history() and isinstance(data, dict)):
            return data
        given = data.get("reason")
        if known(given) or not isinstance(given, str):
            return data
        return data | {
            "reason": Reason.OTHER.value,
            "note": _legacy_note(data.get("note"), [given]),
        }


class EventAck(_Event):
    """Answer to an update that changes the case's course."""

    stage: Stage
    at: datetime
