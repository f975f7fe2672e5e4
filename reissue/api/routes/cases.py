"""`/v1/cases`: report a loss (open the card's case, or find the open one) and read a
case's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from reissue.api.credentials import Credential
from reissue.api.deps import CaseId, Door, IdempotencyKey, owners_report, require
from reissue.api.idempotency import once
from reissue.api.problems import refusals
from reissue.schemas.case import CaseInput, CaseStatus
from reissue.schemas.contract import REGISTRATION, STATUS

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/v1/cases",
    response_model=CaseStatus,
    summary="Report a loss: open the case for the card (or find the open one)",
    description=(
        "Create-or-get: answers once the card is frozen. The case ID is computed by the "
        "server from the card number."
    ),
)
async def report_loss(
    application: Annotated[CaseInput, Depends(owners_report)],
    request: Request,
    door: Door,
    who: Annotated[Credential, Depends(require(REGISTRATION.scope))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def answer() -> CaseStatus:
        async with refusals(door.client):
            return await door.client.report_loss_and_wait(application)

    return await once(door.pool, request, who, idempotency_key, answer)


@router.get("/v1/cases/{case_id}", response_model=CaseStatus, summary="A case's status (masked)")
async def case_status(
    case_id: CaseId,
    door: Door,
    who: Annotated[Credential, Depends(require(STATUS.scope))],
) -> CaseStatus:
    async with refusals(door.client, case_id):
        return await door.client.status(case_id)
