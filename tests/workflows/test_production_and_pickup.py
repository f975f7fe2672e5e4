"""The card bureau's side and the pickup: overdue production, bad reports, failures and
reorders, pickup reminders; the bank down while the case opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from reissue.schemas.enums import AwaitingParty, Stage
from tests.support import eventually
from tests.workflows.harness import FakeStack


async def test_overdue_production_escalates_then_pickup_reminders(cases: FakeStack) -> None:
    f = cases.fakes
    _app, case, report = await cases.open_case(channel="counter")
    policy = cases.policy
    await cases.submit(case, report)
    await cases.approve(case, waive_fee=True, waiver_reason="disaster relief")
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    order = st.production_order_id
    assert order and st.awaiting is AwaitingParty.BUREAU

    await cases.fast_forward(case, policy.production_overdue_after + timedelta(hours=1))
    st = await cases.status(case)
    await cases.notice_sent(st.case_id, "production_overdue")
    assert st.stage is Stage.CARD_PRODUCTION and "production_overdue" in st.flags
    assert [n.recipient for n in f.notices if n.template == "production_overdue"] == ["supervisor"]

    # A report for another order is an anomaly, not progress.
    await cases.client.card_produced(
        case,
        {
            "order_id": "PD20990101999999",
            "new_card_number": "R99999999",
            "produced_at": datetime.now(UTC),
        },
    )
    new_card = f.next_card_number()
    await cases.client.card_produced(
        case, {"order_id": order, "new_card_number": new_card, "produced_at": datetime.now(UTC)}
    )
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.anomalies == ["card_produced for another order PD20990101999999"]
    assert "R99999999" not in f.cards

    await cases.fast_forward(
        case, policy.pickup_reminder_interval * (policy.max_pickup_reminders + 2)
    )
    st = await cases.status(case)
    assert st.stage is Stage.READY_FOR_PICKUP  # an uncollected card waits; it does not lapse
    assert st.reminders_sent == {"pickup": policy.max_pickup_reminders}

    await cases.client.card_collected(
        case, {"new_card_number": "R00000000", "handed_over_by": "counter-01"}
    )
    await cases.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    st = await cases.status(case)
    assert "card_collected names a different card" in st.anomalies
    templates = f.templates(st.case_id)
    assert templates.count("pickup_reminder") == policy.max_pickup_reminders
    assert templates[-1] == "completed"
    assert await cases.violations() == []


async def test_a_card_number_the_registry_refuses_is_an_anomaly_and_a_good_report_follows(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    _, taken = await cases.enrol()  # someone else's card: the number is in use
    _app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.approve(case, waive_fee=True, waiver_reason="hardship")
    order = (await cases.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    await cases.client.card_produced(
        case, {"order_id": order, "new_card_number": taken, "produced_at": _now()}
    )
    st = await cases.until(case, lambda st: bool(st.anomalies))
    assert st.stage is Stage.CARD_PRODUCTION and "already in use" in st.anomalies[0]
    assert f.card(taken) == "active"  # untouched
    new_card = f.next_card_number()
    await cases.client.card_produced(
        case, {"order_id": order, "new_card_number": new_card, "produced_at": _now()}
    )
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.new_card_masked is not None and st.new_card_masked.endswith(new_card[-4:])


async def test_bank_outage_holds_the_case_until_the_bank_answers(cases: FakeStack) -> None:
    f = cases.fakes
    f.bank.down = True
    app = await cases.application()
    case = (await cases.client.report_loss(app)).workflow_id
    handle = cases.client.handle(case)

    async def retried() -> None:
        pending = (await handle.describe()).raw_description.pending_activities
        assert any(
            p.activity_type.name == "freeze_bank_account" and p.attempt >= 2 for p in pending
        )

    await cases.fast_forward(case, timedelta(minutes=1))  # (the retries' backoff is skipped)
    await eventually(retried)
    pending = (await handle.describe()).raw_description.pending_activities
    [failing] = [p for p in pending if p.activity_type.name == "freeze_bank_account"]
    assert "bank: unavailable" in failing.last_failure.message
    st = await cases.status(case)
    assert st.stage is Stage.LOSS_REPORTED and st.bank_frozen is False
    assert f.card(app.card_number) == "frozen"  # the registry did not wait
    assert f.templates(st.case_id) == []  # the notice waits for the bank

    f.bank.down = False
    await cases.fast_forward(case, timedelta(minutes=11))  # the next retry comes
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.bank_frozen is True and f.bank.accounts[app.card_number] == "frozen"
    assert f.templates(st.case_id) == ["card_frozen"]  # late, but out


async def test_failed_production_is_ordered_again_then_the_supervisor_decides(
    cases: FakeStack,
) -> None:
    """Limit one reorder: the first failure is ordered again at once; the second goes to
    a supervisor, who orders again; reports for other orders, and a second report for
    a failed order, change nothing."""
    f = cases.fakes
    await cases.use_policy(max_production_reorders=1)
    _app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.approve(case, waive_fee=True, waiver_reason="disaster relief")
    first = (await cases.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    assert first is not None
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # the bureau has not failed
        await cases.client.reorder_card(case, {"supervisor": "supervisor-01", "reason": "why"})
    assert "allowed only after the bureau failed" in str(refused.value.cause)

    def failed(order: str) -> dict[str, object]:
        return {"order_id": order, "reason": "chip personalisation failed", "failed_at": _now()}

    await cases.client.production_failed(case, failed("PD20990101999999"))  # not its order
    await cases.client.production_failed(case, failed(first))
    second = await _next_order(cases, case, after=first)
    await cases.client.production_failed(case, failed(first))  # again: ignored
    await cases.client.production_failed(case, failed(second))
    st = await cases.until(case, lambda st: "production_failed" in st.flags)
    await cases.notice_sent(st.case_id, "production_failed")
    assert st.awaiting is AwaitingParty.STAFF and st.failed_production_orders == [first, second]
    assert st.anomalies == ["production_failed for another order PD20990101999999"]
    assert st.ignored_events == [f"production_failed in CARD_PRODUCTION: order={first}"]
    # One notice to the supervisor, past the limit (none for the first failure).
    assert [n.recipient for n in f.notices if n.template == "production_failed"] == ["supervisor"]

    await cases.client.reorder_card(
        case, {"supervisor": "supervisor-01", "reason": "the bureau replaced its chip writer"}
    )
    third = await _next_order(cases, case, after=second)
    new_card = f.next_card_number()
    await cases.client.card_produced(
        case, {"order_id": third, "new_card_number": new_card, "produced_at": _now()}
    )
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert "production_failed" not in st.flags
    assert [(o.order_id, o.status) for o in f.productions_of(st.case_id)] == [
        (first, "failed"),
        (second, "failed"),
        (third, "produced"),
    ]
    assert f.bureau.orders == {first: "ordered", second: "ordered", third: "ordered"}
    await cases.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    assert await cases.violations() == []


async def test_an_order_the_bureau_refuses_goes_to_the_supervisor(cases: FakeStack) -> None:
    """A bureau that refuses the order as such is a failed production: with no reorder
    allowed, the supervisor decides at once, and may cancel (the fee refunded)."""
    f = cases.fakes
    await cases.use_policy(max_production_reorders=0)
    f.bureau.refuse = True
    _, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    await cases.pay(case)
    st = await cases.until(case, lambda st: "production_failed" in st.flags)
    assert st.awaiting is AwaitingParty.STAFF and len(st.failed_production_orders) == 1
    [order] = f.productions_of(st.case_id)
    assert order.status == "failed" and (order.failure_reason or "").startswith("refused")
    await cases.client.cancel(case, {"operator": "ops-1", "reason": "card_cannot_be_made"})
    st = await cases.wait_for(case, Stage.CANCELLED)
    assert st.money.refunded_fen == st.money.received_fen == 2500
    assert await cases.violations() == []


async def test_a_report_while_the_case_orders_again_is_judged_against_the_new_order(
    cases: FakeStack,
) -> None:
    """The bureau reports a failure, and then (wrongly) the failed order made, while the
    case is still placing the new order: the report is judged once the new order is
    known — the failed order's card is an anomaly, never the case's new card."""
    f = cases.fakes
    _, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    await cases.approve(case, waive_fee=True, waiver_reason="hardship")
    first = (await cases.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    assert first is not None
    async with cases.holding("order_card_production:2") as held:
        await cases.client.production_failed(
            case, {"order_id": first, "reason": "chip failed", "failed_at": _now()}
        )
        await cases.reached(held)
        made = {"order_id": first, "new_card_number": f.next_card_number(), "produced_at": _now()}
        await cases.client.card_produced(case, made)
    st = await cases.until(case, lambda st: bool(st.anomalies))
    assert st.anomalies == [f"card_produced for failed order {first}"]
    assert st.stage is Stage.CARD_PRODUCTION and st.production_order_id != first
    assert made["new_card_number"] not in f.cards


async def test_a_bureau_that_reports_as_it_answers_the_order_is_heard(cases: FakeStack) -> None:
    """The bureau's report can reach the case before the answer to the order itself: it
    is judged once the case has taken the order in, never ignored."""
    f = cases.fakes
    _, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    async with cases.holding("order_card_production", after=True) as held:
        await cases.pay(case)
        await cases.reached(held)  # the bureau has the order; the answer is on its way
        [order] = f.bureau.orders
        await cases.client.card_produced(
            case,
            {"order_id": order, "new_card_number": f.next_card_number(), "produced_at": _now()},
        )
        st = await cases.status(case)
        assert st.production_order_id is None  # (the case has not heard of the order yet)
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.anomalies == [] and st.ignored_events == []


async def _next_order(cases: FakeStack, case: str, *, after: str) -> str:
    st = await cases.until(
        case,
        lambda st: (
            st.production_order_id not in (None, after) and st.awaiting is AwaitingParty.BUREAU
        ),
    )
    assert st.production_order_id is not None
    return st.production_order_id


def _now() -> str:
    return datetime.now(UTC).isoformat()
