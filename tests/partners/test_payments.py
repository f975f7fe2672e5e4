"""The payment platform as a real process. Orders are opened there and paid there by
the payer; the platform tells the front door through its signed webhook. An order is
closed there before its case gives up on it, and a payment whose webhook never came is
found then: in time, it pays the fee; while the case ends, it is refunded, once.
Refunds really call the platform: a refund whose answer is lost, or that times out, is
repeated with the same refund ID and happens exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from reissue.activities.partners import HttpPaymentPlatform, payment_at_platform
from reissue.api.app import build_app
from reissue.api.credentials import create_key
from reissue.schemas.contract import late_payment_workflow_id
from reissue.schemas.enums import Stage
from reissue.schemas.errors import PARTNER_UNAVAILABLE
from tests.api.conftest import serving
from tests.partners.conftest import Simulator
from tests.support import Stack, eventually

SECRET = "a-webhook-secret-shared-with-the-platform"


@pytest.fixture
async def platform(simulator: Callable[..., Awaitable[Simulator]]) -> Simulator:
    return await simulator("payments")


@pytest.fixture
async def paying(stack: Stack, platform: Simulator) -> AsyncIterator[Stack]:
    """The stack with a second worker whose refunds go to the payment platform."""
    async with stack.another_worker("pp", payment_platform_url=platform.url) as paying:
        yield paying


@pytest.fixture
async def front_door(paying: Stack) -> AsyncIterator[dict[str, str]]:
    """The front door the platform's webhook goes to, and the platform's key for it
    (the platform is pointed at it by each test, when it should start calling)."""
    async with paying.pool.acquire() as conn:
        key = await create_key(conn, "payment_platform")
    async with serving(build_app(paying.client, paying.pool, webhook_secret=SECRET)) as url:
        yield {"report_url": url, "api_key": key, "webhook_secret": SECRET}


async def _payable(stack: Stack) -> tuple[str, str, str]:
    """A case waiting for its fee; its workflow ID, case ID and order ID."""
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee is not None and st.fee.order_id is not None
    return case, st.case_id, st.fee.order_id


async def _ledger(stack: Stack, case_id: str) -> list[tuple[Any, ...]]:
    rows = await stack.rows(
        "SELECT p.payment_ref, p.disposition, r.status AS refund FROM payments p"
        " LEFT JOIN refunds r USING (payment_ref) WHERE p.case_id = $1",
        case_id,
    )
    return [tuple(r) for r in rows]


async def _webhook_taken(platform: Simulator, order_id: str) -> dict[str, Any]:
    async def taken() -> dict[str, Any]:
        reports = [r for r in await platform.get("/_reports") if r["order_id"] == order_id]
        assert len(reports) == 1 and reports[0]["delivered_at"] is not None, reports
        return dict(reports[0])

    return await eventually(taken)


async def test_the_payer_pays_at_the_platform_and_its_webhook_moves_the_case(
    paying: Stack, platform: Simulator, front_door: dict[str, str]
) -> None:
    stack = paying
    await platform.put("/_report_to", **front_door)
    await platform.knobs(webhook_delay_ms=300)  # the platform calls back a while later
    case, case_id, order_id = await _payable(stack)
    (there,) = [o for o in await platform.get("/_orders") if o["order_id"] == order_id]
    assert (there["status"], there["amount_fen"], there["case_id"]) == ("open", 2500, case)
    assert (
        await stack.one("SELECT platform_ref FROM payment_orders WHERE order_id = $1", order_id)
        == there["platform_ref"]
    )
    assert "payment_requested" in await stack.templates(case_id)

    paid = await platform.post("/_pay", order_id=order_id)
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    report = await _webhook_taken(platform, order_id)
    assert report["answer"] == 200 and report["attempts"] == 1
    ref = paid["payment"]["payment_ref"]
    assert await _ledger(stack, case_id) == [(ref, "applied", None)]
    assert st.fee is not None and st.fee.order_status == "paid" and st.fee.payment_ref == ref
    assert st.money.received_fen == st.money.applied_fen == 2500
    # A second payment of the same order is refused by the platform itself.
    await platform.post("/_pay", expect=409, order_id=order_id)
    assert await stack.violations() == []


async def test_a_payment_whose_webhook_never_came_pays_the_fee_when_the_deadline_closes_the_order(
    paying: Stack, platform: Simulator, front_door: dict[str, str]
) -> None:
    stack = paying
    case, case_id, order_id = await _payable(stack)
    # The payer pays; the platform cannot reach the front door (not pointed at it yet).
    paid = await platform.post("/_pay", order_id=order_id)
    ref = paid["payment"]["payment_ref"]
    await stack.fast_forward(case, stack.policy.payment_deadline + timedelta(hours=1))
    # At the deadline the case closes the order at the platform, which answers that it
    # was paid: the fee is paid, the case goes on instead of lapsing.
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.fee is not None and st.fee.order_status == "paid" and st.fee.payment_ref == ref
    assert await _ledger(stack, case_id) == [(ref, "applied", None)]
    (there,) = [o for o in await platform.get("/_orders") if o["order_id"] == order_id]
    assert there["status"] == "paid"
    # The webhook arrives at last: the same payment, not received twice.
    await platform.put("/_report_to", **front_door)
    assert (await _webhook_taken(platform, order_id))["answer"] == 200
    st = await stack.until(case, lambda st: bool(st.ignored_events))  # the case heard it
    assert "duplicate" in st.ignored_events[0]
    assert await _ledger(stack, case_id) == [(ref, "applied", None)]
    assert st.money.received_fen == st.money.applied_fen == 2500
    assert await platform.get("/_refunds") == []
    assert await stack.violations() == []


async def test_an_unpaid_order_is_closed_at_the_platform_before_the_case_lapses(
    paying: Stack, platform: Simulator
) -> None:
    stack = paying
    case, _, order_id = await _payable(stack)
    await stack.fast_forward(case, stack.policy.payment_deadline + timedelta(hours=1))
    assert (await stack.client.result(case)).outcome is Stage.LAPSED
    (there,) = [o for o in await platform.get("/_orders") if o["order_id"] == order_id]
    assert there["status"] == "closed"
    # Nobody can pay it now.
    await platform.post("/_pay", expect=409, order_id=order_id)
    assert await stack.one("SELECT status FROM payment_orders WHERE order_id = $1", order_id) == (
        "cancelled"
    )
    assert await stack.violations() == []


async def test_a_cancel_racing_a_payment_at_the_platform_refunds_it_exactly_once(
    paying: Stack, platform: Simulator, front_door: dict[str, str]
) -> None:
    stack = paying
    case, case_id, order_id = await _payable(stack)
    paid = await platform.post("/_pay", order_id=order_id)  # its webhook not yet through
    ref = paid["payment"]["payment_ref"]
    await stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    st = await stack.wait_for(case, Stage.CANCELLED)
    # Closing the order found the payment: into the ledger, and back to the payer.
    assert await _ledger(stack, case_id) == [(ref, "refund", "refunded")]
    assert st.money.received_fen == st.money.refunded_fen == 2500
    assert "payment_returned" in await stack.templates(case_id)
    # Then the webhook gets through, to a closed case: recorded before, not refunded again.
    await platform.put("/_report_to", **front_door)
    assert (await _webhook_taken(platform, order_id))["answer"] == 200
    late = stack.client.temporal.get_workflow_handle(late_payment_workflow_id(case, ref))
    await late.result()  # the closed case's payment, handled under the keys the case used
    refunds = await platform.get("/_refunds")
    assert [(r["payment_ref"], r["amount_fen"]) for r in refunds] == [(ref, 2500)]
    assert await _ledger(stack, case_id) == [(ref, "refund", "refunded")]
    assert await stack.violations() == []


async def test_a_refund_whose_answer_is_lost_happens_exactly_once(
    paying: Stack, platform: Simulator
) -> None:
    stack = paying
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case, ref="BANK-LOST-1")
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    await platform.knobs(lost_answer_rate=1.0)  # the platform refunds, the answer never comes
    cancelling = asyncio.create_task(
        stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    )
    handle = stack.client.handle(case)

    async def lost_twice() -> None:
        """The platform refunded, and a second try met the same lost answer."""
        pending = (await handle.describe()).raw_description.pending_activities
        assert any(p.activity_type.name == "refund_payment" and p.attempt >= 3 for p in pending)
        assert len(await platform.get("/_refunds")) == 1

    await eventually(lost_twice)
    await platform.knobs(lost_answer_rate=0.0)
    await stack.fast_forward(case, timedelta(seconds=5))  # the next try, without its backoff
    await cancelling
    st = await stack.wait_for(case, Stage.CANCELLED)
    refunds = await platform.get("/_refunds")
    assert [(r["payment_ref"], r["amount_fen"]) for r in refunds] == [("BANK-LOST-1", 2500)]
    ledger = await stack.rows(
        "SELECT status, platform_ref FROM refunds WHERE case_id = $1", st.case_id
    )
    assert [(r["status"], r["platform_ref"]) for r in ledger] == [
        ("refunded", refunds[0]["platform_ref"])
    ]
    assert (await stack.templates(st.case_id)).count("refund_issued") == 1


async def test_a_refund_that_times_out_is_repeated_and_happens_once(platform: Simulator) -> None:
    await platform.knobs(latency_ms=1500)
    slow = HttpPaymentPlatform(platform.url, timeout=httpx.Timeout(0.5))
    with pytest.raises(ApplicationError) as err:
        await slow.refund(refund_id="RF-1", payment_ref="BANK-T", amount_fen=2500)
    assert err.value.type == PARTNER_UNAVAILABLE and not err.value.non_retryable
    await platform.knobs(latency_ms=0)
    ref = await slow.refund(refund_id="RF-1", payment_ref="BANK-T", amount_fen=2500)
    again = await slow.refund(refund_id="RF-1", payment_ref="BANK-T", amount_fen=2500)
    assert ref == again
    assert [r["refund_id"] for r in await platform.get("/_refunds")] == ["RF-1"]
    # The same refund ID for another refund is refused as such, not retried.
    with pytest.raises(ApplicationError) as refused:
        await slow.refund(refund_id="RF-1", payment_ref="BANK-X", amount_fen=1)
    assert refused.value.non_retryable


async def test_a_close_is_never_taken_as_unpaid_unless_the_platform_says_so(
    platform: Simulator,
) -> None:
    adapter = HttpPaymentPlatform(platform.url)
    try:
        # An order the platform does not have: no "closed, unpaid" made up — retried.
        with pytest.raises(ApplicationError) as unknown:
            await adapter.close_order("PY20261127999999", key="case:close-unknown")
        assert unknown.value.type == PARTNER_UNAVAILABLE and not unknown.value.non_retryable
        assert "not at all" in unknown.value.message
        # A close the platform refuses (here: the key was used for another request) is
        # answered by reading the order, which the platform has closed.
        await adapter.open_order(
            order_id="PY20261127000001",
            case_id="reissue-0123456789abcdef",
            amount_fen=2500,
            due_at=datetime.now(UTC),
        )
        first = await adapter.close_order("PY20261127000001", key="case:close")
        assert (first.status, first.payment) == ("closed", None)
        await adapter.open_order(
            order_id="PY20261127000002",
            case_id="reissue-0123456789abcdef",
            amount_fen=2500,
            due_at=datetime.now(UTC),
        )
        await platform.post("/_pay", order_id="PY20261127000002")
        await adapter.close_order("PY20261127000002", key="case:close-2")
        refused = await adapter.close_order("PY20261127000002", key="case:close")  # (422)
        assert refused.status == "paid" and refused.payment is not None
        assert refused.payment.order_id == "PY20261127000002" and refused.payment.amount_fen == 2500
        # Still open there after a refusal: retried, not taken as closed.
        await adapter.open_order(
            order_id="PY20261127000003",
            case_id="reissue-0123456789abcdef",
            amount_fen=2500,
            due_at=datetime.now(UTC),
        )
        with pytest.raises(ApplicationError) as still_open:
            await adapter.close_order("PY20261127000003", key="case:close")
        assert still_open.value.type == PARTNER_UNAVAILABLE and "open" in still_open.value.message
    finally:
        await adapter.aclose()


async def test_a_webhook_that_outruns_the_platforms_answer_waits_for_the_order(
    paying: Stack, platform: Simulator, front_door: dict[str, str]
) -> None:
    """The platform opens the order but its answer is lost; the payer pays and the
    webhook reaches the case before our retry learns the order: the payment waits for
    the order, then pays the fee (it is not refunded as "no payment due")."""
    stack = paying
    await platform.put("/_report_to", **front_door)
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await platform.knobs(lost_answer_rate=1.0)
    await stack.approve(case)
    st = await stack.status(case)
    assert st.stage is Stage.AWAITING_PAYMENT and st.fee is not None and st.fee.order_id is None
    await stack.pending(case, "open_payment_order")

    async def opened() -> dict[str, Any]:  # the platform has opened it (the answer was lost)
        orders = [o for o in await platform.get("/_orders") if o["case_id"] == case]
        assert len(orders) == 1, orders
        return dict(orders[0])

    order = await eventually(opened)
    paid = await platform.post("/_pay", order_id=order["order_id"])
    await _webhook_taken(platform, order["order_id"])  # signalled to the case
    await platform.knobs(lost_answer_rate=0.0)
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION, timeout=60)
    ref = paid["payment"]["payment_ref"]
    assert await _ledger(stack, st.case_id) == [(ref, "applied", None)]
    assert st.anomalies == [] and await platform.get("/_refunds") == []
    assert await stack.violations() == []


def test_a_platform_answer_about_another_order_or_its_payment_is_not_taken() -> None:
    """What the platform says is taken only about our order, and a paid order only with
    its own payment: anything else is retried, never applied or refunded."""
    payment = {"amount_fen": 2500, "payment_ref": "PAY0001", "paid_at": "2026-11-27T08:00:00Z"}
    mine = {"order_id": "PY20261127000001", "status": "paid"}
    at = payment_at_platform(
        {**mine, "payment": {**payment, "order_id": mine["order_id"], "extra": 1}},
        mine["order_id"],
        ("closed", "paid"),
    )
    assert at.payment is not None and at.payment.payment_ref == "PAY0001"
    for answer in (
        {
            **mine,
            "order_id": "PY20261127000002",
            "payment": {**payment, "order_id": "PY20261127000002"},
        },
        {**mine, "payment": {**payment, "order_id": "PY20261127000002"}},  # another's payment
        mine,  # paid, without the payment
        {**mine, "payment": {**payment, "order_id": mine["order_id"], "amount_fen": -1}},
        {"order_id": mine["order_id"], "status": "closed", "payment": {**payment}},
        {"order_id": mine["order_id"], "status": "expired"},
    ):
        with pytest.raises(ApplicationError) as err:
            payment_at_platform(answer, mine["order_id"], ("closed", "paid"))
        assert err.value.type == PARTNER_UNAVAILABLE and not err.value.non_retryable
