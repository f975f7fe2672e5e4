"""Standing loss reports: a case ended (cancelled) while its temporary report was still
valid, so the report stood and the card stayed frozen, in the registry and at the bank.
When its validity runs out by the registry's clock, the registry lifts it itself: this
sweep unfreezes the bank account (keyed, so a repeat changes nothing) and the card, and
records it. A new case on the card takes a standing report over instead (`register_loss`).
"""

from __future__ import annotations

import asyncpg
import structlog

from reissue.activities.bank import BankGateway
from reissue.activities.repositories import audit, cards

__all__ = ["lapse_standing_reports"]

log = structlog.get_logger(__name__)

LAPSED = "its validity ran out after the case ended"


async def lapse_standing_reports(pool: asyncpg.Pool, bank: BankGateway, *, limit: int = 20) -> int:
    """Lift the standing reports that have run out; returns how many were lifted.

    Each report in a transaction of its own, locked with its card (a report or card
    held elsewhere is skipped until a later sweep, never waited on); the bank is
    asked while the lock is held, so the registry unfreezes the card only once the bank
    did. A bank that fails leaves the report standing for the next sweep."""
    lifted = 0
    for _ in range(limit):
        async with pool.acquire() as conn, conn.transaction():
            due = await cards.standing_run_out(conn, limit=1)
            if not due:
                break
            report = due[0]
            card = report["card_number"]
            key = f"{report['report_number']}:standing-lapsed"
            if await cards.bank_of(conn, card) is not None:
                try:
                    status, _ = await bank.set_frozen(card, frozen=False, key=key)
                except Exception as e:  # down or slow: the next sweep asks again
                    log.warning("bank: standing report not unfrozen yet", error=type(e).__name__)
                    break
                await audit.append(
                    conn,
                    dedupe_key=f"{key}:bank",
                    case_id=report["case_id"],
                    event_type="bank_account_unfrozen",
                    actor="bank",
                    detail={"report_number": report["report_number"], "status": status},
                    at=report["valid_until"],
                )
            await cards.end_standing(conn, report["report_number"], status="lifted", reason=LAPSED)
            await cards.set_status(conn, card, from_="frozen", to="active")
            await audit.append(
                conn,
                dedupe_key=key,
                case_id=report["case_id"],
                event_type="loss_report_lifted",
                actor="registry",
                detail={"report_number": report["report_number"], "reason": LAPSED},
                at=report["valid_until"],
            )
            lifted += 1
    if lifted:
        log.info("standing loss reports lifted", n=lifted)
    return lifted
