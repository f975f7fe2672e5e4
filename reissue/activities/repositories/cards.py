"""Cards in the registry and the loss reports on them."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from reissue.activities.db import Connection

__all__ = [
    "activate_replacement",
    "bank_of",
    "card_owner",
    "close_report",
    "create_report",
    "end_standing",
    "find_card",
    "find_open_report",
    "formalise_report",
    "get_report",
    "insert_new_card",
    "last_report",
    "leave_standing",
    "lift_temporary_report",
    "open_report_contact",
    "open_report_owner",
    "report_stands",
    "set_status",
    "standing_report",
    "standing_run_out",
]


async def find_card(conn: Connection, card_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.card_number, c.account_id, c.status, a.person_key, a.balance_fen"
        " FROM cards c JOIN insured_accounts a USING (account_id)"
        " WHERE c.card_number = $1 FOR UPDATE OF c",
        card_number,
    )


async def bank_of(conn: Connection, card_number: str) -> str | None:
    """The bank that carries the card's account (None: not a third-generation card)."""
    bank: str | None = await conn.fetchval(
        "SELECT bank FROM cards WHERE card_number = $1", card_number
    )
    return bank


async def card_owner(conn: Connection, card_number: str) -> str | None:
    """The person key of the card's owner; None if the registry has no such card."""
    owner: str | None = await conn.fetchval(
        "SELECT a.person_key FROM cards c JOIN insured_accounts a USING (account_id)"
        " WHERE c.card_number = $1",
        card_number,
    )
    return owner


async def open_report_owner(conn: Connection, workflow_id: str) -> str | None:
    """The person key of the owner of the card whose open loss report this case holds
    (any run of the workflow); None if it holds none."""
    held = await open_report_contact(conn, workflow_id)
    return None if held is None else str(held["person_key"])


async def open_report_contact(conn: Connection, workflow_id: str) -> asyncpg.Record | None:
    """The open loss report this case holds (any run of the workflow), with what the
    registry keeps of the card's owner: `card_number`, `kind`, `account_id`,
    `person_key` and `mobile_sealed` (NULL: no mobile on record). None if it holds none.
    (Found through `loss_reports_open_case`: the front door knows a case by its ID only.)"""
    return await conn.fetchrow(
        "SELECT r.card_number, r.kind, a.account_id, a.person_key, a.mobile_sealed"
        " FROM loss_reports r JOIN cards c USING (card_number)"
        " JOIN insured_accounts a USING (account_id)"
        " WHERE split_part(r.case_id, ':', 1) = $1 AND r.status = 'open'",
        workflow_id,
    )


async def set_status(conn: Connection, card_number: str, *, from_: str, to: str) -> bool:
    """Move a card from one status to another; False if it was not in `from_`."""
    done = await conn.fetchval(
        "UPDATE cards SET status = $3, updated_at = now()"
        " WHERE card_number = $1 AND status = $2 RETURNING true",
        card_number,
        from_,
        to,
    )
    return bool(done)


async def insert_new_card(
    conn: Connection, card_number: str, account_id: str, *, card_id_code: str
) -> None:
    await conn.execute(
        "INSERT INTO cards (card_number, account_id, status, card_id_code)"
        " VALUES ($1, $2, 'inactive_new', $3)",
        card_number,
        account_id,
        card_id_code,
    )


async def activate_replacement(conn: Connection, *, old_card: str, new_card: str) -> bool:
    """Old card replaced, new card active; one statement each, in the order the index needs."""
    replaced = await conn.fetchval(
        "UPDATE cards SET status = 'replaced', replaced_by = $2, updated_at = now()"
        " WHERE card_number = $1 AND status IN ('frozen', 'void') RETURNING true",
        old_card,
        new_card,
    )
    activated = await conn.fetchval(
        "UPDATE cards SET status = 'active', updated_at = now()"
        " WHERE card_number = $1 AND status = 'inactive_new' RETURNING true",
        new_card,
    )
    return bool(replaced) and bool(activated)


async def find_open_report(conn: Connection, card_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM loss_reports WHERE card_number = $1 AND status = 'open' FOR UPDATE",
        card_number,
    )


async def last_report(conn: Connection, card_number: str) -> asyncpg.Record | None:
    """The card's most recent loss report, whatever its status."""
    return await conn.fetchrow(
        "SELECT * FROM loss_reports WHERE card_number = $1 ORDER BY reported_at DESC, "
        " report_number DESC LIMIT 1",
        card_number,
    )


async def lift_temporary_report(
    conn: Connection, report_number: str, *, card_number: str, reason: str, at: datetime
) -> bool:
    """Close an open temporary report on this card; False if there is none (formal, or closed)."""
    done = await conn.fetchval(
        "UPDATE loss_reports SET status = 'lifted', closed_at = $3, close_reason = $4"
        " WHERE report_number = $1 AND card_number = $2 AND status = 'open'"
        "   AND kind = 'temporary' RETURNING true",
        report_number,
        card_number,
        at,
        reason,
    )
    return bool(done)


