"""The switch to the real partner systems: a case opened while our stand-ins kept the
bank freeze, or were to make the card, gets the freeze confirmed at the bank and its
order sent to the bureau, once, however often operations run the tool."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx

from reissue.activities.partners import HttpBank, HttpCardBureau
from reissue.activities.repositories import production
from reissue.devtools.seed import enrol_person
from reissue.ops.partner_switch import confirm_legacy_freezes, send_unsent_orders
from reissue.schemas.identifiers import mask_card_number
from reissue.workers.settings import DEV_HASH_SECRET
from tests.support import random_card_number, random_resident_id


async def _legacy_case(
    pool: asyncpg.Pool, n: int, *, bank_url: str | None, report: str = "open"
) -> str:
    """A card whose loss report was taken, and bank freeze recorded, by the old code."""
    async with pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=DEV_HASH_SECRET,
            resident_id=random_resident_id(),
            insured_category="urban_employee",
            district="500103",
            balance_fen=100,
            bank_url=bank_url,
            card_number=random_card_number(),
        )
        await conn.execute(
            "INSERT INTO bank_accounts_legacy (card_number, bank, status) VALUES ($1, 'CQRCB', 'frozen')",
            card,
        )
        await conn.execute(
            "INSERT INTO loss_reports (report_number, case_id, card_number, channel, kind, status,"
            " reported_at) VALUES ($1, $2, $3, 'counter', 'formal', $4, $5)",
            f"LR2026110100000{n}",
            f"reissue-legacy{n}:run",
            card,
            report,
            datetime.now(UTC),
        )
    return card


async def test_legacy_freezes_are_confirmed_at_the_bank_once(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    open_case = await _legacy_case(pool, 1, bank_url=bank_url)
    await _legacy_case(pool, 2, bank_url=bank_url, report="lifted")  # closed: not asked
    no_account = await _legacy_case(pool, 3, bank_url=None)
    bank = HttpBank(bank_url)

    first = await confirm_legacy_freezes(pool, bank)
    again = await confirm_legacy_freezes(pool, bank)

    assert first.confirmed == again.confirmed == [mask_card_number(open_case)]
    assert first.no_account == [mask_card_number(no_account)] and not first.done
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        assert (await sim.get(f"/_accounts/{open_case}")).json()["status"] == "frozen"
    async with pool.acquire() as conn:
        events = await conn.fetch(
            "SELECT detail->>'status' AS status FROM case_events"
            " WHERE case_id = 'reissue-legacy1:run' AND event_type = 'bank_account_frozen'"
        )
    assert [e["status"] for e in events] == ["frozen"]  # written once


async def test_a_bank_that_does_not_answer_leaves_the_confirmation_to_do(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    card = await _legacy_case(pool, 4, bank_url=bank_url)
    found = await confirm_legacy_freezes(pool, HttpBank("http://127.0.0.1:9"))
    assert found.confirmed == [] and not found.done
    assert found.failed[0].startswith(mask_card_number(card))


async def test_open_orders_of_the_old_stand_in_are_sent_to_the_bureau_once(
    pool: asyncpg.Pool, partner_urls: dict[str, str]
) -> None:
    card = await _legacy_case(pool, 5, bank_url=None)
    async with pool.acquire() as conn:
        account = await conn.fetchval("SELECT account_id FROM cards WHERE card_number = $1", card)
        order = await production.create_order(
            conn,
            case_id="reissue-legacy5:run",
            account_id=account,
            old_card_number=card,
            mode="standard",
            district="500103",
            at=datetime.now(UTC),
        )
    bureau = HttpCardBureau(partner_urls["bureau"])
    first = await send_unsent_orders(pool, bureau)
    again = await send_unsent_orders(pool, bureau)
    assert first.sent == [order["order_id"]] and again.sent == [] and first.done
    async with httpx.AsyncClient(base_url=partner_urls["bureau"]) as sim:
        at_bureau = (await sim.get("/_orders")).json()
    assert [(o["order_id"], o["case_id"]) for o in at_bureau] == [
        (order["order_id"], "reissue-legacy5")
    ]
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT sent_at IS NOT NULL FROM production_orders WHERE order_id = $1",
            order["order_id"],
        )
