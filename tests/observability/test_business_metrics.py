"""Business metrics from the workflow, as the worker's Prometheus endpoint serves them:
one case counted once, however often it is replayed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from reissue.devtools.simulators import free_port
from reissue.schemas.enums import Stage
from tests.support import TEST_CONVERTER, Stack


@pytest.fixture
async def measured(stack: Stack) -> AsyncIterator[tuple[Stack, str]]:
    """A worker whose SDK serves Prometheus metrics, and that keeps no workflow in its
    cache: every workflow task replays the case's history from the start."""
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    client = await Client.connect(
        stack.env.client.service_client.config.target_host,
        data_converter=TEST_CONVERTER,
        runtime=runtime,
    )
    async with stack.another_worker("m", client=client, max_cached_workflows=0) as measured:
        yield measured, f"http://127.0.0.1:{port}/metrics"


def _value(scrape: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include these."""
    total = 0.0
    for line in scrape.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


async def test_a_completed_case_is_counted_once_with_its_stage_times(
    measured: tuple[Stack, str],
) -> None:
    stack, metrics = measured
    _app, case, report = await stack.open_case(channel="counter", district="500112")
    await stack.submit(case, report, mode="instant")
    await stack.approve(case)
    await stack.pay(case)
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    assert st.new_card_masked is not None
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-02"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED

    async with httpx.AsyncClient() as http:
        scrape = (await http.get(metrics)).text
    assert _value(scrape, "reissue_cases_opened", district="500112", channel="counter") == 1
    assert _value(scrape, "reissue_cases_closed", outcome="COMPLETED", district="500112") == 1
    for stage in ("LOSS_REPORTED", "AWAITING_MATERIALS", "UNDER_REVIEW", "AWAITING_PAYMENT"):
        assert _value(scrape, "reissue_stage_duration_count", stage=stage) == 1, stage
    # The worker replayed the case's history on its tasks (no cache): counted once all
    # the same, as the SDK emits nothing from a workflow while it replays.
    assert _value(scrape, "temporal_workflow_task_replay_latency_count") > 0
