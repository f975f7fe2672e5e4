"""Cases that end with a new card in the person's hands."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.worker import Replayer

from reissue.schemas.enums import InsuredCategory, ProductionMode, Stage
from reissue.workflows.case import CardReissueWorkflow
from tests.support import DEFAULT_BALANCE_FEN, EMPLOYER, TEST_CONVERTER, materials
from tests.workflows.harness import FakeStack


async def test_employee_with_unit_standard_production_completes(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(affiliation=EMPLOYER)
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.report_formal is False and st.card_frozen and st.bank_frozen
    assert f.card(app.card_number) == "frozen" and not f.authorised(app.card_number)
    assert f.bank.accounts[app.card_number] == "frozen"
    assert f.report_of(st.case_id).kind == "temporary"

    assert st.loss_report_number is not None
    accepted = await cases.client.submit_materials(case, materials(st.loss_report_number))
    assert accepted.report_formal is True and accepted.stage is Stage.AWAITING_AFFILIATION
    assert f.report_of(st.case_id).kind == "formal"
    assert f.affiliation_requests == [(st.case_id, EMPLOYER["credit_code"])]

    await cases.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await cases.wait_for(case, Stage.UNDER_REVIEW)
    outcome = await cases.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT

    # The order is opened at the payment platform, then the case asks for payment.
    st = await cases.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee is not None and st.fee.amount_fen == 2500 and st.fee.order_id
    assert f.platform.orders[st.fee.order_id].status == "open"
    paid = f.pay_at_platform(st.fee.order_id, ref="BANK-0001")
    await cases.client.confirm_payment(case, paid)  # the platform's webhook
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.awaiting.value == "bureau" and st.production_order_id
    assert f.bureau.orders == {st.production_order_id: "ordered"}
    assert f.productions[st.production_order_id].status == "ordered"

    # The card bureau finishes later, on its own schedule, and reports back.
    new_card = f.next_card_number()
    await cases.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": new_card,
            "produced_at": datetime.now(UTC),
            "card_id_code": "0" * 16 + "ABCDEF0123456789",
        },
    )
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert f.card(new_card) == "inactive_new" and not f.authorised(new_card)
    assert f.cards[new_card].card_id_code == "0" * 16 + "ABCDEF0123456789"
    assert st.new_card_masked is not None and st.new_card_masked.endswith(new_card[-4:])

    await cases.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    result = await cases.result(case)
    assert result.outcome is Stage.COMPLETED

    assert f.card(app.card_number) == "replaced" and f.card(new_card) == "active"
    assert f.authorised(new_card) and not f.authorised(app.card_number)
    # At the bank: the new card has the account, the old card's is closed.
    assert f.bank.accounts[new_card] == "active" and f.bank.accounts[app.card_number] == "closed"
    assert f.cards[new_card].account_id == f.cards[app.card_number].account_id
    assert f.cards[new_card].balance_fen == DEFAULT_BALANCE_FEN
    assert f.report_of(st.case_id).status == "resolved_by_reissue"
    assert [(o.status, o.payment_ref) for o in f.orders_of(st.case_id)] == [("paid", "BANK-0001")]
    assert f.ledger(st.case_id) == [("BANK-0001", "applied", None)]
    assert f.templates(st.case_id) == [
        "card_frozen",
        "report_formal",
        "affiliation_request",
        "payment_requested",
        "ready_for_pickup",
        "completed",
    ]
    assert "医保电子凭证" in f.messages(st.case_id, "card_frozen")[0]  # the e-credential
    final = await cases.status(case)
    assert [e.stage for e in final.timeline] == [
        Stage.LOSS_REPORTED,
        Stage.AWAITING_MATERIALS,
        Stage.AWAITING_AFFILIATION,
        Stage.UNDER_REVIEW,
        Stage.AWAITING_PAYMENT,
        Stage.CARD_PRODUCTION,
        Stage.READY_FOR_PICKUP,
        Stage.COMPLETED,
    ]
    assert final.money.received_fen == final.money.applied_fen == 2500
    assert f.event_types(st.case_id)[-1] == "case_closed"

    # What ran is what the code says: the history replays against the current workflow.
    history = await cases.client.handle(case).fetch_history()
    replayer = Replayer(workflows=[CardReissueWorkflow], data_converter=TEST_CONVERTER)
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
    assert await cases.violations() == []


async def test_resident_fee_exempt_instant_production(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application(category=InsuredCategory.URBAN_RURAL_RESIDENT, channel="counter")
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.report_formal is True  # a counter report is formal from the start
    assert st.loss_report_number is not None
    await cases.client.submit_materials(
        case,
        materials(
            st.loss_report_number,
            category=InsuredCategory.URBAN_RURAL_RESIDENT,
            mode=ProductionMode.INSTANT,
            exemption="minimum_living_allowance",
        ),
    )
    await cases.wait_for(case, Stage.UNDER_REVIEW)  # no unit to ask
    outcome = await cases.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    # The reviewer is answered once the decision is recorded and the fee assessed: no
    # payment, so the card goes to production (printed at once, while the answer travels).
    assert outcome.stage is Stage.CARD_PRODUCTION
    st = await cases.wait_for(case, Stage.READY_FOR_PICKUP)
    assert Stage.CARD_PRODUCTION in [e.stage for e in st.timeline]
    assert st.fee is not None and st.fee.amount_fen == 0
    assert st.fee.exemption == "minimum_living_allowance" and st.fee.order_id is None
    assert f.orders_of(st.case_id) == [] and f.platform.orders == {}
    [order] = f.productions_of(st.case_id)
    assert order.mode is ProductionMode.INSTANT and order.status == "produced"
    new_card = order.new_card_number
    assert new_card and st.new_card_masked and st.new_card_masked.endswith(new_card[-4:])
    assert f.bureau.orders == {}  # printed at the counter, not ordered from the bureau

    await cases.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-02"}
    )
    assert (await cases.result(case)).outcome is Stage.COMPLETED
    assert f.card(app.card_number) == "replaced" and f.card(new_card) == "active"
    assert "fee_waived" in f.templates(st.case_id)
    assert "payment_requested" not in f.templates(st.case_id)
    assert await cases.violations() == []
