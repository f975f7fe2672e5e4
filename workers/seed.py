"""Enrol insured people in the registry: demo data, tests and first-time setup share this."""

from __future__ import annotations

import asyncpg

from schemas.hashing import person_key

__all__ = ["enrol_person", "new_card_number"]


async def new_card_number(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT next_card_number()"))


async def enrol_person(
    conn: asyncpg.Connection,
    *,
    secret: str,
    resident_id: str,
    insured_category: str,
    district: str,
    balance_fen: int,
    bank: str | None = "Chongqing Rural Commercial Bank",
    card_number: str | None = None,
) -> str:
    """An account with one active card (and, for third-generation cards, a bank account)."""
    async with conn.transaction():
        card = card_number or await new_card_number(conn)
        account_id = "AC" + card
        await conn.execute(
            "INSERT INTO insured_accounts (account_id, person_key, insured_category, district,"
            " balance_fen) VALUES ($1, $2, $3, $4, $5)",
            account_id,
            person_key(resident_id, secret=secret),
            insured_category,
            district,
            balance_fen,
        )
        await conn.execute(
            "INSERT INTO cards (card_number, account_id, status) VALUES ($1, $2, 'active')",
            card,
            account_id,
        )
        if bank:
            await conn.execute(
                "INSERT INTO bank_accounts (card_number, bank, status) VALUES ($1, $2, 'active')",
                card,
                bank,
            )
    return card
