"""The partner API's own bodies and answers (the events' models are the contract's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from reissue.schemas.events import LEDGER_MAX_FEN, PaymentConfirmation

__all__ = ["Accepted", "CodeSent", "PaymentNotice", "PlatformPayment"]


class Accepted(BaseModel):
    """The event was delivered to the case; what it did shows in the case's status."""

    accepted: bool = True


class PlatformPayment(PaymentConfirmation):
    """A payment as the platform's webhook reports it: an amount the ledger can hold."""

    amount_fen: Annotated[
        int,
        Field(
            gt=0,
            le=LEDGER_MAX_FEN,
            description=(
                "The amount paid, in fen: more than 0 and at most the largest amount the "
                f"ledger holds ({LEDGER_MAX_FEN}, PostgreSQL bigint)."
            ),
        ),
    ]


class PaymentNotice(BaseModel):
    """The payment platform's webhook: a payment for one of our payment orders. The order
    decides the case; `case_id` must be that case."""

    model_config = ConfigDict(extra="forbid")
    case_id: Annotated[
        str,
        Field(
            pattern=r"^reissue-[0-9a-f]{16}$",
            description="The case whose order was paid (its workflow ID): the order's own case.",
        ),
    ]
    payment: PlatformPayment


class CodeSent(BaseModel):
    """A one-time code went to the mobile number on record for the card's owner (the
    answer names neither the code nor the number)."""

    sent: bool = True
    expires_at: datetime = Field(description="The code is refused from then on.")
    attempts: int = Field(description="Tries the code takes before it is dead.")
