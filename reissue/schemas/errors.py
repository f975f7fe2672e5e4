"""Typed failures: every error type a case, its activities or its callers match on.

The workflow and its callers match on these names, never on message text. Messages
name the field and the rule and never carry personal data (failure messages are
stored in Temporal unencrypted).
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

__all__ = [
    "ALREADY_DECIDED",
    "BANK_UNAVAILABLE",
    "BUSY",
    "CARD_ALREADY_REPORTED",
    "CARD_NOT_ACTIVE",
    "CARD_NOT_FOUND",
    "CARD_NUMBER_CONFLICT",
    "CARD_OWNER_MISMATCH",
    "CASE_ENDING",
    "CASE_ID_MISMATCH",
    "FEE_SCHEDULE_UNKNOWN",
    "INVALID_CASE_INPUT",
    "MATERIALS_INCOMPLETE",
    "NO_POLICY_IN_FORCE",
    "ORDER_STATE",
    "PARTNER_REFUSED",
    "PARTNER_UNAVAILABLE",
    "PAYMENT_MISMATCH",
    "PLAINTEXT_PAYLOAD",
    "REGISTRATION_REFUSALS",
    "REPORT_FORMAL",
    "WRONG_STAGE",
    "business_error",
]

# The case cannot open: nothing was written, the workflow fails with one of these.
INVALID_CASE_INPUT = "InvalidCaseInput"
PLAINTEXT_PAYLOAD = "PlaintextPayload"
CASE_ID_MISMATCH = "CaseIdMismatch"
CARD_ALREADY_REPORTED = "CardAlreadyReported"
CARD_NOT_FOUND = "CardNotFound"
CARD_OWNER_MISMATCH = "CardOwnerMismatch"
CARD_NOT_ACTIVE = "CardNotActive"
REGISTRATION_REFUSALS = frozenset(
    {
        INVALID_CASE_INPUT,
        CASE_ID_MISMATCH,
        CARD_ALREADY_REPORTED,
        CARD_NOT_FOUND,
        CARD_OWNER_MISMATCH,
        CARD_NOT_ACTIVE,
    }
)

# Business failures of single steps.
CARD_NUMBER_CONFLICT = "CardNumberConflict"
FEE_SCHEDULE_UNKNOWN = "FeeScheduleUnknown"
PARTNER_REFUSED = "PartnerRefused"  # a partner system refused the call itself (4xx)
PAYMENT_MISMATCH = "PaymentMismatch"
ORDER_STATE = "OrderStateConflict"

# An event the case refuses (its update fails with one of these; the case goes on).
BUSY = "Busy"
MATERIALS_INCOMPLETE = "MaterialsIncomplete"
CASE_ENDING = "CaseEnding"
WRONG_STAGE = "WrongStage"
ALREADY_DECIDED = "AlreadyDecided"
REPORT_FORMAL = "ReportFormal"

# Retryable: operations fix these, the step then goes through.
BANK_UNAVAILABLE = "BankUnavailable"
PARTNER_UNAVAILABLE = "PartnerUnavailable"  # a partner system is down, slow or unanswered
NO_POLICY_IN_FORCE = "NoPolicyInForce"


def business_error(type_: str, message: str) -> ApplicationError:
    """A failure that retrying cannot fix."""
    return ApplicationError(message, type=type_, non_retryable=True)
