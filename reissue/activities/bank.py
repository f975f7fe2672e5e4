"""The cooperating bank: a separate system that can be slow or down."""

from __future__ import annotations

import asyncio
from typing import Protocol, TypeVar

import asyncpg
from temporalio.exceptions import ApplicationError

from reissue.activities.db import Connection, Idempotency, idempotent
from reissue.activities.repositories import audit, bank
from reissue.schemas.activities import (
    FREEZE_BANK_ACCOUNT,
    UNFREEZE_BANK_ACCOUNT,
    FreezeInput,
    FreezeResult,
)
from reissue.schemas.errors import BANK_UNAVAILABLE

__all__ = ["BankActivities", "BankGateway", "PostgresBankGateway"]

T = TypeVar("T")


class BankGateway(Protocol):
    """What the case needs from the bank that carries a third-generation card's account."""

    async def set_frozen(
        self, conn: Connection, card_number: str, *, frozen: bool
    ) -> tuple[str, bool]:
        """Freeze or unfreeze; returns (status after, whether it changed)."""
        ...


class PostgresBankGateway:
    """The bank's records kept in tables of their own, with an availability switch.

    Stands in for the bank's interface: when `bank_service.available` is false
    every call fails as a network error would, and `latency_ms` slows it down.
    """

    async def set_frozen(
        self, conn: Connection, card_number: str, *, frozen: bool
    ) -> tuple[str, bool]:
        state = await bank.service_state(conn)
        if state["latency_ms"]:
            await asyncio.sleep(state["latency_ms"] / 1000)
        if not state["available"]:
            # Retryable: the bank comes back, and the activity's retry policy waits for it.
            raise ApplicationError("the bank's interface is unavailable", type=BANK_UNAVAILABLE)
        current = await bank.status_of(conn, card_number)
        if current is None:
            return "none", False  # not a third-generation card: no bank account to freeze
        from_, to = ("active", "frozen") if frozen else ("frozen", "active")
        changed = await bank.set_status(conn, card_number, from_=from_, to=to)
        return (to if changed else current), changed


class BankActivities:
    def __init__(self, pool: asyncpg.Pool, gateway: BankGateway) -> None:
        self._once = Idempotency(pool)
        self._bank = gateway

    @idempotent(FREEZE_BANK_ACCOUNT, heartbeat=True)
    async def freeze_bank_account(self, conn: Connection, req: FreezeInput) -> FreezeResult:
        """Freeze the card's bank account at the cooperating bank."""
        return await self._set(conn, req, frozen=True)

    @idempotent(UNFREEZE_BANK_ACCOUNT, heartbeat=True)
    async def unfreeze_bank_account(self, conn: Connection, req: FreezeInput) -> FreezeResult:
        """Unfreeze it again when a temporary report is lifted."""
        return await self._set(conn, req, frozen=False)

    async def _set(self, conn: Connection, req: FreezeInput, *, frozen: bool) -> FreezeResult:
        status, changed = await self._bank.set_frozen(conn, req.card_number, frozen=frozen)
        await audit.record(
            conn,
            req,
            "bank_account_frozen" if frozen else "bank_account_unfrozen",
            actor="bank",
            status=status,
            report_number=req.report_number,
        )
        return FreezeResult(card_number=req.card_number, status=status, changed=changed)
