"""Every activity, run twice with the same input, changes the database once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pydantic import BaseModel

from reissue.activities import (
    BankActivities,
    CaseworkActivities,
    PaymentActivities,
    RegistryActivities,
    all_activities,
)
from reissue.devtools.seed import enrol_person
from reissue.schemas import activities as a
from reissue.schemas.enums import Channel, InsuredCategory, ProductionMode, Recipient, ReviewVerdict
from reissue.schemas.hashing import case_workflow_id
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import partners_over_http
from tests.support import materials, random_card_number, random_resident_id

AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

TABLES = [
    "insured_accounts",
    "cards",
    "loss_reports",
    "affiliation_requests",
    "material_submissions",
    "review_decisions",
    "payment_orders",
    "production_orders",
    "notifications",
    "activity_runs",
    "case_events",
    "card_transactions",
    "case_policies",
    "payments",
    "refunds",
]


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, minus the insertion timestamps the database sets itself."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with pool.acquire() as conn:
        for table in TABLES:
            rows = await conn.fetch(f"SELECT * FROM {table}")
            out[table] = sorted(
                tuple(v for k, v in r.items() if k not in ("recorded_at",)) for r in rows
            )
    return out


def activity_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


class Twice:
    """Runs an activity, then again with the same input, and checks nothing changed;
    then a third time as the local activity the workflow runs it as (when it has one),
    which answers with the same input and result and changes nothing either."""

    def __init__(self, pool: asyncpg.Pool, registered: Iterable[Callable[..., Any]] = ()) -> None:
        self.pool = pool
        self.covered: set[str] = set()
        self.local = {activity_name(fn): fn for fn in registered}

    async def __call__(self, fn: Callable[[Any], Awaitable[BaseModel]], req: BaseModel) -> Any:
        first = await fn(req)
        after_first = await snapshot(self.pool)
        second = await fn(req)
        after_second = await snapshot(self.pool)
        name = activity_name(fn)
        assert second == first, f"{name}: second run answered differently"
        for table in TABLES:
            assert after_second[table] == after_first[table], f"{name} changed {table} again"
        self.covered.add(name)
        local = self.local.get(f"{name}.local")
        if local is not None:
            run = await local(req)
            assert run.arg == req.model_dump(mode="json"), f"{name}.local: not its input"
            assert run.result == first.model_dump(mode="json"), f"{name}.local answered differently"
            after_local = await snapshot(self.pool)
            for table in TABLES:
                assert after_local[table] == after_first[table], f"{name}.local changed {table}"
            self.covered.add(f"{name}.local")
        return first


async def _person(pool: asyncpg.Pool, bank_url: str | None = None) -> tuple[str, str]:
    """A person with an active card; with `bank_url`, a third-generation card whose
    account the bank (its simulator) holds."""
    resident_id = random_resident_id()
    async with pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=DEV_HASH_SECRET,
            resident_id=resident_id,
            insured_category="urban_employee",
            district="500103",
            balance_fen=10_000,
            bank_url=bank_url,
            card_number=random_card_number(),
        )
    return resident_id, card


def _step(case: str, step: str) -> dict[str, Any]:
    return {"case_id": case, "step": step, "at": AT}


def case_of(card: str, run: str = "run-1") -> str:
    """The case ID a case for this card has (its workflow ID is the card's keyed hash)."""
    return f"{case_workflow_id(card, secret=DEV_HASH_SECRET)}:{run}"


async def test_every_activity_is_idempotent(
    pool: asyncpg.Pool, settings: Settings, partner_urls: dict[str, str]
) -> None:
    partners = partners_over_http(settings)
    bank_url = partner_urls["bank"]
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET, bureau=partners.bureau)
    bank = BankActivities(pool, partners.bank)
    pay = PaymentActivities(pool, partners.payments)
    work = CaseworkActivities(pool)
    every = all_activities(pool, hash_secret=DEV_HASH_SECRET, partners=partners)
    twice = Twice(pool, every)

    # A case that runs to completion.
    rid, card = await _person(pool, bank_url)
    c = case_of(card)
    loss = await twice(
        registry.register_loss,
        a.RegisterLossInput(
            **_step(c, "register_loss"),
            card_number=card,
            resident_id=rid,
            channel=Channel.HOTLINE_12333,
            district="500103",
            reported_at=AT,
            opened_at=AT,
        ),
    )
    assert loss.policy is not None and loss.policy.version == "CQ-2026.1" and loss.policy_hash
    freeze = a.FreezeInput(
        **_step(c, "freeze_card"), card_number=card, report_number=loss.report_number
    )
    await twice(registry.freeze_card, freeze)
    frozen = await twice(
        bank.freeze_bank_account, freeze.model_copy(update={"step": "freeze_bank"})
    )
    assert frozen.status == "frozen" and frozen.changed  # the bank froze it, once
    await twice(
        registry.formalise_loss_report,
        a.FormaliseInput(**_step(c, "formalise"), report_number=loss.report_number),
    )
    await twice(
        work.request_affiliation_confirmation,
        a.AffiliationRequestInput(
            **_step(c, "affiliation"),
            kind="employer",
            org_code="91310110666007217T",
            org_name="Unit",
            district="500103",
        ),
    )
    sub = materials(loss.report_number)
    policy = CasePolicy()
    check = await twice(
        work.precheck_materials,
        a.PrecheckInput(
            **_step(c, "precheck:1"),
            round=1,
            category=InsuredCategory.URBAN_EMPLOYEE,
            resident_id=rid,
            report_number=loss.report_number,
            loss_proof_number=sub.loss_proof_number,
            documents=sub.documents,
            required=policy.materials_for(InsuredCategory.URBAN_EMPLOYEE),
            photo_min_width_px=295,
            photo_min_height_px=413,
            fee_exemption=None,
        ),
    )
    assert check.passed
    await twice(
        work.record_review_decision,
        a.ReviewRecordInput(
            **_step(c, "review:1"),
            round=1,
            reviewer="rev-1",
            verdict=ReviewVerdict.APPROVE,
            reasons=[],
            waive_fee=False,
            waiver_reason=None,
        ),
    )
    fee = await twice(
        pay.assess_fee,
        a.AssessFeeInput(
            **_step(c, "assess_fee"),
            schedule="CQ-2006",
            account_id="x",
            exemption=None,
            waived=False,
            waiver_reason=None,
        ),
    )
    assert fee.amount_fen == 2500
    order = await twice(
        pay.open_payment_order,
        a.CreatePaymentInput(
            **_step(c, "create_payment_order"), amount_fen=fee.amount_fen, due_at=AT + timedelta(7)
        ),
    )
    wrong = await twice(
        pay.receive_payment,
        a.ReceivePaymentInput(
            **_step(c, "payment:PAY-0"),
            order_id=order.order_id,
            amount_fen=2000,
            payment_ref="PAY-0",
            paid_at=AT,
            apply=True,
        ),
    )
    assert not wrong.applied and "2000 fen" in (wrong.reason or "")
    returned = await twice(
        pay.refund_payment,
        a.RefundInput(**_step(c, "refund:PAY-0"), payment_ref="PAY-0", reason="wrong amount"),
    )
    assert returned.status == "refunded" and returned.order_id is None
    paid = await twice(
        pay.receive_payment,
        a.ReceivePaymentInput(
            **_step(c, "payment:PAY-1"),
            order_id=order.order_id,
            amount_fen=2500,
            payment_ref="PAY-1",
            paid_at=AT,
            apply=True,
        ),
    )
    assert paid.applied and paid.order is not None and paid.order.status == "paid"
    prod = await twice(
        registry.order_card_production,
        a.ProductionInput(
            **_step(c, "order_card_production"),
            account_id=loss.account_id,
            old_card_number=card,
            mode=ProductionMode.STANDARD,
            district="500103",
        ),
    )
    new_card = random_card_number()
    await twice(
        registry.record_card_produced,
        a.CardProducedInput(
            **_step(c, "record_card_produced"),
            order_id=prod.order_id,
            account_id=loss.account_id,
            new_card_number=new_card,
            produced_at=AT,
        ),
    )
    done = await twice(
        registry.activate_new_card,
        a.ActivateCardInput(
            **_step(c, "activate"),
            old_card_number=card,
            new_card_number=new_card,
            report_number=loss.report_number,
        ),
    )
    assert done.balance_fen == 10_000
    moved = await twice(
        bank.move_bank_account,
        a.MoveBankAccountInput(
            **_step(c, "move_bank_account"), old_card_number=card, new_card_number=new_card
        ),
    )
    assert (moved.mode, moved.old_account) == ("migrated", "closed")  # at the bank, once
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        assert (await sim.get(f"/_accounts/{new_card}")).json()["status"] == "active"
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "closed"
    await twice(
        work.notify,
        a.NotifyInput(
            **_step(c, "notify:completed"),
            recipient=Recipient.APPLICANT,
            recipient_ref=loss.account_id,
            template="completed",
            params={"card": "*****0001"},
        ),
    )
    await twice(
        work.append_audit_event,
        a.AuditInput(**_step(c, "event:1"), event_type="note", actor="ops", detail={"k": "v"}),
    )

    # A case that ends early and undoes its steps.
    rid2, card2 = await _person(pool)
    c2 = case_of(card2)
    loss2 = await registry.register_loss(
        a.RegisterLossInput(
            **_step(c2, "register_loss"),
            card_number=card2,
            resident_id=rid2,
            channel=Channel.ONLINE,
            district="500103",
            reported_at=AT,
            opened_at=AT,
        )
    )
    freeze2 = a.FreezeInput(
        **_step(c2, "freeze_card"), card_number=card2, report_number=loss2.report_number
    )
    await registry.freeze_card(freeze2)
    await bank.freeze_bank_account(freeze2.model_copy(update={"step": "freeze_bank"}))
    open_order = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(c2, "order-a"), amount_fen=2500, due_at=AT)
    )
    await twice(
        pay.cancel_payment_order,
        a.OrderInput(
            **_step(c2, "cancel_payment_order"), order_id=open_order.order_id, reason="lapsed"
        ),
    )
    # An order opened at the payment platform, then closed there: each once at the
    # platform (the same order there, its reference recorded once here).
    platform_order = await twice(
        pay.open_payment_order,
        a.CreatePaymentInput(**_step(c2, "order-p"), amount_fen=2500, due_at=AT),
    )
    closed = await twice(
        pay.close_payment_order,
        a.OrderInput(**_step(c2, "close-p"), order_id=platform_order.order_id, reason="lapsed"),
    )
    assert closed.status == "closed" and closed.payment is None
    async with httpx.AsyncClient(base_url=partner_urls["payments"]) as platform:
        there = [
            o
            for o in (await platform.get("/_orders")).json()
            if o["order_id"] == platform_order.order_id
        ]
        asked = (await platform.get("/_requests")).json()
    assert [(o["status"], o["platform_ref"], o["amount_fen"]) for o in there] == [
        ("closed", platform_order.platform_ref, 2500)
    ]
    assert asked[platform_order.order_id] == 1, "opened at the platform once"
    paid_order = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(c2, "order-b"), amount_fen=2500, due_at=AT)
    )
    # A paid fee refunded when the case ends early: the order is refunded too.
    await pay.receive_payment(
        a.ReceivePaymentInput(
            **_step(c2, "payment:PAY-2"),
            order_id=paid_order.order_id,
            amount_fen=2500,
            payment_ref="PAY-2",
            paid_at=AT,
            apply=True,
        )
    )
    refund = await twice(
        pay.refund_payment,
        a.RefundInput(**_step(c2, "refund:PAY-2"), payment_ref="PAY-2", reason="cancelled"),
    )
    assert refund.status == "refunded" and refund.order_id == paid_order.order_id
    # The bureau could not make a standard card: the order fails, once.
    failing = await twice(
        registry.order_card_production,
        a.ProductionInput(
            **_step(c2, "order_card_production"),
            account_id=loss2.account_id,
            old_card_number=card2,
            mode=ProductionMode.STANDARD,
            district="500103",
        ),
    )
    await twice(
        registry.record_production_failed,
        a.ProductionFailedInput(
            **_step(c2, "record_production_failed"),
            order_id=failing.order_id,
            reason="chip personalisation failed",
            failed_at=AT,
        ),
    )
    async with httpx.AsyncClient(base_url=partner_urls["bureau"]) as bureau:
        asked = (await bureau.get("/_requests")).json()
    assert asked == {prod.order_id: 1, failing.order_id: 1}, "each order sent to the bureau once"
    instant = await twice(
        registry.order_card_production,
        a.ProductionInput(
            **_step(c2, "instant"),
            account_id=loss2.account_id,
            old_card_number=card2,
            mode=ProductionMode.INSTANT,
            district="500103",
        ),
    )
    assert instant.new_card_number
    await twice(
        registry.cancel_card_production,
        a.OrderInput(
            **_step(c2, "cancel_card_production"), order_id=instant.order_id, reason="cancelled"
        ),
    )
    await twice(
        registry.lift_loss_report,
        a.LiftLossInput(
            **_step(c2, "lift"),
            card_number=card2,
            report_number=loss2.report_number,
            reason="withdrawn",
        ),
    )
    await twice(bank.unfreeze_bank_account, freeze2.model_copy(update={"step": "unfreeze"}))

    # A formal case that ends without a new card: the old card is void.
    rid3, card3 = await _person(pool)
    c3 = case_of(card3)
    loss3 = await registry.register_loss(
        a.RegisterLossInput(
            **_step(c3, "register_loss"),
            card_number=card3,
            resident_id=rid3,
            channel=Channel.COUNTER,
            district="500103",
            reported_at=AT,
            opened_at=AT,
        )
    )
    await registry.freeze_card(
        a.FreezeInput(
            **_step(c3, "freeze_card"), card_number=card3, report_number=loss3.report_number
        )
    )
    await twice(
        registry.void_old_card,
        a.VoidCardInput(
            **_step(c3, "void_old_card"),
            card_number=card3,
            report_number=loss3.report_number,
            reason="rejected",
        ),
    )

    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", card2) == (
            "active"
        )
        assert (
            await conn.fetchval(
                "SELECT status FROM cards WHERE card_number = $1", instant.new_card_number
            )
            == "void"
        )
        assert await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", card3) == (
            "void"
        )

    registered = {activity_name(fn) for fn in every}
    assert registered - twice.covered == set(), "activities without an idempotency check"


async def test_concurrent_duplicates_write_once(pool: asyncpg.Pool) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    rid, card = await _person(pool)
    case = case_of(card)
    req = a.RegisterLossInput(
        **_step(case, "register_loss"),
        card_number=card,
        resident_id=rid,
        channel=Channel.COUNTER,
        district="500103",
        reported_at=AT,
        opened_at=AT,
    )
    results = await asyncio.gather(*(registry.register_loss(req) for _ in range(5)))
    assert len({r.report_number for r in results}) == 1
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM loss_reports WHERE card_number = $1", card)
            == 1
        )
        assert await conn.fetchval("SELECT count(*) FROM case_events WHERE case_id = $1", case) == 1
