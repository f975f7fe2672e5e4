"""Ownership checks at the front door, limited so that their answers are no oracle.

Knowing a card's number and guessing resident IDs until the answer changes from
`CardOwnerMismatch` (or `not-the-owner`) would tell a partner key whose card it is,
and let it act as the owner. So every ownership check is counted as a failure
before it runs (parallel guesses meet the same limit) and taken back if it passes;
`OwnershipLimits.per_card` failures on one card, or `per_credential` by one
credential, within the window lock that card or that credential for the window:
every check is then refused (429) without being made, the right answer too.
Operations are told once per lock, through the notification outbox (in the same
transaction as the lock, so exactly one message per lock, and delivered like every
other message to operations), and in a log line; neither carries personal data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from reissue.activities.db import Connection
from reissue.activities.notifications import render
from reissue.activities.repositories import api_ownership, casework
from reissue.api.credentials import Credential
from reissue.api.problems import ApiProblem
from reissue.schemas.clock import beijing_cn
from reissue.schemas.enums import Channel

__all__ = ["OwnerCheck", "OwnershipLimits", "owner_check"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OwnershipLimits:
    """How many ownership checks may fail within `window`, per card and per
    credential, before that card or credential is locked for `window`."""

    per_card: int = 5
    per_credential: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass
class OwnerCheck:
    """One ownership check under way: it failed unless told otherwise."""

    failed: bool = True

    def passed(self) -> None:
        """The person is the owner (or nothing was checked): it does not count."""
        self.failed = False


@asynccontextmanager
async def owner_check(
    pool: asyncpg.Pool,
    limits: OwnershipLimits,
    who: Credential,
    *,
    case_id: str,
    freezing: bool = False,
) -> AsyncIterator[OwnerCheck]:
    """Make one ownership check about the card of `case_id` (its workflow ID) inside,
    under the limits: refused (429) while the card or the credential is locked.

    A lock never stands in the safe direction: a loss report (`freezing`), or a check
    at a counter (a clerk saw the ID card), is made and counted even while locked, so
    whoever found a card cannot keep its owner from reporting it, or from lifting the
    report at a counter, by failing checks on purpose."""
    subjects = (
        (f"card:{case_id}", limits.per_card),
        (f"credential:{who.actor}", limits.per_credential),
    )
    refusable = not freezing and who.channel is not Channel.COUNTER
    counted = []  # (a check made while locked is not counted: the lock already stands)
    locked: datetime | None = None
    async with pool.acquire() as conn, conn.transaction():
        for subject, limit in subjects:
            until = await api_ownership.attempt(
                conn, subject=subject, limit=limit, window=limits.window
            )
            if until is not None and refusable:  # (rolled back: nothing counted)
                raise _locked(until)
            if until is None:
                counted.append((subject, limit))
            else:
                locked = until
    check = OwnerCheck()
    try:
        yield check
    except ApiProblem:
        if locked is not None and check.failed:  # while locked, a wrong answer tells nothing
            raise _locked(locked) from None
        raise
    finally:
        async with pool.acquire() as conn, conn.transaction():
            for subject, limit in counted:
                if not check.failed:
                    await api_ownership.passed(conn, subject=subject)
                    continue
                locked = await api_ownership.lock_if_reached(
                    conn, subject=subject, limit=limit, window=limits.window
                )
                if locked is not None:
                    await _tell_operations(conn, subject, case_id, limit, limits.window, locked)


def _locked(until: datetime) -> ApiProblem:
    wait = max(1, int((until - datetime.now(UTC)).total_seconds()) + 1)
    return ApiProblem(
        429,
        "too-many-failed-ownership-checks",
        "Too many failed ownership checks",
        "too many failed ownership checks for this card or this credential; operations "
        "were told. Try again later.",
        headers={"Retry-After": str(wait)},
    )


async def _tell_operations(
    conn: Connection,
    subject: str,
    case_id: str,
    limit: int,
    window: timedelta,
    until: datetime,
) -> None:
    kind, _, name = subject.partition(":")
    what = "该卡" if kind == "card" else f"合作方凭证 {name} "
    await casework.insert_notification(
        conn,
        dedupe_key=f"ownership-lock:{subject}:{until.isoformat()}",
        case_id=case_id,
        recipient="operations",
        recipient_ref="operations",
        template="ownership_checks_locked",
        message=render(
            "ownership_checks_locked",
            {
                "what": what,
                "minutes": str(int(window.total_seconds() // 60)),
                "n": str(limit),
                "until": beijing_cn(until),
                "case": case_id,
            },
        ),
        at=datetime.now(UTC),
    )
    log.warning(
        "ownership checks locked",
        subject=subject,
        case_id=case_id,
        failures=limit,
        until=until.isoformat(),
    )
