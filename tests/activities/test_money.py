"""The fee and the ledger as the system of record keeps them: what the fast layer's fakes
play (tests/workflows/fakes.py), proven against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from reissue.activities import PaymentActivities
from reissue.activities.partners import HttpPaymentPlatform
from reissue.schemas import activities as a
from reissue.schemas.enums import FeeExemption
from tests.activities.test_idempotency import _person, _step, case_of, snapshot

AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _fee(case: str, step: str, **changes: object) -> a.AssessFeeInput:
    fields: dict[str, object] = {
        **_step(case, step),
        "schedule": "CQ-2006",
        "account_id": "x",
        "exemption": None,
        "waived": False,
        "waiver_reason": None,
    }
    return a.AssessFeeInput.model_validate(fields | changes)


async def test_the_fee_less_exemptions_the_schedule_grants_and_staff_waivers(
    pool: asyncpg.Pool, partner_urls: dict[str, str]
) -> None:
    pay = PaymentActivities(pool, HttpPaymentPlatform(partner_urls["payments"]))
    _, card = await _person(pool)
    case = case_of(card)
    full = await pay.assess_fee(_fee(case, "f1"))
    assert (full.amount_fen, full.base_fen, full.exemption, full.waived) == (
        2500,
        2500,
        None,
        False,
    )
    exempt = await pay.assess_fee(_fee(case, "f2", exemption=FeeExemption.SPECIAL_CARE))
    assert (exempt.amount_fen, exempt.exemption) == (0, FeeExemption.SPECIAL_CARE)
    waived = await pay.assess_fee(_fee(case, "f3", waived=True, waiver_reason="hardship"))
    assert (waived.amount_fen, waived.waived) == (0, True)
    async with pool.acquire() as conn:  # a schedule that grants no exemption
        await conn.execute(
            "INSERT INTO fee_schedule VALUES ('T-NOEX', 'card_reissue', 3000, 'a test schedule')"
        )
    not_granted = await pay.assess_fee(
        _fee(case, "f4", schedule="T-NOEX", exemption=FeeExemption.MINIMUM_LIVING_ALLOWANCE)
    )
    assert (not_granted.amount_fen, not_granted.exemption) == (3000, None)
    before = await snapshot(pool)
    with pytest.raises(ApplicationError) as err:
        await pay.assess_fee(_fee(case, "f5", schedule="NOPE"))
    assert err.value.type == "FeeScheduleUnknown" and err.value.non_retryable
    assert await snapshot(pool) == before


async def test_the_ledger_applies_a_payment_once_and_refunds_what_it_cannot_apply(
    pool: asyncpg.Pool, partner_urls: dict[str, str]
) -> None:
    pay = PaymentActivities(pool, HttpPaymentPlatform(partner_urls["payments"]))
    _, card = await _person(pool)
    _, other_card = await _person(pool)
    case, other = case_of(card), case_of(other_card)
    order = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(case, "order"), amount_fen=2500, due_at=AT)
    )
    theirs = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(other, "order"), amount_fen=2500, due_at=AT)
    )

    async def receive(in_case: str, ref: str, order_id: str, **changes: object) -> a.PaymentReceipt:
        fields: dict[str, object] = {
            **_step(in_case, f"payment:{ref}"),
            "order_id": order_id,
            "amount_fen": 2500,
            "payment_ref": ref,
            "paid_at": AT,
            "apply": True,
        }
        return await pay.receive_payment(a.ReceivePaymentInput.model_validate(fields | changes))

    wrong_order = await receive(case, "P-THEIRS", theirs.order_id)
    assert not wrong_order.applied and wrong_order.reason == "the order is not this case's"
    good = await receive(case, "P-GOOD", order.order_id)
    assert good.applied and good.order is not None and good.order.status == "paid"
    second = await receive(case, "P-SECOND", order.order_id)
    assert not second.applied and second.reason == "the order is paid"
    told = await receive(case, "P-ENDING", order.order_id, apply=False, reason="the case is ending")
    assert not told.applied and told.reason == "the case is ending"
    # The same reference reaching another case: the ledger's, not received again.
    again = await receive(other, "P-GOOD", theirs.order_id)
    assert not again.new and not again.applied
    assert again.reason == "the reference was received before by another case"
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT p.payment_ref, p.disposition, r.status AS refund FROM payments p"
            " LEFT JOIN refunds r USING (payment_ref) WHERE p.case_id = $1 ORDER BY p.payment_ref",
            case,
        )
    assert [tuple(r) for r in rows] == [
        ("P-ENDING", "refund", "pending"),
        ("P-GOOD", "applied", None),
        ("P-SECOND", "refund", "pending"),
        ("P-THEIRS", "refund", "pending"),
    ]
    with pytest.raises(ApplicationError) as err:  # a paid order is not cancelled
        await pay.cancel_payment_order(
            a.OrderInput(**_step(case, "cancel"), order_id=order.order_id, reason="lapsed")
        )
    assert err.value.type == "OrderStateConflict" and err.value.non_retryable
    with pytest.raises(ApplicationError) as err:  # only a payment this case received
        await pay.refund_payment(
            a.RefundInput(**_step(other, "refund:P-GOOD"), payment_ref="P-GOOD", reason="x")
        )
    assert err.value.type == "OrderStateConflict" and err.value.non_retryable


@pytest.mark.parametrize("amount_fen", [10**20, 2**63, 0])
async def test_a_payment_no_ledger_row_can_hold_is_refused_once_not_retried_for_ever(
    pool: asyncpg.Pool, partner_urls: dict[str, str], amount_fen: int
) -> None:
    """A poison payment (an amount beyond the ledger's bigint, or 0 fen) cannot ever be
    recorded: the step answers at once — nothing under its reference in the ledger, the
    case reads that as an anomaly — and changes the world once (the audit log and a word
    to operations), a retry nothing more, instead of failing on every attempt."""
    pay = PaymentActivities(pool, HttpPaymentPlatform(partner_urls["payments"]))
    _, card = await _person(pool)
    case = case_of(card)
    order = await pay.open_payment_order(
        a.CreatePaymentInput(**_step(case, "order"), amount_fen=2500, due_at=AT)
    )
    ref = f"P-POISON-{amount_fen % 997}"
    poison = a.ReceivePaymentInput(
        **_step(case, f"payment:{ref}"),
        order_id=order.order_id,
        amount_fen=amount_fen,
        payment_ref=ref,
        paid_at=AT,
        apply=True,
    )
    before = await snapshot(pool)
    receipt = await pay.receive_payment(poison)
    assert (receipt.new, receipt.applied, receipt.amount_fen, receipt.order_id) == (
        False,
        False,
        0,
        None,
    )
    assert receipt.reason is not None and receipt.reason.startswith("amount_fen: must be")
    after = await snapshot(pool)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"activity_runs", "case_events", "notifications"}
    async with pool.acquire() as conn:
        [event] = await conn.fetch(
            "SELECT event_type, detail FROM case_events WHERE dedupe_key = $1", poison.key
        )
        [told] = await conn.fetch(
            "SELECT recipient, template FROM notifications WHERE case_id = $1", case
        )
        ledger = await conn.fetchval("SELECT count(*) FROM payments WHERE payment_ref = $1", ref)
        status = await conn.fetchval(
            "SELECT status FROM payment_orders WHERE order_id = $1", order.order_id
        )
    assert event["event_type"] == "payment_unrecordable"
    assert str(amount_fen) in event["detail"]
    assert tuple(told) == ("operations", "payment_unrecordable")
    assert ledger == 0 and status == "open"
    assert await pay.receive_payment(poison) == receipt  # a retry: the same answer...
    assert await snapshot(pool) == after  # ...and nothing more
