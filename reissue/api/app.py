"""The partner API, `/v1`: FastAPI over the typed client.

Every call is authenticated (`Authorization: Bearer rk_…`) and authorised by
scope before anything is sent to a case, so a refused call writes nothing.
Errors are RFC 9457 `application/problem+json` naming the field and the rule.
A POST with an `Idempotency-Key` is answered once and replayed after that.
URLs carry only case IDs (keyed hashes), never personal data.
"""

import hashlib
import hmac
import json
import pathlib
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import asyncpg
from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from reissue.api.credentials import Credential, TokenVerifier, authenticate
from reissue.client import ReissueClient
from reissue.schemas import errors
from reissue.schemas.case import CaseInput, CaseStatus
from reissue.schemas.enums import AwaitingParty, Channel, Stage
from reissue.schemas.events import (
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    EventAck,
    MaterialsAccepted,
    MaterialsSubmission,
    PaymentConfirmation,
    ProductionFailed,
    Reason,
    ReportFormalisation,
)
from reissue.schemas.hashing import webhook_signature
from reissue.schemas.identifiers import ResidentId
from reissue.schemas.text import PlainText

__all__ = ["OPENAPI_FILE", "PROBLEM", "build_app", "openapi_document"]

PROBLEM = "application/problem+json"
# The committed OpenAPI document (`reissue schemas export` writes it; a test checks it).
OPENAPI_FILE = pathlib.Path(__file__).parent / "openapi.json"
CASE_ID = Path(pattern=r"^reissue-[0-9a-f]{16}$", description="The case ID (a keyed hash).")

# Refusals by the case or the registry: the state of the case forbids it (409), or
# what was sent cannot be accepted (422).
_CONFLICTS = {
    errors.CARD_ALREADY_REPORTED,
    errors.CASE_ENDING,
    errors.WRONG_STAGE,
    errors.ALREADY_DECIDED,
    errors.REPORT_FORMAL,
    errors.BUSY,
    errors.CARD_NOT_ACTIVE,
}


class Cancellation(BaseModel):
    """Why operations end the case; who does it is the calling credential."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason


class FoundCard(BaseModel):
    """The person found the card; they show their ID (the report is lifted only for them)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    resident_id: ResidentId
    channel: Channel
    note: Annotated[PlainText, Field(max_length=500)] = ""


_CARD_OWNER = (
    "SELECT a.person_key FROM cards c JOIN insured_accounts a USING (account_id)"
    " WHERE c.card_number = $1"
)
_OPEN_REPORT_OWNER = (
    "SELECT a.person_key FROM loss_reports r JOIN cards c USING (card_number)"
    " JOIN insured_accounts a USING (account_id)"
    " WHERE split_part(r.case_id, ':', 1) = $1 AND r.status = 'open'"
)


class Accepted(BaseModel):
    """The event was delivered to the case; what it did shows in the case's status."""

    accepted: bool = True


class PaymentNotice(BaseModel):
    """The payment platform's webhook: a payment for a case's order."""

    model_config = ConfigDict(extra="forbid")
    case_id: Annotated[str, Field(pattern=r"^reissue-[0-9a-f]{16}$")]
    payment: PaymentConfirmation


class ApiProblem(Exception):
    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )


