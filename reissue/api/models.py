"""The partner API's own bodies and answers (the events' models are the contract's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from reissue.schemas.events import PaymentConfirmation

__all__ = ["Accepted", "CodeSent", "PaymentNotice"]


class Accepted(BaseModel):
    """The event was delivered to the case; what it did shows in the case's status."""

    accepted: bool = True


class PaymentNotice(BaseModel):
    """The payment platform's webhook: a payment for a case's order."""

    model_config = ConfigDict(extra="forbid")
    case_id: Annotated[str, Field(pattern=r"^reissue-[0-9a-f]{16}$")]
    payment: PaymentConfirmation


class CodeSent(BaseModel):
    """A one-time code went to the mobile number on record for the card's owner (the
    answer names neither the code nor the number)."""

    sent: bool = True
    expires_at: datetime = Field(description="The code is refused from then on.")
    attempts: int = Field(description="Tries the code takes before it is dead.")
