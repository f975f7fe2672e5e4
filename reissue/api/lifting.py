"""Lifting a temporary report: the proof that whoever holds the found card lacks.

The resident ID is printed on the card, so knowing it proves nothing. At a counter,
the clerk checks the person's ID card: the counter system's credential must name that
clerk. By hotline or online, a one-time code sent to the mobile number on record in
the registry for the card's owner, never to a number the request gives:
`POST /v1/cases/{case_id}/card-found/code` sends one, `…/card-found` takes it. A code
expires, is spent by its first right use, and dies after too many wrong tries; a
limited number are sent per case and window. Only a keyed hash of each code, bound to
its case, is stored; a code appears in no log, no case history and no answer. A card
without a mobile number on record is lifted at a counter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

from reissue.activities.notifications import render
from reissue.activities.repositories import cards, found_codes
from reissue.api.credentials import Credential
from reissue.api.models import CodeSent
from reissue.api.problems import ApiProblem
from reissue.schemas import errors
from reissue.schemas.enums import Channel
from reissue.schemas.hashing import one_time_code_hash, open_mobile
from reissue.schemas.identifiers import mask_card_number

__all__ = ["CODE_DIGITS", "OneTimeCodes", "Sms", "codes_sent_to", "prove_lifting", "send_code"]

log = structlog.get_logger(__name__)

CODE_DIGITS = 6


class Sms(Protocol):
    """The notification gateway, as the front door sends one message through it."""

    async def send(self, *, message_id: str, to: str, text: str) -> str: ...


@dataclass(frozen=True)
class OneTimeCodes:
    """How one-time codes are sent and checked. `secret` is the registry's hash secret
    (it keys the codes' hashes and opens the mobile numbers on record); `sms` the
    notification gateway; a code lives `ttl` and takes `max_attempts` tries; at most
    `max_sends` codes go to one case's owner within `window`."""

    secret: str
    sms: Sms
    ttl: timedelta = timedelta(minutes=10)
    max_attempts: int = 5
    max_sends: int = 3
    window: timedelta = timedelta(hours=1)


def _at_a_counter(why: str) -> ApiProblem:
    return ApiProblem(
        409,
        "lift-at-a-counter",
        "Lift the report at a counter",
        f"{why}: the person lifts the report at a counter, where a clerk checks their ID card",
    )


def _code_refused(status: int, kind: str, rule: str, **extra: Any) -> ApiProblem:
    return ApiProblem(
        status,
        kind,
        "Not allowed",
        f"code: {rule}",
        errors=[{"field": "code", "rule": rule}],
        **extra,
    )


async def _report(pool: asyncpg.Pool, case_id: str) -> asyncpg.Record | None:
    async with pool.acquire() as conn:
        return await cards.open_report_contact(conn, case_id)


def codes_sent_to(who: Credential) -> None:
    """Codes are for the hotline and the online service: a counter's clerk checks the ID
    card instead."""
    if who.channel is Channel.COUNTER:
        raise ApiProblem(
            403,
            "forbidden",
            "Not allowed",
            "at a counter the clerk checks the ID card: no code is sent",
        )


async def send_code(pool: asyncpg.Pool, codes: OneTimeCodes | None, case_id: str) -> CodeSent:
    """Send a new one-time code for lifting the case's temporary report to the mobile
    number on record for the card's owner (the caller has proved the owner's ID number).
    Any earlier code of the case dies."""
    report = await _report(pool, case_id)
    if report is None:  # (the ownership check refuses this first)
        raise ApiProblem(404, "not-found", "No open report", "this case holds no open report")
    if report["kind"] != "temporary":
        raise ApiProblem(
            409, errors.REPORT_FORMAL, "Refused by the case", "a formal report is not lifted"
        )
    if report["mobile_sealed"] is None:
        raise _at_a_counter("no mobile number is on record for this card's owner")
    if codes is None:
        raise _at_a_counter("this front door sends no one-time codes")
    try:
        mobile = open_mobile(
            report["mobile_sealed"], account_id=report["account_id"], secret=codes.secret
        )
    except ValueError:  # sealed under another secret, or not this account's: no number
        log.error("mobile number on record does not open", case_id=case_id)
        raise _at_a_counter("no usable mobile number is on record for this card's owner") from None
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    async with pool.acquire() as conn:
        issued = await found_codes.issue(
            conn,
            case_id=case_id,
            code_hash=one_time_code_hash(case_id, code, secret=codes.secret),
            ttl=codes.ttl,
            max_sends=codes.max_sends,
            window=codes.window,
        )
    if not issued["issued"]:
        wait = max(1, int((issued["window_ends"] - datetime.now(UTC)).total_seconds()) + 1)
        raise ApiProblem(
            429,
            "too-many-codes",
            "Too many codes",
            f"{codes.max_sends} codes were sent for this case within "
            f"{int(codes.window.total_seconds() // 60)} minutes; try again later",
            headers={"Retry-After": str(wait)},
        )
    text = render(
        "card_found_code",
        {
            "card": mask_card_number(report["card_number"]),
            "code": code,
            "minutes": str(int(codes.ttl.total_seconds() // 60)),
        },
    )
    try:
        await codes.sms.send(
            message_id="code-" + secrets.token_hex(16), to=f"mobile:{mobile}", text=text
        )
    except ApplicationError as e:
        log.warning("one-time code not sent", case_id=case_id, error=e.type)
        raise ApiProblem(
            503,
            "sms-unavailable",
            "The code was not sent",
            "the notification gateway did not take the message; ask for a code again",
        ) from None
    return CodeSent(expires_at=issued["expires_at"], attempts=codes.max_attempts)


async def prove_lifting(
    pool: asyncpg.Pool,
    codes: OneTimeCodes | None,
    who: Credential,
    case_id: str,
    code: str | None,
) -> None:
    """The proof a card-found needs besides the owner's ID number (checked before): a
    counter credential naming the clerk who checked the ID card, or else the case's
    live one-time code, spent by this call."""
    if who.channel is Channel.COUNTER:
        if who.person is None:
            raise ApiProblem(
                403,
                "no-acting-person",
                "Not allowed",
                "a counter lifts a report on a clerk's check of the ID card: this credential "
                "names no clerk (a per-person token, or a token with an act claim)",
            )
        return
    report = await _report(pool, case_id)
    if report is not None and report["kind"] != "temporary":  # (a code is not spent on it)
        raise ApiProblem(
            409, errors.REPORT_FORMAL, "Refused by the case", "a formal report is not lifted"
        )
    if code is None:
        if report is not None and report["mobile_sealed"] is None:
            raise _at_a_counter("no mobile number is on record for this card's owner")
        raise _code_refused(
            422,
            "code-required",
            "required: the one-time code sent to the mobile number on record "
            "(POST /v1/cases/{case_id}/card-found/code)",
        )
    if codes is None:
        raise _at_a_counter("this front door takes no one-time codes")
    async with pool.acquire() as conn:
        tried = await found_codes.spend(
            conn,
            case_id=case_id,
            code_hash=one_time_code_hash(case_id, code, secret=codes.secret),
            max_attempts=codes.max_attempts,
        )
        why = (
            None
            if tried
            else await found_codes.explain(conn, case_id=case_id, max_attempts=codes.max_attempts)
        )
    if tried is not None:
        if tried["matched"]:
            return
        left = int(tried["attempts_left"])
        rule = (
            f"not the code sent; {left} tries left"
            if left
            else "not the code sent; no tries left: ask for a new code"
        )
        raise _code_refused(403, "wrong-code", rule, attempts_left=left)
    kinds = {
        "none": ("no-code", "no code was sent for this case: ask for one"),
        "used": ("code-used", "this code was used: ask for a new one"),
        "exhausted": (
            "code-attempts-exhausted",
            f"{codes.max_attempts} wrong tries: this code is dead; ask for a new one",
        ),
        "expired": ("code-expired", "the code expired: ask for a new one"),
    }
    kind, rule = kinds[why or "none"]
    raise _code_refused(403, kind, rule)