async def leave_standing(
    conn: Connection, report_number: str, *, card_number: str, reason: str, at: datetime
) -> datetime | None:
    """The case ended without the owner's word: an open temporary report still valid by
    the registry's clock stands (the card stays frozen) until it runs out. Returns the
    time it stands until, or None when there is no such report."""
    until: datetime | None = await conn.fetchval(
        "UPDATE loss_reports SET status = 'standing', closed_at = $3, close_reason = $4"
        " WHERE report_number = $1 AND card_number = $2 AND status = 'open'"
        "   AND kind = 'temporary' AND valid_until > now() RETURNING valid_until",
        report_number,
        card_number,
        at,
        reason,
    )
    return until


async def report_stands(conn: Connection, report_number: str) -> bool:
    """Whether the card of this report must stay frozen whatever its case does: the
    report stands, or a later case took it over, or another report on the card is
    open or standing (a late step of an earlier case never unfreezes a later one's)."""
    stands = await conn.fetchval(
        "SELECT l.status IN ('standing', 'continued') OR EXISTS (SELECT 1 FROM loss_reports o"
        "   WHERE o.card_number = l.card_number AND o.report_number <> l.report_number"
        "   AND o.status IN ('open', 'standing'))"
        " FROM loss_reports l WHERE l.report_number = $1",
        report_number,
    )
    return bool(stands)


async def standing_report(conn: Connection, card_number: str) -> asyncpg.Record | None:
    """The card's standing report (at most one: it stood when the card's last case ended)."""
    return await conn.fetchrow(
        "SELECT * FROM loss_reports WHERE card_number = $1 AND status = 'standing' FOR UPDATE",
        card_number,
    )


async def end_standing(conn: Connection, report_number: str, *, status: str, reason: str) -> bool:
    """A standing report ends: `continued` by a new case, or `lifted` when it ran out."""
    done = await conn.fetchval(
        "UPDATE loss_reports SET status = $2, close_reason = close_reason || '; ' || $3"
        " WHERE report_number = $1 AND status = 'standing' RETURNING true",
        report_number,
        status,
        reason,
    )
    return bool(done)


async def standing_run_out(conn: Connection, *, limit: int) -> list[asyncpg.Record]:
    """Standing reports whose validity has run out by the registry's clock, locked for
    this sweep with their cards. A report or card held elsewhere (another sweep, or a
    registry step, which locks the card first) is skipped, never waited on: the sweep
    takes the two in one statement, so it cannot deadlock with a step."""
    return await conn.fetch(
        "SELECT l.* FROM loss_reports l JOIN cards c USING (card_number)"
        " WHERE l.status = 'standing' AND l.valid_until <= now()"
        " ORDER BY l.valid_until LIMIT $1 FOR UPDATE OF l, c SKIP LOCKED",
        limit,
    )


async def get_report(conn: Connection, report_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM loss_reports WHERE report_number = $1 FOR UPDATE", report_number
    )


async def create_report(
    conn: Connection,
    *,
    case_id: str,
    card_number: str,
    channel: str,
    formal: bool,
    reported_at: datetime,
    valid_until: datetime | None,
) -> str:
    """A new open report; `valid_until` is a temporary report's end (None when formal)."""
    return str(
        await conn.fetchval(
            "INSERT INTO loss_reports"
            " (report_number, case_id, card_number, channel, kind, status, reported_at,"
            "  formalised_at, valid_until)"
            " VALUES ('LR' || to_char($5 AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')"
            "         || lpad(nextval('loss_report_seq')::text, 6, '0'),"
            "         $1, $2, $3, $4, 'open', $5, CASE WHEN $4 = 'formal' THEN $5 END,"
            "         CASE WHEN $4 = 'temporary' THEN $6::timestamptz END)"
            " RETURNING report_number",
            case_id,
            card_number,
            channel,
            "formal" if formal else "temporary",
            reported_at,
            valid_until,
        )
    )


async def formalise_report(conn: Connection, report_number: str, at: datetime) -> bool:
    done = await conn.fetchval(
        "UPDATE loss_reports SET kind = 'formal', formalised_at = $2"
        " WHERE report_number = $1 AND status = 'open' AND kind = 'temporary' RETURNING true",
        report_number,
        at,
    )
    return bool(done)


async def close_report(
    conn: Connection, report_number: str, *, status: str, reason: str, at: datetime
) -> bool:
    done = await conn.fetchval(
        "UPDATE loss_reports SET status = $2, closed_at = $3, close_reason = $4"
        " WHERE report_number = $1 AND status = 'open' RETURNING true",
        report_number,
        status,
        at,
        reason,
    )
    return bool(done)
