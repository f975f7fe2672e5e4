"""Rules the system of record enforces itself, and the activities' typed failures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from reissue.activities import (
    BankActivities,
    PaymentActivities,
    RegistryActivities,
)
from reissue.activities.partners import HttpBank, HttpPaymentPlatform
from reissue.activities.repositories import cards
from reissue.schemas import activities as a
from reissue.schemas.case import CaseInput
from reissue.schemas.enums import Channel, ProductionMode
from reissue.schemas.errors import PARTNER_UNAVAILABLE
from reissue.schemas.hashing import case_workflow_id
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET
from tests.activities.test_idempotency import _person, _step, case_of, snapshot
from tests.support import random_resident_id

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


def _loss(card: str, resident_id: str, **changes: Any) -> a.RegisterLossInput:
    fields: dict[str, Any] = {
        **_step(case_of(card), "register_loss"),
        "card_number": card,
        "resident_id": resident_id,
        "channel": Channel.HOTLINE_12333,
        "district": "500103",
        "reported_at": AT,
        "opened_at": AT,
    }
    return a.RegisterLossInput(**(fields | changes))


async def test_register_loss_refuses_and_writes_nothing(pool: asyncpg.Pool) -> None:
    """The system of record decides: each refusal is typed, final, and writes nothing."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    _, other_card = await _person(pool)
    before = await snapshot(pool)
    refusals = [
        # Another card's case ID: a second case for this card under another ID.
        (_loss(card, rid, case_id=case_of(other_card)), "CaseIdMismatch", "card's case ID"),
        (_loss("Z99999999", rid, case_id=case_of("Z99999999")), "CardNotFound", "no card"),
        (_loss(card, random_resident_id()), "CardOwnerMismatch", "does not belong"),
        (_loss(card, rid, district="500222"), "InvalidCaseInput", "district: district code"),
        (
            _loss(card, rid, reported_at=AT + timedelta(hours=1)),
            "InvalidCaseInput",
            "reported_at: must not be in the future",
        ),
        (
            _loss(card, rid, reported_at=AT - timedelta(days=400)),
            "InvalidCaseInput",
            "reported_at: must not be earlier than 3 days before the case opened",
        ),
    ]
    for req, error, says in refusals:
        with pytest.raises(ApplicationError) as err:
            await registry.register_loss(req)
        assert err.value.type == error and err.value.non_retryable, err.value
        assert says in err.value.message
        assert card not in err.value.message and rid not in err.value.message
    assert await snapshot(pool) == before  # nothing written, not even the idempotency key

    # Within the window the cut-off is what the caller said.
    loss = await registry.register_loss(_loss(card, rid, reported_at=AT - timedelta(hours=71)))
    assert loss.reported_at == AT - timedelta(hours=71)


async def test_one_open_case_per_card_nothing_superseded(pool: asyncpg.Pool) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    first = await registry.register_loss(_loss(card, rid))
    before = await snapshot(pool)
    with pytest.raises(ApplicationError) as err:
        await registry.register_loss(_loss(card, rid, case_id=case_of(card, "run-2")))
    assert err.value.type == "CardAlreadyReported" and err.value.non_retryable
    assert case_workflow_id(card, secret=DEV_HASH_SECRET) in err.value.message  # names the case
    assert await snapshot(pool) == before
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM loss_reports WHERE report_number = $1", first.report_number
        )
    assert status == "open"


async def test_no_policy_in_force_waits_and_tampered_policy_is_refused(pool: asyncpg.Pool) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    with pytest.raises(ApplicationError) as err:  # before any policy took effect
        await registry.register_loss(_loss(card, rid, opened_at=datetime(2020, 1, 1, tzinfo=UTC)))
    assert err.value.type == "NoPolicyInForce" and not err.value.non_retryable
    async with pool.acquire() as conn:
        for sql in (
            "UPDATE case_policies SET content = jsonb_set(content, '{max_correction_rounds}', '9')",
            "UPDATE case_policies SET content_hash = 'x'",
            "DELETE FROM case_policies",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="never changed"):
                await conn.execute(sql)
        # Only an open end may be set, once.
        await conn.execute(
            "UPDATE case_policies SET effective_to = '2027-01-01' WHERE version = 'CQ-2026.1'"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE case_policies SET effective_to = '2028-01-01' WHERE version = 'CQ-2026.1'"
            )


async def test_the_seeded_policy_is_cq_2026_1(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT content::text AS content, content_hash FROM case_policies"
            " WHERE version = 'CQ-2026.1'"
        )
    assert CasePolicy.model_validate_json(row["content"]) == CasePolicy()
    assert hashlib.sha256(row["content"].encode()).hexdigest() == row["content_hash"]


