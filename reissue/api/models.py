"""The partner API's own bodies and answers (the events' models are the contract's)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from reissue.schemas.events import PaymentConfirmation

__all__ = ["Accepted", "PaymentNotice"]


class Accepted(BaseModel):
    """The event was delivered to the case; what it did shows in the case's status."""

    accepted: bool = True


class PaymentNotice(BaseModel):
    """The payment platform's webhook: a payment for a case's order."""

    model_config = ConfigDict(extra="forbid")
    case_id: Annotated[str, Field(pattern=r"^reissue-[0-9a-f]{16}$")]
    payment: PaymentConfirmation
