"""The case: what starts it, what it returns, and what the `status` query shows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from reissue.schemas.enums import (
    AwaitingParty,
    Channel,
    DocumentType,
    InsuredCategory,
    Stage,
)
from reissue.schemas.identifiers import (
    CardNumber,
    CreditCode,
    DistrictCode,
    MobileNumber,
    ResidentId,
    now_for_validation,
)
from reissue.schemas.text import PlainText

__all__ = [
    "Affiliation",
    "Applicant",
    "CaseInput",
    "CaseResult",
    "CaseStatus",
    "EmployerUnit",
    "FeeStatus",
    "MaterialCheck",
    "MoneyStatus",
    "NoAffiliation",
    "PersonName",
    "School",
    "StaffId",
    "StageEntry",
]

PersonName = Annotated[
    PlainText,
    Field(
        min_length=1,
        max_length=50,
        pattern=r"^[^<>{}]+$",
        description="Name as on the resident ID card.",
        examples=["张三"],
    ),
]
StaffId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9._-]{2,32}$", description="Staff or system user ID."),
]
OrgName = Annotated[PlainText, Field(min_length=2, max_length=100, pattern=r"^[^<>{}]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Applicant(_Model):
    """The insured person; all three fields are personal data."""

    name: PersonName
    resident_id: ResidentId
    mobile: MobileNumber


class NoAffiliation(_Model):
    kind: Literal["none"] = "none"


class EmployerUnit(_Model):
    kind: Literal["employer"] = "employer"
    name: OrgName
    credit_code: CreditCode


class School(_Model):
    kind: Literal["school"] = "school"
    name: OrgName
    code: Annotated[
        str,
        Field(pattern=r"^[0-9]{10}$", description="10-digit school identification code."),
    ]


def _known_kind(value: object) -> object:
    # Checked before the union: pydantic's own message would repeat the input.
    if isinstance(value, dict) and value.get("kind", "none") not in ("none", "employer", "school"):
        raise ValueError("kind must be 'none', 'employer' or 'school'")
    return value


Affiliation = Annotated[
    NoAffiliation | EmployerUnit | School,
    Field(discriminator="kind"),
    BeforeValidator(_known_kind),
]


# Clocks of the reporting systems and of Temporal differ a little; more is a future time.
CLOCK_SKEW = timedelta(minutes=5)


class CaseInput(_Model):
    """A loss report that opens a reissue case (workflow input).

    The case policy is not part of it: the system of record resolves the policy
    in force when the case opens (a `policy` field is refused).
    """

    applicant: Applicant
    card_number: CardNumber
    insured_category: InsuredCategory
    affiliation: Affiliation = Field(default_factory=NoAffiliation)
    district: DistrictCode
    channel: Channel
    reported_at: AwareDatetime | None = Field(
        default=None,
        description="When the person reported the loss (the liability cut-off); "
        "defaults to the moment the case starts. Never in the future, and never "
        "earlier than the policy's back-dating window (72 hours in CQ-2026.1).",
    )
    policy: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("policy")
    @classmethod
    def _no_policy_from_callers(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "the case policy is not chosen by the caller: the system of record "
                "resolves the policy in force when the case opens"
            )
        return None

    @field_validator("reported_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        # (In a workflow, "now" is the workflow's clock: the case's start on replay too.)
        if value is not None and value > now_for_validation() + CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return value

    @model_validator(mode="after")
    def _student_has_school(self) -> Self:
        if self.insured_category is InsuredCategory.STUDENT and self.affiliation.kind != "school":
            raise ValueError("affiliation: a student must be affiliated with a school")
        return self

    @property
    def affiliated(self) -> bool:
        return self.affiliation.kind != "none"


class CaseResult(_Model):
    """How a case ended."""

    outcome: Stage
    reason: str
    new_card_masked: str | None = None


class StageEntry(_Model):
    stage: Stage
    entered_at: datetime
    note: str = ""


class MaterialCheck(_Model):
    type: DocumentType
    received: bool
    doc_ids: list[str] = Field(
        default_factory=list, description="The counter system's references of the documents."
    )


class FeeStatus(_Model):
    amount_fen: int
    base_fen: int
    exemption: str | None = None
    waived: bool = False
    order_id: str | None = None
    order_status: str | None = None
    payment_ref: str | None = None


class MoneyStatus(_Model):
    """Every payment that reached the case, and where it went (fen)."""

    received_fen: int = 0
    applied_fen: int = 0
    refunded_fen: int = 0
    refund_pending_fen: int = 0


class CaseStatus(_Model):
    """Everything an operator or caller may see about a case (the `status` query)."""

    case_id: str
    stage: Stage
    awaiting: AwaitingParty
    pending_action: str
    deadline: datetime | None
    card_masked: str
    district: str
    insured_category: InsuredCategory
    channel: Channel
    loss_reported_at: datetime
    liability_cutoff: datetime = Field(
        description="Expenses incurred before this moment are borne by the insured "
        "(Chongqing Interim Measures, Art. 28)."
    )
    loss_report_number: str | None
    report_formal: bool
    card_frozen: bool
    bank_frozen: bool
    report_stands_until: datetime | None = Field(
        default=None,
        description="The case ended (cancelled) while its temporary loss report was still "
        "valid: the report stands, the card frozen, until this moment (or until its owner "
        "lifts it by a new case).",
    )
    materials: list[MaterialCheck]
    correction_round: int
    correction_reasons: list[str]
    affiliation_status: str
    fee: FeeStatus | None
    production_order_id: str | None
    failed_production_orders: list[str] = Field(
        default_factory=list, description="Orders the card bureau reported it could not make."
    )
    new_card_masked: str | None
    sla_breached: bool
    assigned_to: str | None = None
    received_by: list[str] = Field(
        default_factory=list,
        description="The clerks who received the accepted materials (none of them may review).",
    )
    claim_expires_at: datetime | None = None
    review_due_at: datetime | None = None
    flags: list[str]
    reminders_sent: dict[str, int]
    anomalies: list[str]
    ignored_events: list[str]
    timeline: list[StageEntry]
    policy_version: str = Field(description="Policy in force ('' until the case has opened).")
    policy_hash: str | None = None
    money: MoneyStatus = Field(default_factory=MoneyStatus)
    closing: Stage | None = Field(
        default=None,
        description="The outcome the case is closing with while it undoes what it must "
        "(or activates the new card); None otherwise.",
    )
    outcome_reason: str | None

    def settled_in(self, stage: Stage) -> bool:
        """In `stage`, and done with what opens it: a case entering AWAITING_PAYMENT waits
        for the system until its order is open at the payment platform (payable)."""
        return self.stage is stage and not (
            stage is Stage.AWAITING_PAYMENT and self.awaiting is AwaitingParty.SYSTEM
        )
