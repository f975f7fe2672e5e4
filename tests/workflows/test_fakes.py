"""The fakes stand in for every activity, typed as the real ones; and the promise checker the
fast layer asserts with names each broken promise (so a test that asserts it can fail)."""

from __future__ import annotations

from temporalio import activity

from reissue.schemas.activities import LocalRun, definitions
from reissue.schemas.enums import Stage
from tests.workflows.fakes import FakeSystem, Payment
from tests.workflows.harness import FakeStack


def test_every_activity_has_a_fake_under_its_name_typed_as_the_real_one() -> None:
    registered = {}
    for fn in FakeSystem().activities():
        defn = activity._Definition.must_from_callable(fn)
        assert defn.name is not None and defn.name not in registered, defn.name
        registered[defn.name] = defn
    expected = set()
    for name, real in definitions().items():
        expected.add(name)
        fake = registered[name]
        assert (fake.arg_types, fake.ret_type) == ([real.arg], real.result), name
        if not real.partner:  # run by the workflow as a local activity
            expected.add(real.local_name)
            local = registered[real.local_name]
            assert (local.arg_types, local.ret_type) == ([real.arg], LocalRun), name
    assert set(registered) == expected


async def test_each_broken_promise_is_named(cases: FakeStack) -> None:
    f = cases.fakes
    # A case cancelled after payment, one completed, one still open.
    _, cancelled, report = await cases.open_case()
    await cases.submit(cancelled, report)
    await cases.approve(cancelled)
    await cases.pay(cancelled)
    await cases.wait_for(cancelled, Stage.CARD_PRODUCTION)
    await cases.client.cancel(cancelled, {"operator": "ops-1", "reason": "insured_elsewhere"})
    _, completed, report = await cases.open_case(channel="counter")
    await cases.submit(completed, report, mode="instant")
    await cases.approve(completed, waive_fee=True, waiver_reason="hardship")
    done = await cases.wait_for(completed, Stage.READY_FOR_PICKUP)
    [made] = f.productions_of(done.case_id)
    await cases.client.card_collected(
        completed, {"new_card_number": made.new_card_number, "handed_over_by": "c-1"}
    )
    await cases.result(completed)
    open_app, _, _ = await cases.open_case()
    await cases.result(cancelled)
    assert await cases.violations() == []

    # Then the records are tampered with, as a broken registry would.
    cancelled_id = await cases.case_id(cancelled)
    [order] = f.orders_of(cancelled_id)
    order.status = "paid"  # an early end's fee kept
    f.payments["LOST-1"] = Payment("LOST-1", cancelled_id, "PY0000", 700, "refund", "wrong")
    old_card = f.report_of(done.case_id).card_number
    f.cards[old_card].status = "frozen"  # a replaced card frozen again, by no case
    f.cards[open_app.card_number].status = "active"  # a lost card usable
    f.notices = [n for n in f.notices if n.template != "cancelled"]  # a notice lost

    by_rule: dict[str, set[str]] = {}
    for v in await cases.violations():
        by_rule.setdefault(v.rule, set()).add(v.subject)
    assert by_rule == {
        "a card under an open loss report is unusable": {open_app.card_number},
        "a frozen card is held by an open case": {old_card},
        "every payment is applied or refunded": {"LOST-1"},
        "money received = applied + refunded + refund pending": {cancelled_id},
        "every paid fee of an early end is refunded": {order.order_id},
        "the registry matches the outcome": {done.case_id},
        "history and registry agree": {cancelled_id, done.case_id},
    }