def _problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"urn:reissue:problem:{kind}", "title": title, "status": status}
    body |= {"detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _refusal(e: Exception) -> ApiProblem:
    """A refusal from a case (a failed update, a failed start) as a problem."""
    cause = e.cause if isinstance(e, WorkflowUpdateFailedError) else e
    if isinstance(cause, ApplicationError) and cause.type:
        status = 409 if cause.type in _CONFLICTS else 422
        return ApiProblem(status, cause.type, "Refused by the case", cause.message)
    raise e


# A webhook older than this, or seen before, is refused (a replay).
WEBHOOK_WINDOW_SECONDS = 300


def build_app(
    client: ReissueClient,
    pool: asyncpg.Pool,
    *,
    webhook_secret: str = "",
    tokens: TokenVerifier | None = None,
    api_keys: bool = True,
) -> FastAPI:
    """The app. Production verifies OAuth2 access tokens (`tokens`) and takes no API
    keys; dev and tests take the hashed API keys."""
    app = FastAPI(
        title="Card reissue orchestrator — partner API",
        version="1",
        description=(
            "For partner systems (hotline, counter, unit and school portals, payment "
            "platform, card bureau, operations). Authenticate with `Authorization: Bearer "
            "<key>`; each key carries the scopes of its partner kind."
        ),
    )

    @app.exception_handler(ApiProblem)
    async def api_problem(_: Request, e: ApiProblem) -> JSONResponse:
        return _problem(e.status, e.kind, e.title, e.detail, **e.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"][1:]) or "(body)", "rule": err["msg"]}
            for err in e.errors()
        ]
        detail = "; ".join(f"{f['field']}: {f['rule']}" for f in fields)
        return _problem(422, "invalid-request", "The request is not valid", detail, errors=fields)

    async def credential(
        authorization: Annotated[str | None, Header()] = None,
    ) -> Credential:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise ApiProblem(
                401, "unauthenticated", "Not authenticated", "send Authorization: Bearer <key>"
            )
        key = key.strip()
        found = None
        if key.startswith("rk_"):
            if api_keys:
                async with pool.acquire() as conn:
                    found = await authenticate(conn, key)
        elif tokens is not None:
            found = await tokens.verify(key)
        if found is None:
            raise ApiProblem(401, "unauthenticated", "Not authenticated", "the key is not valid")
        return found

    def scope(name: str) -> Callable[[Credential], Awaitable[Credential]]:
        async def check(who: Annotated[Credential, Depends(credential)]) -> Credential:
            if name not in who.scopes:
                raise ApiProblem(
                    403, "forbidden", "Not allowed", f"a {who.partner} key may not {name}"
                )
            return who

        return check

    async def once(
        request: Request,
        who: Credential,
        key: str | None,
        answer: Callable[[], Awaitable[BaseModel]],
    ) -> JSONResponse:
        """Answer a POST; with an Idempotency-Key, the first answer is kept and replayed.

        The key is reserved before anything is sent, so two requests with one key never
        both run; a refusal or a failure frees it again (nothing was done)."""
        if key is None:
            return JSONResponse((await answer()).model_dump(mode="json"))
        digest = hashlib.sha256(
            f"{request.method} {request.url.path}\n".encode() + await request.body()
        ).hexdigest()
        async with pool.acquire() as conn:
            reserved = await conn.fetchval(
                "INSERT INTO api_idempotency (key_id, idem_key, request_sha256, status, body)"
                " VALUES ($1, $2, $3, 0, 'null') ON CONFLICT DO NOTHING RETURNING true",
                who.key_id,
                key,
                digest,
            )
            kept = None
            if not reserved:
                kept = await conn.fetchrow(
                    "SELECT request_sha256, status, body FROM api_idempotency"
                    " WHERE key_id = $1 AND idem_key = $2",
                    who.key_id,
                    key,
                )
        if kept is not None:
            if kept["request_sha256"] != digest:
                raise ApiProblem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "Idempotency-Key: already used for a different request",
                )
            if kept["status"] == 0:
                raise ApiProblem(
                    409,
                    "idempotency-key-in-flight",
                    "Request in progress",
                    "Idempotency-Key: the first request with this key is still being answered",
                )
            return JSONResponse(json.loads(kept["body"]), status_code=kept["status"])
        try:
            body = (await answer()).model_dump(mode="json")
        except BaseException:
            async with pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM api_idempotency"
                    " WHERE key_id = $1 AND idem_key = $2 AND status = 0",
                    who.key_id,
                    key,
                )
            raise
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE api_idempotency SET status = 200, body = $3"
                " WHERE key_id = $1 AND idem_key = $2",
                who.key_id,
                key,
                json.dumps(body),
            )
        return JSONResponse(body)

    async def owner_is(sql: str, arg: str, resident_id: str) -> bool | None:
        """Whether the registry's owner (found by `sql`) is this person; None: not found."""
        async with pool.acquire() as conn:
            owner = await conn.fetchval(sql, arg)
        if owner is None:
            return None
        return hmac.compare_digest(owner, client.person_key_for(resident_id))

    async def refused_as_problem(call: Awaitable[Any], case_id: str | None = None) -> Any:
        try:
            return await call
        except (WorkflowUpdateFailedError, WorkflowAlreadyStartedError) as e:
            raise _refusal(e) from None
        except WorkflowQueryFailedError:  # the case was refused: it never opened
            raise ApiProblem(
                409, "case-not-opened", "The case did not open", "this case was refused"
            ) from None
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise
            if case_id is not None:
                try:
                    await client.handle(case_id).describe()
                except RPCError:
                    pass
                else:  # it exists, and has closed: it takes no more events
                    raise ApiProblem(
                        409, errors.CASE_ENDING, "Refused by the case", "the case has closed"
                    ) from None
            raise ApiProblem(404, "not-found", "No such case", "no case with this ID") from None

    idempotency = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    @app.post(
        "/v1/cases",
        response_model=CaseStatus,
        summary="Report a loss: open the case for the card (or find the open one)",
        description=(
            "Create-or-get: answers once the card is frozen. The case ID is computed by the "
            "server from the card number."
        ),
    )
    async def report_loss(
        application: CaseInput,
        request: Request,
        who: Annotated[Credential, Depends(scope("report"))],
        idempotency_key: idempotency = None,
    ) -> JSONResponse:
        # Knowing a card's number is not enough to reach the case open for it: the
        # applicant must be the card's owner (as the registry checks when a case opens).
        # A refused report writes nothing anywhere, not even a refused case in Temporal.
        resident_id = application.applicant.resident_id
        owner = await owner_is(_CARD_OWNER, application.card_number, resident_id)
        if owner is None:
            raise ApiProblem(
                422,
                errors.CARD_NOT_FOUND,
                "Refused by the case",
                "card_number: no card with this number in the registry",
            )
        if owner is False:
            raise ApiProblem(
                422,
                errors.CARD_OWNER_MISMATCH,
                "Refused by the case",
                "applicant.resident_id: the card does not belong to this person",
            )

        async def answer() -> CaseStatus:
            status: CaseStatus = await refused_as_problem(client.report_loss_and_wait(application))
            return status

        return await once(request, who, idempotency_key, answer)

    @app.get("/v1/cases/{case_id}", response_model=CaseStatus, summary="A case's status (masked)")
    async def case_status(
        case_id: Annotated[str, CASE_ID],
        who: Annotated[Credential, Depends(scope("status"))],
    ) -> CaseStatus:
        status: CaseStatus = await refused_as_problem(client.status(case_id), case_id)
        return status

    def post_event(
        path: str,
        needed: str,
        model: type[BaseModel],
        summary: str,
        send: Callable[[str, Any, Credential], Awaitable[BaseModel | None]],
        answer_model: type[BaseModel],
    ) -> None:
        """One event to a case: authenticated, scoped, validated, sent once per key."""

        async def endpoint(
            case_id: Annotated[str, CASE_ID],
            body: model,  # type: ignore[valid-type]
            request: Request,
            who: Annotated[Credential, Depends(scope(needed))],
            idempotency_key: idempotency = None,
        ) -> JSONResponse:
            async def answer() -> BaseModel:
                result = await refused_as_problem(send(case_id, body, who), case_id)
                return result if isinstance(result, BaseModel) else Accepted()

            return await once(request, who, idempotency_key, answer)

        endpoint.__name__ = path.rsplit("/", 1)[-1].replace("-", "_")
        app.post(f"/v1/cases/{{case_id}}/{path}", response_model=answer_model, summary=summary)(
            endpoint
        )

    async def expecting(
        case_id: str, stage: Stage, waiting: Callable[[CaseStatus], bool] = lambda _: True
    ) -> None:
        """A partner's signal goes only to a case waiting for it: anything else is refused
        here, and never reaches the case (nor grows its history, however often sent)."""
        st: CaseStatus = await refused_as_problem(client.status(case_id), case_id)
        if st.stage is not stage or not waiting(st):
            raise ApiProblem(
                409,
                errors.WRONG_STAGE,
                "Refused by the case",
                f"the case is not waiting for this (stage {st.stage.value})",
            )

    async def own_case(case_id: str, who: Credential) -> str:
        """A portal answers only the case open now that asked its own unit (an employer
        portal) or school (a school portal); returns that case's run to signal."""
        try:
            run_id = (await client.handle(case_id).describe()).run_id
        except RPCError:
            run_id = None
        kind = "employer" if who.partner == "unit_portal" else "school"
        async with pool.acquire() as conn:
            asked = run_id is not None and await conn.fetchval(
                "SELECT true FROM affiliation_requests"
                " WHERE case_id = $1 AND org_code = $2 AND kind = $3 LIMIT 1",
                f"{case_id}:{run_id}",
                who.org_code,
                kind,
            )
        if not asked:
            raise ApiProblem(
                403, "forbidden", "Not allowed", "this case did not ask your unit or school"
            )
        return f"{case_id}:{run_id}"

    async def submit(case_id: str, body: MaterialsSubmission, who: Credential) -> BaseModel:
        return await client.submit_materials(case_id, body)

    async def formal(case_id: str, body: ReportFormalisation, who: Credential) -> BaseModel:
        return await client.make_report_formal(case_id, body)

    async def affiliation(case_id: str, body: AffiliationResponse, who: Credential) -> None:
        run = await own_case(case_id, who)
        await expecting(
            run, Stage.AWAITING_AFFILIATION, lambda st: st.affiliation_status == "requested"
        )
        # Signalled to that run only: a later case for the card is not reached.
        await client.respond_affiliation(run, body)

    def awaiting_the_bureau(st: CaseStatus) -> bool:
        """No new card yet, and no new order being placed: while the case orders again
        after a failure, a report waits (409; the bureau tries again) instead of landing
        before the case knows the new order."""
        placing = st.production_order_id in st.failed_production_orders
        return st.new_card_masked is None and not (placing and st.awaiting is AwaitingParty.BUREAU)

    async def produced(case_id: str, body: CardProduced, who: Credential) -> None:
        await expecting(case_id, Stage.CARD_PRODUCTION, awaiting_the_bureau)
        await client.card_produced(case_id, body)

    async def production_failed(case_id: str, body: ProductionFailed, who: Credential) -> None:
        await expecting(case_id, Stage.CARD_PRODUCTION, awaiting_the_bureau)
        await client.production_failed(case_id, body)

    async def collected(case_id: str, body: CardCollected, who: Credential) -> None:
        await expecting(case_id, Stage.READY_FOR_PICKUP)
        await client.card_collected(case_id, body)

    async def found(case_id: str, body: FoundCard, who: Credential) -> BaseModel:
        # Only the person whose card it is can withdraw the report (it unfreezes the card).
        if not await owner_is(_OPEN_REPORT_OWNER, case_id, body.resident_id):
            raise ApiProblem(
                403,
                "not-the-owner",
                "Not allowed",
                "resident_id: not the person who reported this card lost (or no open report)",
            )
        return await client.card_found(case_id, CardFound(channel=body.channel, note=body.note))

    async def cancel(case_id: str, body: Cancellation, who: Credential) -> BaseModel:
        # The acting identity is the credential, never a field of the request.
        return await client.cancel(case_id, CancelRequest(operator=who.actor, reason=body.reason))

    post_event(
        "materials",
        "submit",
        MaterialsSubmission,
        "The application and materials handed in at a counter",
        submit,
        MaterialsAccepted,
    )
    post_event(
        "formal",
        "formalise",
        ReportFormalisation,
        "The person showed their ID at a counter: the report becomes formal",
        formal,
        EventAck,
    )
    post_event(
        "affiliation",
        "affiliation",
        AffiliationResponse,
        "The unit's or school's answer (its own cases only)",
        affiliation,
        Accepted,
    )
    post_event(
        "card-produced",
        "card_produced",
        CardProduced,
        "The card bureau made the new card",
        produced,
        Accepted,
    )
    post_event(
        "production-failed",
        "production_failed",
        ProductionFailed,
        "The card bureau could not make the card (the case orders it again, up to its policy's"
        " limit)",
        production_failed,
        Accepted,
    )
    post_event(
        "collected",
        "collect",
        CardCollected,
        "The counter handed the new card over",
        collected,
        Accepted,
    )
    post_event(
        "card-found",
        "card_found",
        FoundCard,
        "The person found the card: lift the temporary report and end the case",
        found,
        EventAck,
    )
    post_event(
        "cancel",
        "cancel",
        Cancellation,
        "Operations end the case; a paid fee is refunded",
        cancel,
        EventAck,
    )

    @app.post(
        "/v1/payments",
        response_model=Accepted,
        summary="The payment platform's webhook (signed)",
        description=(
            "Signed with HMAC-SHA256 over `<X-Reissue-Timestamp>.<body>` "
            "(`X-Reissue-Signature: sha256=<hex>`); refused outside a "
            f"{WEBHOOK_WINDOW_SECONDS} s window or when seen before. Every payment is "
            "recorded and, if it pays nothing owed, refunded."
        ),
    )
    async def payment_webhook(
        request: Request,
        who: Annotated[Credential, Depends(scope("payment"))],
        x_reissue_timestamp: Annotated[str, Header()],
        x_reissue_signature: Annotated[str, Header()],
    ) -> Accepted:
        raw = await request.body()
        expected = webhook_signature(webhook_secret, x_reissue_timestamp, raw)
        given = x_reissue_signature.encode("latin-1", "replace")
        if not webhook_secret or not hmac.compare_digest(expected.encode(), given):
            raise ApiProblem(
                401, "bad-signature", "Bad signature", "X-Reissue-Signature: does not match"
            )
        try:
            sent_at = int(x_reissue_timestamp)
        except ValueError:
            raise ApiProblem(
                422,
                "invalid-request",
                "The request is not valid",
                "X-Reissue-Timestamp: unix seconds",
            ) from None
        if abs(time.time() - sent_at) > WEBHOOK_WINDOW_SECONDS:
            raise ApiProblem(
                401,
                "stale-webhook",
                "Stale webhook",
                f"X-Reissue-Timestamp: outside the {WEBHOOK_WINDOW_SECONDS} s window",
            )
        try:
            notice = PaymentNotice.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_input=False)]
            ) from None
        async with pool.acquire() as conn:
            fresh = await conn.fetchval(
                "INSERT INTO api_webhooks_seen (signature) VALUES ($1)"
                " ON CONFLICT DO NOTHING RETURNING true",
                x_reissue_signature,
            )
        if not fresh:
            raise ApiProblem(
                409, "replayed-webhook", "Replayed webhook", "this webhook was delivered before"
            )
        try:
            await client.confirm_payment(notice.case_id, notice.payment)
        except BaseException:
            # Not delivered: the platform's retry must get through (the money must arrive).
            async with pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM api_webhooks_seen WHERE signature = $1", x_reissue_signature
                )
            raise
        return Accepted()

    return app


def openapi_document() -> str:
    """The OpenAPI 3.1 document of `/v1`, as committed."""
    app = build_app(cast(ReissueClient, None), cast(asyncpg.Pool, None))
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
