"""The bank down for six hours (time-skipped), then back: the registry's freeze does not
wait for it, operations see the stuck bank freeze, the freeze notice goes out late but
goes out, the case continues, and the invariants hold."""

from __future__ import annotations

from datetime import timedelta

from reissue.schemas.enums import Stage
from tests.support import Stack


async def test_six_hours_without_the_bank(stack: Stack) -> None:
    await stack.bank_knobs(down=True)
    app = await stack.application()
    case = (await stack.client.report_loss(app)).workflow_id
    await stack.pending(case, "freeze_bank_account")
    await stack.fast_forward(case, timedelta(hours=6))

    # What operations see: the case held at its first stage, the bank freeze pending
    # with its attempts and the bank's failure (the Web UI shows the same).
    desc = await stack.client.handle(case).describe()
    stuck = [
        p
        for p in desc.raw_description.pending_activities
        if p.activity_type.name == "freeze_bank_account"
    ]
    assert len(stuck) == 1 and stuck[0].attempt >= 5, stuck
    assert "bank: unavailable" in stuck[0].last_failure.message
    st = await stack.status(case)
    assert st.stage is Stage.LOSS_REPORTED and not st.bank_frozen
    assert await stack.card_status(app.card_number) == "frozen"  # the registry did not wait
    assert not await stack.authorised(app.card_number)  # no fraudulent use meanwhile
    assert await stack.templates(st.case_id) == []  # the notice waits for the bank

    await stack.bank_knobs(down=False)
    await stack.fast_forward(case, timedelta(minutes=11))  # the next retry comes
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS, timeout=60)
    assert st.bank_frozen and await stack.bank_status(app.card_number) == "frozen"
    assert await stack.templates(st.case_id) == ["card_frozen"]  # late, but out
    assert await stack.violations() == []
