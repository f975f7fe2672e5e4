"""The public face for other Python services: a typed client and the models it takes."""

from __future__ import annotations

from reissue.client._client import CaseRef, ReissueClient
from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
from reissue.schemas.events import (
    AffiliationOverride,
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    MaterialsSubmission,
    PaymentConfirmation,
    ReviewDecision,
)
from reissue.schemas.reasons import Reason

__all__ = [
    "AffiliationOverride",
    "AffiliationResponse",
    "CancelRequest",
    "CardCollected",
    "CardFound",
    "CardProduced",
    "CaseInput",
    "CaseRef",
    "CaseResult",
    "CaseStatus",
    "MaterialsSubmission",
    "PaymentConfirmation",
    "Reason",
    "ReissueClient",
    "ReviewDecision",
]
