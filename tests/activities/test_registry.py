"""Rules the system of record enforces itself, and the activities' typed failures."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities import BankActivities, PaymentActivities, PostgresBankGateway, RegistryActivities
from schemas import activities as a
from schemas.enums import Channel
from tests.activities.test_idempotency import _person, _step, snapshot
from tests.support import random_resident_id
from workers.settings import DEV_HASH_SECRET

AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


async def test_audit_log_is_append_only(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO case_events (dedupe_key, case_id, event_type, actor, detail, occurred_at)"
            " VALUES ('k1', 'c1', 'note', 'ops', '{}', now())"
        )
        for sql in (
            "UPDATE case_events SET actor = 'someone else'",
            "DELETE FROM case_events",
            "TRUNCATE case_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT actor FROM case_events WHERE dedupe_key = 'k1'") == "ops"


async def test_one_active_card_per_account(pool: asyncpg.Pool) -> None:
    _, card = await _person(pool)
    async with pool.acquire() as conn:
        account = await conn.fetchval("SELECT account_id FROM cards WHERE card_number = $1", card)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO cards (card_number, account_id, status) VALUES ('X00000001', $1,"
                " 'active')",
                account,
            )


async def test_register_loss_refuses_unknown_card_and_wrong_owner(pool: asyncpg.Pool) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    before = await snapshot(pool)
    for card_number, resident_id, error in (
        ("Z99999999", rid, "CardNotFound"),
        (card, random_resident_id(), "CardOwnerMismatch"),
    ):
        with pytest.raises(ApplicationError) as err:
            await registry.register_loss(
                a.RegisterLossInput(
                    **_step("c-err", f"register_loss:{error}"),
                    card_number=card_number,
                    resident_id=resident_id,
                    channel=Channel.COUNTER,
                    district="500103",
                    reported_at=AT,
                )
            )
        assert err.value.type == error and err.value.non_retryable
    assert await snapshot(pool) == before  # nothing written, not even the idempotency key


async def test_payment_with_wrong_amount_is_refused(pool: asyncpg.Pool) -> None:
    pay = PaymentActivities(pool)
    order = await pay.create_payment_order(
        a.CreatePaymentInput(**_step("c-pay", "create"), amount_fen=2500, due_at=AT)
    )
    with pytest.raises(ApplicationError) as err:
        await pay.record_payment(
            a.RecordPaymentInput(
                **_step("c-pay", "pay"),
                order_id=order.order_id,
                amount_fen=2499,
                payment_ref="PAY-9",
                paid_at=AT,
            )
        )
    assert err.value.type == "PaymentMismatch" and err.value.non_retryable
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT status FROM payment_orders WHERE order_id = $1", order.order_id
            )
            == "open"
        )


async def test_bank_outage_is_retryable_and_writes_nothing(pool: asyncpg.Pool) -> None:
    bank = BankActivities(pool, PostgresBankGateway())
    _, card = await _person(pool)
    req = a.FreezeInput(**_step("c-bank", "freeze_bank"), card_number=card, report_number="LR1")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE bank_service SET available = false")
    before = await snapshot(pool)
    with pytest.raises(ApplicationError) as err:
        await bank.freeze_bank_account(req)
    assert err.value.type == "BankUnavailable" and not err.value.non_retryable
    assert await snapshot(pool) == before
    async with pool.acquire() as conn:
        await conn.execute("UPDATE bank_service SET available = true")
    result = await bank.freeze_bank_account(req)
    assert result.status == "frozen" and result.changed


async def test_card_without_bank_account_freezes_registry_only(pool: asyncpg.Pool) -> None:
    from workers.seed import enrol_person

    rid = random_resident_id()
    async with pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=DEV_HASH_SECRET,
            resident_id=rid,
            insured_category="retiree",
            district="500101",
            balance_fen=0,
            bank=None,
            card_number="G00000001",
        )
    bank = BankActivities(pool, PostgresBankGateway())
    result = await bank.freeze_bank_account(
        a.FreezeInput(**_step("c-nob", "freeze_bank"), card_number=card, report_number="LR1")
    )
    assert result.status == "none" and not result.changed
