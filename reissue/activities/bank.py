"""The cooperating bank: a separate system, reached over HTTP, that can be slow or down."""

from __future__ import annotations

from typing import Protocol

import asyncpg
from temporalio.exceptions import ApplicationError

from reissue.activities.db import Connection, Idempotency, partner_step
from reissue.activities.repositories import audit, cards
from reissue.schemas.activities import (
    FREEZE_BANK_ACCOUNT,
    MOVE_BANK_ACCOUNT,
    UNFREEZE_BANK_ACCOUNT,
    BankAccountMove,
    FreezeInput,
    FreezeResult,
    MoveBankAccountInput,
)
from reissue.schemas.errors import PARTNER_UNAVAILABLE

__all__ = ["BankActivities", "BankGateway"]


class BankGateway(Protocol):
    """What the case needs from the bank that carries a third-generation card's account."""

    async def set_frozen(self, card_number: str, *, frozen: bool, key: str) -> tuple[str, bool]:
        """Freeze or unfreeze, keyed by `key`; returns (status after, whether it changed)."""
        ...

    async def open_account(self, card_number: str, *, previous: str, key: str) -> str:
        """An account for a new card on the same medical insurance account as `previous`;
        returns how the bank did it (`migrated`, `opened` or `exists`)."""
        ...

    async def close_account(self, card_number: str, *, key: str) -> str:
        """Close a card's account; returns its status after (`none`: there was none)."""
        ...


class BankActivities:
    """The bank's steps: the bank is asked first (no transaction open while it answers,
    the call keyed by the step), then its answer is recorded with the step's key."""

    def __init__(self, pool: asyncpg.Pool, gateway: BankGateway) -> None:
        self._once = Idempotency(pool)
        self._bank = gateway

    @partner_step(FREEZE_BANK_ACCOUNT)
    async def freeze_bank_account(self, req: FreezeInput) -> FreezeResult:
        """Freeze the card's bank account at the cooperating bank."""
        return await self._set(req, frozen=True)

    @partner_step(UNFREEZE_BANK_ACCOUNT)
    async def unfreeze_bank_account(self, req: FreezeInput) -> FreezeResult:
        """Unfreeze it again when a temporary report is lifted."""
        return await self._set(req, frozen=False)

    @partner_step(MOVE_BANK_ACCOUNT)
    async def move_bank_account(self, req: MoveBankAccountInput) -> BankAccountMove:
        """The new card gets its bank account (the old one's, migrated, or a new one on
        the same medical insurance account, as the bank answers); the old card's closes."""
        done = await self._once.stored(req.key, BankAccountMove)
        if done is not None:
            return done
        bank = await self._bank_of(req.old_card_number)
        if bank is None:  # not a third-generation card: no bank account to move
            mode, old = "none", "none"
        else:
            mode = await self._bank.open_account(
                req.new_card_number, previous=req.old_card_number, key=f"{req.key}:open"
            )
            old = await self._bank.close_account(req.old_card_number, key=f"{req.key}:close")

        async def record(conn: Connection) -> BankAccountMove:
            if bank is not None:
                await conn.execute(
                    "UPDATE cards SET bank = $2 WHERE card_number = $1", req.new_card_number, bank
                )
                await audit.record(
                    conn, req, "bank_account_moved", actor="bank", mode=mode, old_account=old
                )
            return BankAccountMove(mode=mode, old_account=old)

        return await self._once.run(req.key, MOVE_BANK_ACCOUNT.name, BankAccountMove, record)

    async def _bank_of(self, card_number: str) -> str | None:
        async with self._once.pool.acquire() as conn:
            return await cards.bank_of(conn, card_number)

    async def _kept_frozen(self, req: FreezeInput) -> FreezeResult:
        """The case ended but the owner's temporary report stands: the account stays
        frozen with the card (the registry's sweep unfreezes both when it runs out)."""

        async def record(conn: Connection) -> FreezeResult:
            await audit.record(
                conn,
                req,
                "bank_account_frozen",
                actor="bank",
                status="frozen",
                report_number=req.report_number,
                kept="the temporary loss report stands",
            )
            return FreezeResult(card_number=req.card_number, status="frozen", changed=False)

        return await self._once.run(req.key, UNFREEZE_BANK_ACCOUNT.name, FreezeResult, record)

    async def _set(self, req: FreezeInput, *, frozen: bool) -> FreezeResult:
        defn = FREEZE_BANK_ACCOUNT if frozen else UNFREEZE_BANK_ACCOUNT
        done = await self._once.stored(req.key, FreezeResult)
        if done is not None:
            return done
        async with self._once.pool.acquire() as conn:  # what the registry says, at once
            stands = not frozen and await cards.report_stands(conn, req.report_number)
            bank = await cards.bank_of(conn, req.card_number)
        if stands:
            return await self._kept_frozen(req)
        if bank is None:  # not a third-generation card: no bank account, nothing to ask
            status, changed = "none", False
        else:
            status, changed = await self._bank.set_frozen(
                req.card_number, frozen=frozen, key=req.key
            )
        if bank is not None and status == "none":  # never taken as done
            raise ApplicationError(
                "bank: no account found for a third-generation card", type=PARTNER_UNAVAILABLE
            )

        async def record(conn: Connection) -> FreezeResult:
            await audit.record(
                conn,
                req,
                "bank_account_frozen" if frozen else "bank_account_unfrozen",
                actor="bank",
                status=status,
                report_number=req.report_number,
            )
            return FreezeResult(card_number=req.card_number, status=status, changed=changed)

        return await self._once.run(req.key, defn.name, FreezeResult, record)
