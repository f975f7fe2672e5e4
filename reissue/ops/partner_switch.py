"""The switch to the real partner systems, for cases open at the switch.

- The bank: cases opened before it was reached over HTTP had their bank freeze
  recorded only in our own stand-in (`bank_accounts_legacy`). `confirm_legacy_freezes`
  asks the real bank to freeze each such card whose loss report is still open (keyed
  per report, so running it again changes nothing) and writes the answer to the case's
  audit log. When nothing is left to do, a later migration may drop the legacy table.
- The card bureau: standard orders still open at the switch were for the stand-in
  that read our table; `send_unsent_orders` sends them to the bureau (keyed by the
  order ID, as the case would have) and marks them sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from temporalio.exceptions import ApplicationError

from reissue.activities.bank import BankGateway
from reissue.activities.registry import CardBureau
from reissue.activities.repositories import audit, production
from reissue.schemas.identifiers import mask_card_number

__all__ = ["LegacyFreezes", "UnsentOrders", "confirm_legacy_freezes", "send_unsent_orders"]


@dataclass
class LegacyFreezes:
    """What the confirmation found: cards (masked) by outcome."""

    confirmed: list[str] = field(default_factory=list)
    no_account: list[str] = field(default_factory=list)  # the bank knows no such account
    failed: list[str] = field(default_factory=list)  # the bank did not answer: run again

    @property
    def done(self) -> bool:
        return not self.no_account and not self.failed


async def confirm_legacy_freezes(pool: asyncpg.Pool, bank: BankGateway) -> LegacyFreezes:
    """Freeze at the bank every card frozen only in the legacy stand-in whose loss
    report is still open."""
    async with pool.acquire() as conn:
        legacy = await conn.fetchval("SELECT to_regclass('bank_accounts_legacy') IS NOT NULL")
        rows = (
            await conn.fetch(
                "SELECT l.card_number, r.report_number, r.case_id"
                " FROM bank_accounts_legacy l"
                " JOIN loss_reports r ON r.card_number = l.card_number AND r.status = 'open'"
                " WHERE l.status = 'frozen' ORDER BY r.report_number"
            )
            if legacy
            else []
        )
    found = LegacyFreezes()
    for row in rows:
        card, key = row["card_number"], f"legacy-freeze:{row['report_number']}"
        try:
            status, _ = await bank.set_frozen(card, frozen=True, key=key)
        except ApplicationError as e:
            found.failed.append(f"{mask_card_number(card)} ({e.message})")
            continue
        if status == "none":
            found.no_account.append(mask_card_number(card))
            continue
        async with pool.acquire() as conn:
            await audit.append(
                conn,
                dedupe_key=f"{row['case_id']}:{key}",
                case_id=row["case_id"],
                event_type="bank_account_frozen",
                actor="bank",
                detail={"status": status, "report_number": row["report_number"], "legacy": True},
                at=datetime.now(UTC),
            )
        found.confirmed.append(mask_card_number(card))
    return found


@dataclass
class UnsentOrders:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # not taken: run again, or see why

    @property
    def done(self) -> bool:
        return not self.failed


async def send_unsent_orders(pool: asyncpg.Pool, bureau: CardBureau) -> UnsentOrders:
    """Send the bureau every open standard order it was never sent."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT order_id, case_id, account_id, district FROM production_orders"
            " WHERE mode = 'standard' AND status = 'ordered' AND sent_at IS NULL"
            " ORDER BY ordered_at"
        )
    found = UnsentOrders()
    for row in rows:
        try:
            await bureau.order(
                order_id=row["order_id"],
                case_id=row["case_id"].split(":", 1)[0],
                account_id=row["account_id"],
                district=row["district"],
            )
        except ApplicationError as e:
            found.failed.append(f"{row['order_id']} ({e.message})")
            continue
        await production.mark_sent(pool, row["order_id"])
        found.sent.append(row["order_id"])
    return found
