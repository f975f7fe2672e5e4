"""The payment platform's signed webhook over real HTTP against the real stack: the
order decides which case a payment reaches, and an amount no ledger row can hold is
refused at the edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import Stage
from tests.api.conftest import key_for
from tests.api.test_partner_api import _signed
from tests.support import Stack


async def _awaiting_payment(stack: Stack) -> tuple[str, CaseStatus]:
    _, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee is not None and st.fee.order_id is not None
    return case, st


def _payment(st: CaseStatus, ref: str, **changes: Any) -> dict[str, Any]:
    assert st.fee is not None
    return {
        "order_id": st.fee.order_id,
        "amount_fen": st.fee.amount_fen,
        "payment_ref": ref,
        "paid_at": datetime.now(UTC).isoformat(),
    } | changes


async def _untouched(stack: Stack, case: str, case_id: str) -> None:
    st = await stack.status(case)
    assert st.settled_in(Stage.AWAITING_PAYMENT)
    assert (st.anomalies, st.ignored_events, st.money.received_fen) == ([], [], 0)
    assert await stack.one("SELECT count(*) FROM payments WHERE case_id = $1", case_id) == 0
    assert await stack.one("SELECT count(*) FROM refunds WHERE case_id = $1", case_id) == 0


async def test_a_payment_goes_to_its_orders_case_and_a_body_naming_another_is_refused(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Case Y's order paid, the webhook naming case X: refused naming `case_id`, on Y's
    audit log and told to operations; X never sees it. Delivered to Y, it pays Y's fee."""
    x, x_st = await _awaiting_payment(stack)
    y, y_st = await _awaiting_payment(stack)
    platform = await key_for(stack, "payment_platform")
    payment = _payment(y_st, "PAY-Y-1")

    raw, signed = _signed({"case_id": x, "payment": payment})
    r = await api.post("/v1/payments", content=raw, headers=platform | signed)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "urn:reissue:problem:not-the-orders-case"
    assert problem["errors"] == [
        {"field": "case_id", "rule": "must be the case whose payment order was paid"}
    ]
    [event] = await stack.rows(
        "SELECT actor, detail FROM case_events WHERE case_id = $1"
        " AND event_type = 'payment_misaddressed'",
        y_st.case_id,
    )
    detail = json.loads(event["detail"])
    assert event["actor"] == "payment-platform"
    assert (detail["named_case"], detail["order_id"], detail["payment_ref"]) == (
        x,
        payment["order_id"],
        "PAY-Y-1",
    )
    told = await stack.rows(
        "SELECT template, message FROM notifications WHERE recipient = 'operations'"
        " AND case_id = $1",
        y_st.case_id,
    )
    assert [(t["template"], x in t["message"]) for t in told] == [("payment_misaddressed", True)]
    again = await api.post("/v1/payments", content=raw, headers=platform | signed)
    assert again.status_code == 422  # the same webhook again: refused, told once
    assert (
        len(
            await stack.rows(
                "SELECT 1 FROM case_events WHERE case_id = $1"
                " AND event_type = 'payment_misaddressed'",
                y_st.case_id,
            )
        )
        == 1
    )
    await _untouched(stack, x, x_st.case_id)
    await _untouched(stack, y, y_st.case_id)

    raw, signed = _signed({"case_id": y, "payment": payment})  # to the order's own case
    r = await api.post("/v1/payments", content=raw, headers=platform | signed)
    assert r.status_code == 200, r.text
    paid = await stack.wait_for(y, Stage.CARD_PRODUCTION)
    assert paid.fee is not None and paid.fee.payment_ref == "PAY-Y-1"
    assert paid.anomalies == [] and paid.money.applied_fen == paid.fee.amount_fen
    await _untouched(stack, x, x_st.case_id)


async def test_an_amount_no_ledger_row_can_hold_is_refused_at_the_edge(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """10^20 fen (beyond PostgreSQL's bigint) or 0 fen: 422 naming `payment.amount_fen`,
    nothing reaches the case; the real payment then pays the fee."""
    case, st = await _awaiting_payment(stack)
    platform = await key_for(stack, "payment_platform")
    for amount in (10**20, 0):
        raw, signed = _signed(
            {
                "case_id": case,
                "payment": _payment(st, f"PAY-ABSURD-{amount % 7}", amount_fen=amount),
            }
        )
        r = await api.post("/v1/payments", content=raw, headers=platform | signed)
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert error["field"] == "payment.amount_fen", error
    await _untouched(stack, case, st.case_id)
    raw, signed = _signed({"case_id": case, "payment": _payment(st, "PAY-REAL")})
    r = await api.post("/v1/payments", content=raw, headers=platform | signed)
    assert r.status_code == 200, r.text
    paid = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    assert paid.fee is not None and paid.fee.payment_ref == "PAY-REAL"
