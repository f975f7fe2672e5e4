"""The card bureau as a real process: it takes standard orders over HTTP, makes the card
after a while (or fails to) and reports back through the front door, as a partner
would. Failures are ordered again up to the policy's limit, then a supervisor decides;
a cancelled case stops its order at the bureau; a bureau killed after accepting an
order reports the card once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError

from reissue.api.app import build_app
from reissue.api.credentials import create_key
from reissue.schemas.enums import AwaitingParty, Stage
from tests.api.conftest import serving
from tests.partners.conftest import Simulator
from tests.support import Stack, eventually


@pytest.fixture
async def bureau(simulator: Callable[..., Awaitable[Simulator]]) -> Simulator:
    return await simulator("bureau", production_delay_ms=300)


@pytest.fixture
async def ordering(stack: Stack, bureau: Simulator) -> AsyncIterator[Stack]:
    """The stack with a worker that orders cards from this bureau, and a front door the
    bureau reports to with its own key."""
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "card_bureau")
    async with stack.another_worker("cb", card_bureau_url=bureau.url) as ordering:
        app = build_app(ordering.client, stack.pool, webhook_secret="unused-webhook-secret")
        async with serving(app) as front_door:
            await bureau.put("/_report_to", report_url=front_door, api_key=key)
            bureau.report_url = front_door
            yield ordering


async def _in_production(stack: Stack) -> str:
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.pay(case)
    return case


async def _orders(bureau: Simulator, case: str) -> list[dict[str, Any]]:
    return [o for o in await bureau.get("/_orders") if o["case_id"] == case]


async def test_the_bureau_makes_the_card_and_reports_it_through_the_front_door(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    case = await _in_production(stack)
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    (made,) = await _orders(bureau, case)
    assert made["order_id"] == st.production_order_id and made["status"] == "produced"
    assert (
        st.new_card_masked is not None and st.new_card_masked[-4:] == made["new_card_number"][-4:]
    )
    # The registry has the card the bureau made, with the code it wrote on the chip.
    card = await stack.rows(
        "SELECT status, card_id_code FROM cards WHERE card_number = $1", made["new_card_number"]
    )
    assert [(c["status"], c["card_id_code"]) for c in card] == [
        ("inactive_new", made["card_id_code"])
    ]
    assert await stack.one(
        "SELECT sent_at IS NOT NULL FROM production_orders WHERE order_id = $1", made["order_id"]
    )
    (report,) = [r for r in await bureau.get("/_reports") if r["order_id"] == made["order_id"]]
    assert 200 <= report["answer"] < 300 and report["delivered_at"] is not None
    assert await stack.violations() == []


async def test_failed_productions_are_ordered_again_then_a_supervisor_decides(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    await stack.use_policy(max_production_reorders=1)
    await bureau.knobs(fail_next=2)  # the first order and its reorder both fail
    case = await _in_production(stack)
    st = await stack.until(case, lambda st: "production_failed" in st.flags)
    assert st.stage is Stage.CARD_PRODUCTION and st.awaiting is AwaitingParty.STAFF
    failed = await _orders(bureau, case)
    assert [o["status"] for o in failed] == ["failed", "failed"]
    assert st.failed_production_orders == [o["order_id"] for o in failed]
    rows = await stack.rows(
        "SELECT status, failure_reason FROM production_orders WHERE case_id = $1 ORDER BY order_id",
        st.case_id,
    )
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("chip personalisation failed" in r["failure_reason"] for r in rows)
    # One notice to the supervisor, past the limit (none for the first failure).
    notices = await stack.rows(
        "SELECT recipient FROM notifications WHERE case_id = $1 AND template = 'production_failed'",
        st.case_id,
    )
    assert [n["recipient"] for n in notices] == ["supervisor"]

    await stack.client.reorder_card(
        case, {"supervisor": "supervisor-01", "reason": "the bureau replaced its chip writer"}
    )
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    orders = await _orders(bureau, case)
    assert [o["status"] for o in orders] == ["failed", "failed", "produced"]
    assert st.production_order_id == orders[-1]["order_id"] and "production_failed" not in st.flags
    assert await stack.violations() == []


async def test_a_reorder_is_refused_while_the_bureau_has_not_failed(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    await bureau.knobs(production_delay_ms=60_000)
    case = await _in_production(stack)
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await stack.client.reorder_card(case, {"supervisor": "supervisor-01", "reason": "why not"})
    assert "allowed only after the bureau failed" in str(refused.value.cause)
    assert len(await _orders(bureau, case)) == 1


async def test_a_cancelled_case_stops_its_order_at_the_bureau(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    await bureau.knobs(production_delay_ms=60_000)
    case = await _in_production(stack)
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    await _until_ordered(bureau, case)
    await stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    st = await stack.wait_for(case, Stage.CANCELLED)
    assert [o["status"] for o in await _orders(bureau, case)] == ["cancelled"]
    assert (
        await stack.one("SELECT status FROM production_orders WHERE case_id = $1", st.case_id)
        == "cancelled"
    )
    assert await stack.violations() == []


async def _until_ordered(bureau: Simulator, case: str) -> None:
    async def ordered() -> None:
        assert await _orders(bureau, case), "the order never reached the bureau"

    await eventually(ordered)


async def test_a_bureau_down_then_killed_after_accepting_still_delivers_once(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    await bureau.knobs(down=True, production_delay_ms=1500)
    case = await _in_production(stack)
    await stack.pending(case, "order_card_production")  # retried while the bureau is down
    await bureau.knobs(down=False)
    await stack.fast_forward(case, timedelta(seconds=5))  # the next try, without its backoff
    await _until_ordered(bureau, case)
    await bureau.kill()  # accepted, not yet made: it dies with the order in its records
    await bureau.start()
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP, timeout=60)
    (made,) = await _orders(bureau, case)
    assert made["status"] == "produced" and st.production_order_id == made["order_id"]
    assert await stack.violations() == []


async def test_a_cancel_the_bureau_cannot_take_at_first_is_asked_again(
    ordering: Stack, bureau: Simulator
) -> None:
    stack = ordering
    await bureau.knobs(production_delay_ms=60_000)
    case = await _in_production(stack)
    await stack.wait_for(case, Stage.CARD_PRODUCTION)
    await _until_ordered(bureau, case)
    await bureau.knobs(down=True)
    cancelling = asyncio.create_task(
        stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant_request"})
    )
    handle = stack.client.handle(case)

    async def refused_once() -> None:  # an attempt met the bureau down, and is retried
        pending = (await handle.describe()).raw_description.pending_activities
        assert any(
            p.activity_type.name == "cancel_card_production" and p.attempt >= 2 for p in pending
        )

    await eventually(refused_once)
    assert [o["status"] for o in await _orders(bureau, case)] == ["ordered"]
    await bureau.knobs(down=False)
    await stack.fast_forward(case, timedelta(seconds=5))  # the next try, without its backoff
    await cancelling
    st = await stack.wait_for(case, Stage.CANCELLED)
    assert [o["status"] for o in await _orders(bureau, case)] == ["cancelled"]
    said = await stack.rows(
        "SELECT detail->>'bureau_status' AS said FROM case_events"
        " WHERE case_id = $1 AND event_type = 'production_cancelled_at_bureau'",
        st.case_id,
    )
    assert [r["said"] for r in said] == ["cancelled"]
    assert await stack.violations() == []


async def test_a_report_while_the_case_orders_again_waits_for_the_new_order(
    ordering: Stack, bureau: Simulator
) -> None:
    """The front door answers 409 (try again) while a reorder is being placed, so a
    report is never taken before the case knows the order it is about."""
    stack = ordering
    await bureau.knobs(production_delay_ms=60_000)
    case = await _in_production(stack)
    first = (await stack.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    await _until_ordered(bureau, case)
    await bureau.knobs(down=True)  # the reorder cannot be placed for now
    async with stack.pool.acquire() as conn:
        key = {"Authorization": f"Bearer {await create_key(conn, 'card_bureau')}"}
    assert bureau.report_url is not None
    async with httpx.AsyncClient(base_url=bureau.report_url) as api:
        failed = {"order_id": first, "reason": "chip failed", "failed_at": _now()}
        r = await api.post(f"/v1/cases/{case}/production-failed", json=failed, headers=key)
        assert r.status_code == 200, r.text
        await stack.pending(case, "order_card_production")
        made = {"order_id": first, "new_card_number": "B12345678", "produced_at": _now()}
        r = await api.post(f"/v1/cases/{case}/card-produced", json=made, headers=key)
        assert r.status_code == 409, r.text
    await bureau.knobs(down=False, production_delay_ms=300)
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.failed_production_orders == [first] and st.anomalies == []
    assert st.production_order_id != first
    assert await stack.violations() == []


async def test_an_order_the_bureau_refuses_goes_to_the_supervisor(
    stack: Stack, bank_url: str
) -> None:
    """A bureau that refuses the order as such (here: an address with no such API, 404)
    is a failed production: with no reorder allowed, the supervisor decides at once."""
    await stack.use_policy(max_production_reorders=0)
    async with stack.another_worker("rf", card_bureau_url=bank_url) as refusing:
        case = await _in_production(refusing)
        st = await refusing.until(case, lambda st: "production_failed" in st.flags)
        assert st.awaiting is AwaitingParty.STAFF and len(st.failed_production_orders) == 1
        reason = await refusing.one(
            "SELECT failure_reason FROM production_orders WHERE case_id = $1", st.case_id
        )
        assert reason.startswith("refused: card bureau: refused (HTTP 404)")
        await refusing.client.cancel(case, {"operator": "ops-1", "reason": "card_cannot_be_made"})
        st = await refusing.wait_for(case, Stage.CANCELLED)
        assert st.money.refunded_fen == st.money.received_fen > 0
        assert await refusing.violations() == []


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def test_only_the_bureau_may_report_a_failed_production(
    ordering: Stack, bureau: Simulator
) -> None:
    """A hostile caller with another partner's key, or the bureau's key with a report
    that is not one, fails the production of no case."""
    stack = ordering
    await bureau.knobs(production_delay_ms=60_000)
    case = await _in_production(stack)
    order = (await stack.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    failed = {"order_id": order, "reason": "chip failed", "failed_at": _now()}
    assert bureau.report_url is not None
    async with httpx.AsyncClient(base_url=bureau.report_url) as api:
        for partner in ("hotline", "counter", "payment_platform", "operations"):
            async with stack.pool.acquire() as conn:
                key = {"Authorization": f"Bearer {await create_key(conn, partner)}"}
            r = await api.post(f"/v1/cases/{case}/production-failed", json=failed, headers=key)
            assert r.status_code == 403, (partner, r.text)
        async with stack.pool.acquire() as conn:
            key = {"Authorization": f"Bearer {await create_key(conn, 'card_bureau')}"}
        for bad in ({**failed, "reason": ""}, {**failed, "order_id": "x"}, {**failed, "extra": 1}):
            r = await api.post(f"/v1/cases/{case}/production-failed", json=bad, headers=key)
            assert r.status_code == 422, r.text
    st = await stack.status(case)
    assert st.failed_production_orders == [] and st.production_order_id == order
    assert st.anomalies == [] and "production_failed" not in st.flags


async def test_a_bureau_that_reports_as_it_answers_the_order_is_heard(
    ordering: Stack, bureau: Simulator
) -> None:
    """The report can reach the case in the same workflow task as the answer to the
    order itself: it is judged once the case has taken the order in, never ignored."""
    stack = ordering
    await bureau.knobs(production_delay_ms=0)
    cases = []
    for n in range(4):
        _, case, report = await stack.open_case()
        await stack.submit(case, report)
        await stack.approve(case)
        await stack.pay(case, ref=f"BANK-FAST-{n}")
        cases.append(case)
    for case in cases:
        st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
        assert st.anomalies == [] and st.ignored_events == [], (st.anomalies, st.ignored_events)
    assert await stack.violations() == []
