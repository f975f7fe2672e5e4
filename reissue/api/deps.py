"""What a route of the partner API depends on: the front door's services, the caller's
credential and its scopes, the case in the path, and a signed webhook. Authentication
and authorisation are dependencies of each route, so a refused call reaches no
handler and writes nothing."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations,
# and some name a scope local to their factory.
import functools
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import asyncpg
from fastapi import Depends, Header, Path, Request
from pydantic import BaseModel
from temporalio.service import RPCError

from reissue.activities.repositories import cards, casework
from reissue.api.credentials import Credential, TokenVerifier, authenticate
from reissue.api.lifting import OneTimeCodes
from reissue.api.ownership import OwnershipLimits, owner_check
from reissue.api.problems import ApiProblem
from reissue.client import ReissueClient
from reissue.schemas import errors
from reissue.schemas.case import CaseInput
from reissue.schemas.contract import REGISTRATION
from reissue.schemas.hashing import webhook_signature
from reissue.schemas.permissions import Scope, canonical

__all__ = [
    "WEBHOOK_WINDOW_SECONDS",
    "CaseId",
    "Door",
    "FrontDoor",
    "IdempotencyKey",
    "SignedWebhook",
    "asked_case",
    "case_in_path",
    "credential",
    "credential_says",
    "owners_report",
    "require",
    "signed_payment",
]


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FrontDoor:
    """The services behind the partner API (kept on the app's state)."""

    client: ReissueClient
    pool: asyncpg.Pool
    webhook_secret: str = ""
    tokens: TokenVerifier | None = None
    api_keys: bool = True
    ownership: OwnershipLimits = field(default_factory=OwnershipLimits)
    # None: no one-time codes here (a report is lifted at a counter only).
    codes: OneTimeCodes | None = None

    def is_owner(self, owner_key: str | None, resident_id: str) -> bool:
        """Whether the registry's owner (a person key) is the person with this ID."""
        if owner_key is None:
            return False
        return hmac.compare_digest(owner_key, self.client.person_key_for(resident_id))


def _front_door(request: Request) -> FrontDoor:
    door: FrontDoor = request.app.state.front_door
    return door


Door = Annotated[FrontDoor, Depends(_front_door)]
CaseId = Annotated[
    str, Path(pattern=r"^reissue-[0-9a-f]{16}$", description="The case ID (a keyed hash).")
]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def credential(
    door: Door, authorization: Annotated[str | None, Header()] = None
) -> Credential:
    """Who calls: an API key (dev) or an OAuth2 access token (production)."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise ApiProblem(
            401, "unauthenticated", "Not authenticated", "send Authorization: Bearer <key>"
        )
    key = key.strip()
    found = None
    if key.startswith("rk_"):
        if door.api_keys:
            async with door.pool.acquire() as conn:
                found = await authenticate(conn, key)
    elif door.tokens is not None:
        found = await door.tokens.verify(key)
    if found is None:
        raise ApiProblem(401, "unauthenticated", "Not authenticated", "the key is not valid")
    return found


@functools.cache
def require(scope: Scope) -> Callable[[Credential], Awaitable[Credential]]:
    """The caller, if its credential holds `scope` (one dependency per scope)."""

    async def allowed(who: Annotated[Credential, Depends(credential)]) -> Credential:
        if scope not in who.scopes:
            raise ApiProblem(
                403, "forbidden", "Not allowed", f"a {who.partner} key may not {scope}"
            )
        return who

    return allowed


def _refused_field(kind: str, title: str, field: str, rule: str) -> ApiProblem:
    return ApiProblem(422, kind, title, f"{field}: {rule}", errors=[{"field": field, "rule": rule}])


def credential_says(body: M, who: Credential, *, actor: str | None = None) -> M:
    """The body as the credential says it: a `channel` it names must be the channel the
    credential reports on, and its `actor` field (who acted) the person the credential
    names, which the event then carries. Anything else is refused, naming the field
    (never the value sent)."""
    named = getattr(body, "channel", None)
    if named is not None and named != who.channel:
        reports_on = who.channel.value if who.channel else "no channel"
        raise _refused_field(
            "foreign-channel",
            "Not the credential's channel",
            "channel",
            f"a {who.partner} credential reports on {reports_on}",
        )
    if actor is None:
        return body
    if who.person is None:
        raise ApiProblem(
            403,
            "no-acting-person",
            "Not allowed",
            f"{actor}: this credential names no clerk or officer (a per-person token, "
            "or a token with an act claim)",
        )
    if canonical(getattr(body, actor)) != who.person:
        raise _refused_field(
            "foreign-actor",
            "Not the credential's person",
            actor,
            "must be the clerk or officer the credential names",
        )
    return body.model_copy(update={actor: who.person})


def case_in_path(case_id: CaseId) -> str:
    """The case the path names (its workflow ID)."""
    return case_id


@functools.cache
def asked_case(scope: Scope) -> Callable[..., Awaitable[str]]:
    """For a portal: the case in the path, only if the run open now asked the caller's
    own unit (an employer portal) or school (a school portal); that run's case ID, to
    send to it alone (a later case for the card is not reached)."""

    async def asked(
        door: Door,
        who: Annotated[Credential, Depends(require(scope))],
        case_id: CaseId,
    ) -> str:
        try:
            run_id = (await door.client.handle(case_id).describe()).run_id
        except RPCError:
            run_id = None
        kind = "employer" if who.partner == "unit_portal" else "school"
        if run_id is not None and who.org_code is not None:
            async with door.pool.acquire() as conn:
                if await casework.affiliation_asked(
                    conn, case_id=f"{case_id}:{run_id}", org_code=who.org_code, kind=kind
                ):
                    return f"{case_id}:{run_id}"
        raise ApiProblem(
            403, "forbidden", "Not allowed", "this case did not ask your unit or school"
        )

    return asked


async def owners_report(
    who: Annotated[Credential, Depends(require(REGISTRATION.scope))],
    application: CaseInput,
    door: Door,
) -> CaseInput:
    """A report of a card by its owner only: knowing a card's number is not enough to
    reach the case open for it (the registry checks the same when a case opens). A
    refused report writes nothing anywhere, not even a refused case in Temporal. The
    report is made on the credential's channel; failed ownership checks are limited
    per card and per credential (`ownership.py`)."""
    credential_says(application, who)
    case_id = door.client.case_id_for(application.card_number)
    async with owner_check(door.pool, door.ownership, who, case_id=case_id, freezing=True) as check:
        async with door.pool.acquire() as conn:
            owner = await cards.card_owner(conn, application.card_number)
        if owner is None:
            raise ApiProblem(
                422,
                errors.CARD_NOT_FOUND,
                "Refused by the case",
                "card_number: no card with this number in the registry",
            )
        if not door.is_owner(owner, application.applicant.resident_id):
            raise ApiProblem(
                422,
                errors.CARD_OWNER_MISMATCH,
                "Refused by the case",
                "applicant.resident_id: the card does not belong to this person",
            )
        check.passed()
    return application


# A webhook older than this, or seen before, is refused (a replay).
WEBHOOK_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook whose signature and time are good: its body and its signature."""

    body: bytes
    signature: str


async def signed_payment(
    request: Request,
    door: Door,
    who: Annotated[Credential, Depends(require(Scope.PAYMENT))],
    x_reissue_timestamp: Annotated[str, Header()],
    x_reissue_signature: Annotated[str, Header()],
) -> SignedWebhook:
    """The payment platform's webhook: its key, and an HMAC-SHA256 signature over
    `<timestamp>.<body>` with the shared secret, sent within the window."""
    raw = await request.body()
    expected = webhook_signature(door.webhook_secret, x_reissue_timestamp, raw)
    given = x_reissue_signature.encode("latin-1", "replace")
    if not door.webhook_secret or not hmac.compare_digest(expected.encode(), given):
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
    return SignedWebhook(raw, x_reissue_signature)
