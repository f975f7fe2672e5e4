"""A poison payment — one no ledger row can hold — is an anomaly the case records, not a
step retried for ever with the money gate held: the real payment still pays the fee."""

from __future__ import annotations

from datetime import UTC, datetime

from reissue.schemas.enums import Stage
from tests.workflows.harness import FakeStack


async def test_a_payment_no_ledger_can_hold_is_an_anomaly_and_the_real_one_still_pays(
    cases: FakeStack,
) -> None:
    f = cases.fakes
    case, order = await cases.awaiting_payment()
    pay = {"order_id": order, "paid_at": datetime.now(UTC)}
    await cases.client.confirm_payment(
        case, pay | {"payment_ref": "P-POISON", "amount_fen": 10**20}
    )
    st = await cases.until(case, lambda st: any("P-POISON" in a for a in st.anomalies))
    assert "payment_conflict" in st.flags  # operations check it with the platform
    [anomaly] = [a for a in st.anomalies if "P-POISON" in a]
    assert "not recorded" in anomaly and "conflicts" not in anomaly
    await cases.client.confirm_payment(case, pay | {"payment_ref": "P-REAL", "amount_fen": 2500})
    st = await cases.wait_for(case, Stage.CARD_PRODUCTION)
    assert st.fee is not None and st.fee.payment_ref == "P-REAL"
    assert (st.money.received_fen, st.money.applied_fen, st.money.refund_pending_fen) == (
        2500,
        2500,
        0,
    )
    assert f.ledger(st.case_id) == [("P-REAL", "applied", None)]
    [refused] = f.events_of(st.case_id, "payment_unrecordable")
    assert refused.detail["amount_fen"] == str(10**20)
    assert [n.template for n in f.notices if n.recipient == "operations"] == [
        "payment_unrecordable"
    ]
    assert await cases.violations() == []
