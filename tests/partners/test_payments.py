"""Refunds really call the payment platform: a refund whose answer is lost, or that
times out, is repeated with the same refund ID and happens exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from reissue.activities.partners import HttpPaymentPlatform
from reissue.schemas.enums import Stage
from reissue.schemas.errors import PARTNER_UNAVAILABLE
from tests.partners.conftest import Simulator
from tests.support import Stack


@pytest.fixture
async def platform(simulator: Callable[..., Awaitable[Simulator]]) -> Simulator:
    return await simulator("payments")


@pytest.fixture
async def paying(stack: Stack, platform: Simulator) -> AsyncIterator[Stack]:
    """The stack with a second worker whose refunds go to the payment platform."""
    async with stack.another_worker("pp", payment_platform_url=platform.url) as paying:
        yield paying


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
        stack.client.cancel(case, {"operator": "ops-1", "reason": "applicant withdrew"})
    )
    await stack.pending(case, "refund_payment")
    for _ in range(100):
        if len(await platform.get("/_refunds")) == 1:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # at least one more try meets the same lost answer
    await platform.knobs(lost_answer_rate=0.0)
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
    await asyncio.sleep(1.5)  # the platform finishes what it was asked
    await platform.knobs(latency_ms=0)
    ref = await slow.refund(refund_id="RF-1", payment_ref="BANK-T", amount_fen=2500)
    again = await slow.refund(refund_id="RF-1", payment_ref="BANK-T", amount_fen=2500)
    assert ref == again
    assert [r["refund_id"] for r in await platform.get("/_refunds")] == ["RF-1"]
    # The same refund ID for another refund is refused as such, not retried.
    with pytest.raises(ApplicationError) as refused:
        await slow.refund(refund_id="RF-1", payment_ref="BANK-X", amount_fen=1)
    assert refused.value.non_retryable
