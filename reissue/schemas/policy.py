"""The versioned case policy: every duration, limit and fee rule a case is judged by."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reissue.schemas.enums import DocumentType, InsuredCategory
from reissue.schemas.text import PlainText

__all__ = ["CasePolicy"]

PositiveDuration = Annotated[timedelta, Field(gt=timedelta(0))]
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,32}")

_BASE_MATERIALS = [
    DocumentType.ID_CARD_COPY,
    DocumentType.PHOTO,
    DocumentType.LOSS_REPORT_PROOF,
    DocumentType.APPLICATION_FORM,
]


def _default_materials() -> dict[InsuredCategory, list[DocumentType]]:
    return {
        InsuredCategory.URBAN_EMPLOYEE: list(_BASE_MATERIALS),
        InsuredCategory.URBAN_RURAL_RESIDENT: list(_BASE_MATERIALS),
        InsuredCategory.STUDENT: [*_BASE_MATERIALS, DocumentType.STUDENT_ID],
        InsuredCategory.RETIREE: list(_BASE_MATERIALS),
    }


class CasePolicy(BaseModel):
    """Rules a case is judged by: the version in force when it opened.

    Policies live in the `case_policies` table (see `reissue policy`); a case
    resolves the one in force for its district when it opens and records it in
    its history, so no caller chooses it. Practice varies between cities and
    changes over time, so every figure that public sources do not fix is here
    rather than in code. The defaults are the values of CQ-2026.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    version: PlainText = Field(
        default="CQ-2026.1",
        min_length=1,
        max_length=32,
        description="Letters, digits, dot, hyphen, underscore (the policy table's key).",
    )
    temporary_report_validity: PositiveDuration = Field(
        default=timedelta(days=7),
        description="How long a phone/online report stays in force unless made formal.",
    )
    materials_reminder_interval: PositiveDuration = timedelta(days=2)
    max_materials_reminders: int = Field(default=3, ge=0, le=20)
    formal_materials_deadline: PositiveDuration = Field(
        default=timedelta(days=30),
        description="After a formal (counter) report, time to hand in the application.",
    )
    resubmission_deadline: PositiveDuration = Field(
        default=timedelta(days=15),
        description="After a correction request, time to resubmit before the case lapses.",
    )
    require_affiliation_confirmation: bool = True
    affiliation_reminder_interval: PositiveDuration = timedelta(days=3)
    affiliation_reminders_before_escalation: int = Field(default=2, ge=0, le=10)
    review_sla: PositiveDuration = timedelta(days=5)
    review_claim_ttl: PositiveDuration = Field(
        default=timedelta(hours=4),
        description="A reviewer's claim on a case lapses after this, back to the queue.",
    )
    max_correction_rounds: int = Field(default=2, ge=0, le=10)
    fee_schedule: PlainText = Field(
        default="CQ-2006",
        min_length=1,
        max_length=32,
        description="Fee schedule (table fee_schedule) used to assess the reissue fee.",
    )
    payment_reminder_after: PositiveDuration = timedelta(days=3)
    payment_deadline: PositiveDuration = timedelta(days=7)
    payment_final_reminder_before: PositiveDuration = Field(
        default=timedelta(days=1),
        description="A last payment reminder this long before the deadline.",
    )
    production_overdue_after: PositiveDuration = Field(
        default=timedelta(days=30), description="Standard production: escalate after this."
    )
    max_production_reorders: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Standard production: orders placed again after the bureau reports a"
        " failure, before a supervisor must decide.",
    )
    pickup_reminder_interval: PositiveDuration = timedelta(days=7)
    max_pickup_reminders: int = Field(default=3, ge=0, le=20)
    photo_min_width_px: int = Field(default=295, ge=1, description="One-inch photo at 300 dpi.")
    photo_min_height_px: int = Field(default=413, ge=1)
    backdating_window: PositiveDuration = Field(
        default=timedelta(hours=72),
        description="How far before the case opens a reported loss time may lie "
        "(the liability cut-off, Art. 28); earlier times are refused.",
    )
    required_materials: dict[InsuredCategory, list[DocumentType]] = Field(
        default_factory=_default_materials
    )

    @field_validator("version")
    @classmethod
    def _version_is_a_key(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("may only contain letters, digits, '.', '-' and '_'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.payment_reminder_after >= self.payment_deadline:
            raise ValueError("payment_reminder_after must be shorter than payment_deadline")
        missing = set(InsuredCategory) - set(self.required_materials)
        if missing:
            raise ValueError(
                "required_materials must list every insured category; missing: "
                + ", ".join(sorted(missing))
            )
        return self

    def materials_for(self, category: InsuredCategory) -> list[DocumentType]:
        return self.required_materials[category]