async def test_lift_only_a_temporary_report_and_never_revive_a_card(pool: asyncpg.Pool) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    loss = await registry.register_loss(_loss(card, rid, channel=Channel.COUNTER))  # formal
    await registry.freeze_card(
        a.FreezeInput(
            **_step(case_of(card), "freeze"), card_number=card, report_number=loss.report_number
        )
    )
    lifted = await registry.lift_loss_report(
        a.LiftLossInput(
            **_step(case_of(card), "lift"),
            card_number=card,
            report_number=loss.report_number,
            reason="withdrawn",
        )
    )
    assert not lifted.changed
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", card) == (
            "frozen"
        )
        assert (
            await conn.fetchval(
                "SELECT status FROM loss_reports WHERE report_number = $1", loss.report_number
            )
            == "open"
        )
    await registry.void_old_card(
        a.VoidCardInput(
            **_step(case_of(card), "void"),
            card_number=card,
            report_number=loss.report_number,
            reason="rejected",
        )
    )
    async with pool.acquire() as conn:
        for revive in ("active", "frozen", "inactive_new"):
            with pytest.raises(asyncpg.CheckViolationError, match="cannot become"):
                await conn.execute(
                    "UPDATE cards SET status = $2 WHERE card_number = $1", card, revive
                )
        row = await conn.fetchrow("SELECT * FROM authorise_card_transaction($1, 100)", card)
    assert row["authorised"] is False and row["reason"] == "card is void"

    # Applying again for the void card: a new case, formal from the start, same cut-off.
    again = await registry.register_loss(
        _loss(
            card,
            rid,
            case_id=case_of(card, "run-2"),
            reported_at=None,
            opened_at=AT + timedelta(days=30),
        )
    )
    assert again.formal and again.reported_at == loss.reported_at


async def test_bank_outage_is_retryable_and_writes_nothing(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    bank = BankActivities(pool, HttpBank(bank_url))
    _, card = await _person(pool, bank_url)
    req = a.FreezeInput(**_step("c-bank", "freeze_bank"), card_number=card, report_number="LR1")
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        (await sim.put("/_knobs", json={"down": True})).raise_for_status()
        before = await snapshot(pool)
        try:
            with pytest.raises(ApplicationError) as err:
                await bank.freeze_bank_account(req)
        finally:
            (await sim.put("/_knobs", json={"down": False})).raise_for_status()
        assert err.value.type == PARTNER_UNAVAILABLE and not err.value.non_retryable
        assert await snapshot(pool) == before
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "active"
        result = await bank.freeze_bank_account(req)
        assert result.status == "frozen" and result.changed
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "frozen"


async def test_card_without_bank_account_freezes_registry_only(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    from reissue.devtools.seed import enrol_person

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
            bank_url=bank_url,
            card_number="G00000001",
        )
    bank = BankActivities(pool, HttpBank(bank_url))
    result = await bank.freeze_bank_account(
        a.FreezeInput(**_step("c-nob", "freeze_bank"), card_number=card, report_number="LR1")
    )
    assert result.status == "none" and not result.changed


def test_a_future_report_time_and_a_free_text_policy_version_are_refused() -> None:
    """A reported time in the future and a policy version that is not a key are refused."""
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    data = {
        "applicant": {"name": "王五", "resident_id": "11010519491231002X", "mobile": "13800138000"},
        "card_number": "A12345678",
        "insured_category": "retiree",
        "district": "500103",
        "channel": "counter",
        "reported_at": future,
    }
    with pytest.raises(ValidationError, match="must not be in the future"):
        CaseInput.model_validate(data)
    with pytest.raises(ValidationError, match="may only contain"):
        CasePolicy.model_validate({"version": "CQ 2026 (draft)"})


async def test_a_refund_asks_the_platform_once_under_the_payment_s_id(
    pool: asyncpg.Pool, partner_urls: dict[str, str]
) -> None:
    pay = PaymentActivities(pool, HttpPaymentPlatform(partner_urls["payments"]))
    _, card = await _person(pool)
    case = case_of(card)
    order = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(case, "order"), amount_fen=2500, due_at=AT)
    )
    await pay.receive_payment(
        a.ReceivePaymentInput(
            **_step(case, "payment:P-9"),
            order_id=order.order_id,
            amount_fen=99,
            payment_ref="P-9",
            paid_at=AT,
            apply=True,
        )
    )
    refund = await pay.refund_payment(
        a.RefundInput(**_step(case, "refund:P-9"), payment_ref="P-9", reason="wrong amount")
    )
    assert refund.refund_id == "RF-P-9" and refund.status == "refunded"


async def test_a_district_s_own_policy_is_the_one_in_force_there(pool: asyncpg.Pool) -> None:
    from tests.support import install_policy

    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    local = await install_policy(
        pool, CasePolicy(temporary_report_validity=timedelta(days=10)), district="500112"
    )
    rid, card = await _person(pool)
    here = await registry.register_loss(
        _loss(card, rid, district="500112", opened_at=datetime.now(UTC), reported_at=None)
    )
    assert here.policy.version == local.version
    assert here.policy.temporary_report_validity == timedelta(days=10)
    rid2, card2 = await _person(pool)
    elsewhere = await registry.register_loss(
        _loss(card2, rid2, district="500103", opened_at=datetime.now(UTC), reported_at=None)
    )
    assert elsewhere.policy.version == "CQ-2026.1"


