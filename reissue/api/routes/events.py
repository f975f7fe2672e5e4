"""`/v1/cases/{case_id}/<event>`: one route per event of the catalogue that partners
send (`contract.EVENTS`, entries with `api`). Each is authenticated and scoped by its
dependencies, validated, sent once per `Idempotency-Key`, and only to a case waiting
for it. Besides, `…/card-found/code` sends the one-time code a card-found by hotline or
online takes (`lifting.py`)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations,
# which name the models of each entry (local to the factory).
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reissue.activities.repositories import cards
from reissue.api.credentials import Credential
from reissue.api.deps import (
    Door,
    FrontDoor,
    IdempotencyKey,
    asked_case,
    case_in_path,
    credential_says,
    require,
)
from reissue.api.idempotency import once
from reissue.api.lifting import codes_sent_to, prove_lifting, send_code
from reissue.api.models import Accepted, CodeSent
from reissue.api.ownership import owner_check
from reissue.api.problems import ApiProblem, refusals
from reissue.schemas import errors
from reissue.schemas.contract import CARD_FOUND, EVENTS, Awaited, Event, Route, Update
from reissue.schemas.events import ReportFormalisation
from reissue.schemas.partner import FoundCard, FoundCodeRequest, OwnerProof

__all__ = ["router"]

router = APIRouter()


async def _expecting(door: FrontDoor, case_id: str, awaited: Awaited) -> None:
    """A partner's event goes only to a case waiting for it: anything else is refused
    here, and never reaches the case (nor grows its history, however often sent)."""
    st = await door.client.status(case_id)
    if st.stage is not awaited.stage or not awaited.waiting(st):
        raise ApiProblem(
            409,
            errors.WRONG_STAGE,
            "Refused by the case",
            f"the case is not waiting for this (stage {st.stage.value})",
        )


async def _proven_owner(
    door: FrontDoor, who: Credential, case_id: str, resident_id: str, *, status: int
) -> None:
    """Only the person whose card it is may send this (a card-found lifts the report;
    a `/formal` voids the card for good): checked when the event is sent, against
    the case's open report, under the limits on failed ownership checks."""
    async with owner_check(door.pool, door.ownership, who, case_id=case_id) as check:
        async with door.pool.acquire() as conn:
            owner = await cards.open_report_owner(conn, case_id)
        if owner is None:
            check.passed()  # no open report: nothing about the owner was checked
        if not door.is_owner(owner, resident_id):
            rule = "not the person who reported this card lost (or no open report)"
            extra: dict[str, Any] = {}
            if status == 422:  # a field of the event: named, as every field refused
                extra["errors"] = [{"field": "resident_id", "rule": rule}]
            raise ApiProblem(
                status, "not-the-owner", "Not allowed", f"resident_id: {rule}", **extra
            )
        check.passed()


async def _deliver(
    door: FrontDoor, entry: Event, route: Route[Any], case_id: str, body: Any, who: Credential
) -> BaseModel:
    async with refusals(door.client, case_id):
        if route.awaited is not None:
            await _expecting(door, case_id, route.awaited)
        if isinstance(body, OwnerProof):
            await _proven_owner(door, who, case_id, body.resident_id, status=403)
        elif isinstance(body, ReportFormalisation):  # the ID card a clerk checked
            await _proven_owner(door, who, case_id, body.resident_id, status=422)
        if isinstance(body, FoundCard):  # its ID number is printed on the card: more proof
            await prove_lifting(door.pool, door.codes, who, case_id, body.code)
        # The acting identity is the credential, never a field of the request.
        event = body.event(actor=who.acting) if route.body is not None else body
        return await door.client.deliver(case_id, entry, event) or Accepted()


def _add(entry: Event, route: Route[Any]) -> None:
    body_model = route.body or entry.arg
    target = asked_case(route.scope) if route.asked_only else case_in_path

    async def as_the_credential_says(
        body: body_model,  # type: ignore[valid-type]
        who: Annotated[Credential, Depends(require(route.scope))],
    ) -> Any:
        return credential_says(body, who, actor=route.actor)

    async def endpoint(
        case_id: Annotated[str, Depends(target)],
        body: Annotated[Any, Depends(as_the_credential_says)],
        request: Request,
        door: Door,
        who: Annotated[Credential, Depends(require(route.scope))],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        async def answer() -> BaseModel:
            return await _deliver(door, entry, route, case_id, body, who)

        return await once(door.pool, request, who, idempotency_key, answer)

    endpoint.__name__ = route.path.replace("-", "_")
    router.post(
        f"/v1/cases/{{case_id}}/{route.path}",
        response_model=entry.result if isinstance(entry, Update) else Accepted,
        summary=route.summary,
    )(endpoint)


for _entry in EVENTS:
    if _entry.api is not None:
        _add(_entry, _entry.api)

assert CARD_FOUND.api is not None


@router.post(
    f"/v1/cases/{{case_id}}/{CARD_FOUND.api.path}/code",
    response_model=CodeSent,
    summary="Hotline or online: send the one-time code for lifting the temporary report "
    "to the mobile number on record for the card's owner",
    description=(
        "The body is the owner's ID number (checked, under the ownership limits); the code "
        "goes to the mobile number the registry holds for the owner, never to one the "
        "request gives, and `…/card-found` takes it. A new code replaces the case's earlier "
        "one. A card without a mobile number on record is lifted at a counter (409)."
    ),
)
async def card_found_code(
    case_id: Annotated[str, Depends(case_in_path)],
    body: FoundCodeRequest,
    request: Request,
    door: Door,
    who: Annotated[Credential, Depends(require(CARD_FOUND.api.scope))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def answer() -> BaseModel:
        codes_sent_to(who)
        await _proven_owner(door, who, case_id, body.resident_id, status=403)
        return await send_code(door.pool, door.codes, case_id)

    return await once(door.pool, request, who, idempotency_key, answer)
