"""Enumerations shared by the case workflow, its activities and its clients."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AffiliationKind",
    "AwaitingParty",
    "CaseFlag",
    "Channel",
    "DocumentType",
    "FeeExemption",
    "InsuredCategory",
    "ProductionMode",
    "Recipient",
    "ReviewVerdict",
    "Stage",
]


class Stage(StrEnum):
    """Where a case is; the last five are terminal."""

    LOSS_REPORTED = "LOSS_REPORTED"
    AWAITING_MATERIALS = "AWAITING_MATERIALS"
    AWAITING_AFFILIATION = "AWAITING_AFFILIATION"
    UNDER_REVIEW = "UNDER_REVIEW"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    CARD_PRODUCTION = "CARD_PRODUCTION"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    COMPLETED = "COMPLETED"
    WITHDRAWN = "WITHDRAWN"
    REJECTED = "REJECTED"
    LAPSED = "LAPSED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {Stage.COMPLETED, Stage.WITHDRAWN, Stage.REJECTED, Stage.LAPSED, Stage.CANCELLED}
)


class AwaitingParty(StrEnum):
    """Who the case is waiting for (the `AwaitingParty` search attribute)."""

    APPLICANT = "applicant"
    UNIT = "unit"
    STAFF = "staff"
    PAYMENT = "payment"
    BUREAU = "bureau"
    SYSTEM = "system"
    NONE = "none"


class CaseFlag(StrEnum):
    """Something about a case that operations should see (`status.flags`)."""

    AFFILIATION_ESCALATED = "affiliation_escalated"
    AFFILIATION_DENIED = "affiliation_denied"
    PRODUCTION_OVERDUE = "production_overdue"
    PRODUCTION_FAILED = "production_failed"
    PAYMENT_CONFLICT = "payment_conflict"


class InsuredCategory(StrEnum):
    URBAN_EMPLOYEE = "urban_employee"
    URBAN_RURAL_RESIDENT = "urban_rural_resident"
    STUDENT = "student"
    RETIREE = "retiree"


class Channel(StrEnum):
    """How the loss was reported; only a counter report is formal from the start."""

    HOTLINE_12333 = "hotline_12333"
    HOTLINE_12393 = "hotline_12393"
    ONLINE = "online"
    COUNTER = "counter"

    @property
    def formal(self) -> bool:
        return self is Channel.COUNTER


class AffiliationKind(StrEnum):
    NONE = "none"
    EMPLOYER = "employer"
    SCHOOL = "school"


class DocumentType(StrEnum):
    """Kinds of scanned document the counter system keeps for a case."""

    ID_CARD_COPY = "id_card_copy"
    PHOTO = "photo"
    LOSS_REPORT_PROOF = "loss_report_proof"
    APPLICATION_FORM = "application_form"
    STUDENT_ID = "student_id"
    EXEMPTION_PROOF = "exemption_proof"
    AFFILIATION_LETTER = "affiliation_letter"


class ReviewVerdict(StrEnum):
    APPROVE = "approve"
    REQUEST_CORRECTION = "request_correction"
    REJECT = "reject"


class FeeExemption(StrEnum):
    """Grounds on which the fee schedule waives the reissue fee."""

    MINIMUM_LIVING_ALLOWANCE = "minimum_living_allowance"
    SPECIAL_CARE = "special_care"


class ProductionMode(StrEnum):
    INSTANT = "instant"
    STANDARD = "standard"


class Recipient(StrEnum):
    APPLICANT = "applicant"
    UNIT = "unit"
    SUPERVISOR = "supervisor"