async def test_a_card_pays_only_while_active_and_every_attempt_is_kept(
    pool: asyncpg.Pool,
) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    case = case_of(card)

    async def pays(number: str) -> tuple[bool, str]:
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM authorise_card_transaction($1, 100)", number)
        return row["authorised"], row["reason"]

    assert await pays(card) == (True, "ok")
    loss = await registry.register_loss(_loss(card, rid, channel=Channel.COUNTER))
    assert await pays(card) == (False, "card is frozen")  # frozen with the loss report
    order = await registry.order_card_production(
        a.ProductionInput(
            **_step(case, "order"),
            account_id=loss.account_id,
            old_card_number=card,
            mode=ProductionMode.INSTANT,
            district="500103",
        )
    )
    new = order.new_card_number
    assert new is not None and order.status == "produced"
    assert await pays(new) == (False, "card is inactive_new")  # printed, not yet collected
    async with pool.acquire() as conn:
        code = await conn.fetchval("SELECT card_id_code FROM cards WHERE card_number = $1", new)
    assert code is not None and len(code) == 32  # written on the chip at the counter
    await registry.activate_new_card(
        a.ActivateCardInput(
            **_step(case, "activate"),
            old_card_number=card,
            new_card_number=new,
            report_number=loss.report_number,
        )
    )
    assert await pays(new) == (True, "ok")
    assert await pays(card) == (False, "card is replaced")
    assert await pays("Z00000000") == (False, "unknown card")
    async with pool.acquire() as conn:
        kept = await conn.fetch(
            "SELECT card_number, authorised FROM card_transactions"
            " WHERE card_number = ANY($1::text[]) ORDER BY id",
            [card, new],
        )
    assert [(r["card_number"] == card, r["authorised"]) for r in kept] == [
        (True, True),
        (True, False),
        (False, False),
        (False, True),
        (True, False),
    ]


async def test_a_bureau_report_the_registry_cannot_take_is_refused_as_such(
    pool: asyncpg.Pool,
) -> None:
    """A card number already in use, a chip code already on another card, an order that
    is not ordered or not the case's: typed, final refusals the case keeps as anomalies."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    _, someone_else = await _person(pool)
    case = case_of(card)
    loss = await registry.register_loss(_loss(card, rid))
    async with pool.acquire() as conn:
        order_id = await conn.fetchval(
            "INSERT INTO production_orders (order_id, case_id, account_id, old_card_number,"
            " mode, status, district, ordered_at) VALUES ('PD20261125999001', $1, $2, $3,"
            " 'standard', 'ordered', '500103', $4) RETURNING order_id",
            case,
            loss.account_id,
            card,
            AT,
        )

    def produced(step: str, number: str, **changes: Any) -> a.CardProducedInput:
        code = changes.pop("card_id_code", None)
        return a.CardProducedInput(
            **(_step(case, step) | changes),
            order_id=order_id,
            account_id=loss.account_id,
            new_card_number=number,
            produced_at=AT,
            card_id_code=code,
        )

    before = await snapshot(pool)
    refusals = [
        (produced("p1", someone_else), "CardNumberConflict", "already in use"),
        (
            produced("p2", "N00000001", case_id=case_of(someone_else)),
            "OrderStateConflict",
            "no such",
        ),
    ]
    for req, error, says in refusals:
        with pytest.raises(ApplicationError) as err:
            await registry.record_card_produced(req)
        assert err.value.type == error and err.value.non_retryable and says in err.value.message
    assert await snapshot(pool) == before
    done = await registry.record_card_produced(produced("p3", "N00000002", card_id_code="A" * 32))
    assert done.changed
    with pytest.raises(ApplicationError) as err:  # the order is produced now
        await registry.record_production_failed(
            a.ProductionFailedInput(
                **_step(case, "failed"), order_id=order_id, reason="late", failed_at=AT
            )
        )
    assert err.value.type == "OrderStateConflict" and err.value.non_retryable


async def test_the_door_finds_a_case_s_open_report_by_an_index(pool: asyncpg.Pool) -> None:
    """The front door knows a case by its workflow ID only (card-found, `/formal`): the
    open report it holds, and its owner, are found through an index, not by reading
    every open report (one such read per ownership check)."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    for _ in range(40):  # open cases enough that reading them all shows in the plan
        rid, card = await _person(pool)
        await registry.register_loss(_loss(card, rid))
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE loss_reports")
    workflow_id = case_of(card).split(":", 1)[0]
    asked: list[tuple[str, tuple[Any, ...]]] = []

    def logged(q: Any) -> None:
        asked.append((q.query, q.args))

    async with pool.acquire() as conn:
        conn.add_query_logger(logged)
        contact = await cards.open_report_contact(conn, workflow_id)
        owner = await cards.open_report_owner(conn, workflow_id)
        conn.remove_query_logger(logged)
    assert contact is not None and contact["card_number"] == card
    assert owner == contact["person_key"]
    assert asked
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        for query, args in asked:
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {query}", *args))
            assert "loss_reports_open_case" in plan, plan
