"""Typed business failures; the workflow matches on the type, never on message text."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

__all__ = [
    "BANK_UNAVAILABLE",
    "CARD_NOT_ACTIVE",
    "CARD_NOT_FOUND",
    "CARD_NUMBER_CONFLICT",
    "CARD_OWNER_MISMATCH",
    "FEE_SCHEDULE_UNKNOWN",
    "ORDER_STATE",
    "PAYMENT_MISMATCH",
    "business_error",
]

CARD_NOT_FOUND = "CardNotFound"
CARD_OWNER_MISMATCH = "CardOwnerMismatch"
CARD_NOT_ACTIVE = "CardNotActive"
CARD_NUMBER_CONFLICT = "CardNumberConflict"
FEE_SCHEDULE_UNKNOWN = "FeeScheduleUnknown"
PAYMENT_MISMATCH = "PaymentMismatch"
ORDER_STATE = "OrderStateConflict"
BANK_UNAVAILABLE = "BankUnavailable"


def business_error(type_: str, message: str) -> ApplicationError:
    """A failure that retrying cannot fix."""
    return ApplicationError(message, type=type_, non_retryable=True)
