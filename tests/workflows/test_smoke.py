from __future__ import annotations

from datetime import UTC, datetime

from schemas.enums import Stage
from tests.support import Stack, materials


async def test_smoke(stack: Stack) -> None:
    app = await stack.application()
    ref = await stack.client.report_loss(app)
    st = await stack.wait_for(ref.workflow_id, Stage.AWAITING_MATERIALS)
    print(st)
    assert st.loss_report_number
    acc = await stack.client.submit_materials(ref.workflow_id, materials(st.loss_report_number))
    print(acc)
    await stack.wait_for(ref.workflow_id, Stage.UNDER_REVIEW)
    out = await stack.client.review(ref.workflow_id, {"reviewer": "rev-1", "verdict": "approve"})
    print(out)
    st = await stack.status(ref.workflow_id)
    assert st.fee and st.fee.order_id
    await stack.client.confirm_payment(ref.workflow_id, {
        "order_id": st.fee.order_id, "amount_fen": st.fee.amount_fen, "payment_ref": "PAY-1",
        "paid_at": datetime.now(UTC)})
    st = await stack.wait_for(ref.workflow_id, Stage.CARD_PRODUCTION)
    print(st)
