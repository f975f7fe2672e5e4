"""`/v1/cases`: report a loss (open the card's case, or find the open one) and read a
case's status, each in the view the partner's job needs. The case ID answered is the
one the URLs take, also in a `Location` header."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reissue.api.credentials import Credential
from reissue.api.deps import CaseId, Door, IdempotencyKey, owners_report, require
from reissue.api.idempotency import once
from reissue.api.problems import refusals
from reissue.schemas.case import CaseInput, CaseStatus
from reissue.schemas.contract import REGISTRATION, STATUS
from reissue.schemas.partner import CaseView, view_of
from reissue.schemas.permissions import PARTNER_VIEWS

__all__ = ["router"]

router = APIRouter()


def _view(who: Credential, st: CaseStatus, case_id: str) -> BaseModel:
    """The view of the case the caller's partner kind reads."""
    return view_of(PARTNER_VIEWS[who.partner], st, case_id=case_id)


@router.post(
    "/v1/cases",
    response_model=CaseView,
    summary="Report a loss: open the case for the card (or find the open one)",
    description=(
        "Create-or-get: answers once the card is frozen. The case ID is computed by the "
        "server from the card number; the answer names it, and `Location` is the case's "
        "URL. The report is made on the channel of the caller's credential."
    ),
    responses={
        200: {
            "headers": {
                "Location": {
                    "description": "The case's URL: `/v1/cases/{case_id}`.",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
async def report_loss(
    application: Annotated[CaseInput, Depends(owners_report)],
    request: Request,
    door: Door,
    who: Annotated[Credential, Depends(require(REGISTRATION.scope))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    case_id = door.client.case_id_for(application.card_number)

    async def answer() -> BaseModel:
        async with refusals(door.client):
            return _view(who, await door.client.report_loss_and_wait(application), case_id)

    response = await once(door.pool, request, who, idempotency_key, answer)
    response.headers["Location"] = f"/v1/cases/{case_id}"
    return response


@router.get(
    "/v1/cases/{case_id}",
    response_model=CaseView,
    summary="A case's status (masked), in the view the caller's partner kind reads",
)
async def case_status(
    case_id: CaseId,
    door: Door,
    who: Annotated[Credential, Depends(require(STATUS.scope))],
) -> BaseModel:
    async with refusals(door.client, case_id):
        return _view(who, await door.client.status(case_id), case_id)
