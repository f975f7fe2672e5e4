"""Finding a case from what staff know: a loss report number, a card number, or a person
by the keyed hash of their resident ID (the registry keeps no ID number in plaintext).
Answers are case IDs (`<workflow ID>:<run ID>`), the latest report first."""

from __future__ import annotations

from reissue.activities.db import Connection

__all__ = ["cases_of_card", "cases_of_person", "cases_of_report"]


async def cases_of_report(conn: Connection, report_number: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT case_id FROM loss_reports WHERE report_number = $1", report_number
    )
    return [r["case_id"] for r in rows]


async def cases_of_card(conn: Connection, card_number: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT case_id FROM loss_reports WHERE card_number = $1 ORDER BY reported_at DESC",
        card_number,
    )
    return [r["case_id"] for r in rows]


async def cases_of_person(conn: Connection, person_key: str) -> list[str]:
    """Every case on a card of any account of the person (`person_key`: the keyed hash)."""
    rows = await conn.fetch(
        "SELECT r.case_id FROM insured_accounts a"
        " JOIN cards c ON c.account_id = a.account_id"
        " JOIN loss_reports r ON r.card_number = c.card_number"
        " WHERE a.person_key = $1 ORDER BY r.reported_at DESC",
        person_key,
    )
    return [r["case_id"] for r in rows]
