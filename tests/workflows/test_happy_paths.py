"""Cases that end with a new card in the person's hands."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from structlog.testing import LogCapture
from temporalio.worker import Replayer

from reissue.schemas.enums import InsuredCategory, ProductionMode, Stage
from reissue.workflows.case import CardReissueWorkflow
from tests.support import DEFAULT_BALANCE_FEN, TEST_CONVERTER, Stack, materials

EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}


async def test_employee_with_unit_standard_production_completes(stack: Stack) -> None:
    logs = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, logs])
    try:
        await _employee_case(stack, logs)
    finally:
        structlog.reset_defaults()


async def _employee_case(stack: Stack, logs: LogCapture) -> None:
    app = await stack.application(affiliation=EMPLOYER)
    ref = await stack.client.report_loss(app)
    case = ref.workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.report_formal is False and st.card_frozen and st.bank_frozen
    assert await stack.card_status(app.card_number) == "frozen"
    assert await stack.bank_status(app.card_number) == "frozen"

    assert st.loss_report_number is not None
    accepted = await stack.client.submit_materials(case, materials(st.loss_report_number))
    assert accepted.report_formal is True
    st = await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    assert (
        await stack.one("SELECT org_code FROM affiliation_requests WHERE case_id = $1", st.case_id)
        == EMPLOYER["credit_code"]
    )

    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    outcome = await stack.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT

    # (The order is opened at the payment platform, then the case asks for payment.)
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st.fee is not None and st.fee.amount_fen == 2500 and st.fee.order_id
    await stack.client.confirm_payment(
        case,
        {
            "order_id": st.fee.order_id,
            "amount_fen": 2500,
            "payment_ref": "BANK-0001",
            "paid_at": datetime.now(UTC),
        },
    )
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.awaiting.value == "bureau" and st.production_order_id
    assert (
        await stack.one(
            "SELECT status FROM production_orders WHERE order_id = $1", st.production_order_id
        )
        == "ordered"
    )

    # The card bureau finishes later, on its own schedule, and reports back.
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": new_card,
            "produced_at": datetime.now(UTC),
            "card_id_code": "0" * 16 + "ABCDEF0123456789",
        },
    )
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert await stack.card_status(new_card) == "inactive_new"
    assert (
        await stack.one("SELECT card_id_code FROM cards WHERE card_number = $1", new_card)
        == "0" * 16 + "ABCDEF0123456789"
    )  # as the bureau wrote it on the chip

    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    result = await stack.client.result(case)
    assert result.outcome is Stage.COMPLETED

    assert await stack.card_status(app.card_number) == "replaced"
    assert await stack.card_status(new_card) == "active"
    # At the bank: the new card has the account, the old card's is closed.
    assert await stack.bank_status(new_card) == "active"
    assert await stack.bank_status(app.card_number) == "closed"
    assert await stack.one("SELECT bank FROM cards WHERE card_number = $1", new_card) == (
        "Test Bank"
    )
    accounts = await stack.rows(
        "SELECT account_id FROM cards WHERE card_number = ANY($1::text[])",
        [app.card_number, new_card],
    )
    assert len({r["account_id"] for r in accounts}) == 1
    assert (
        await stack.one(
            "SELECT balance_fen FROM insured_accounts WHERE account_id = $1",
            accounts[0]["account_id"],
        )
        == DEFAULT_BALANCE_FEN
    )
    assert (
        await stack.one("SELECT status FROM loss_reports WHERE case_id = $1", st.case_id)
        == "resolved_by_reissue"
    )
    assert (
        await stack.one("SELECT status FROM payment_orders WHERE case_id = $1", st.case_id)
        == "paid"
    )
    assert await stack.templates(st.case_id) == [
        "card_frozen",
        "report_formal",
        "affiliation_request",
        "payment_requested",
        "ready_for_pickup",
        "completed",
    ]
    frozen_msg = (await stack.messages(st.case_id, "card_frozen"))[0]
    assert "医保电子凭证" in frozen_msg  # the e-credential meanwhile
    final = await stack.status(case)
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

    # Every activity's log lines name the case.
    steps = [e for e in logs.entries if e["event"].startswith("step ")]
    assert len(steps) >= 15
    assert all(e["case_id"] == case and e["activity"] for e in steps)

    # What ran is what the code says: the history replays against the current workflow.
    history = await stack.client.handle(case).fetch_history()
    replayer = Replayer(workflows=[CardReissueWorkflow], data_converter=TEST_CONVERTER)
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None


async def test_resident_fee_exempt_instant_production(stack: Stack) -> None:
    app = await stack.application(category=InsuredCategory.URBAN_RURAL_RESIDENT, channel="counter")
    ref = await stack.client.report_loss(app)
    case = ref.workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.report_formal is True  # a counter report is formal from the start
    assert st.loss_report_number is not None
    await stack.client.submit_materials(
        case,
        materials(
            st.loss_report_number,
            category=InsuredCategory.URBAN_RURAL_RESIDENT,
            mode=ProductionMode.INSTANT,
            exemption="minimum_living_allowance",
        ),
    )
    await stack.wait_for(case, Stage.UNDER_REVIEW)  # no unit to ask
    outcome = await stack.client.review(case, {"reviewer": "rev-01", "verdict": "approve"})
    # The reviewer is answered once the decision is recorded and the fee assessed: no
    # payment, so the card goes to production (printed at once, while the answer travels).
    assert outcome.stage is Stage.CARD_PRODUCTION
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert Stage.CARD_PRODUCTION in [e.stage for e in st.timeline]
    assert st.fee is not None and st.fee.amount_fen == 0
    assert st.fee.exemption == "minimum_living_allowance" and st.fee.order_id is None
    assert (
        await stack.one("SELECT count(*) FROM payment_orders WHERE case_id = $1", st.case_id) == 0
    )
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1 AND mode = 'instant'",
        st.case_id,
    )
    assert new_card and st.new_card_masked and st.new_card_masked.endswith(new_card[-4:])
    code = await stack.one("SELECT card_id_code FROM cards WHERE card_number = $1", new_card)
    assert code is not None and len(code) == 32  # printed at the counter with the card

    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-02"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    assert await stack.card_status(app.card_number) == "replaced"
    assert await stack.card_status(new_card) == "active"
    assert "fee_waived" in await stack.templates(st.case_id)
    assert "payment_requested" not in await stack.templates(st.case_id)
