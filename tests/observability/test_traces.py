"""One trace from the front door through the case's workflow and its activities down to
PostgreSQL: what an operator sees for a loss reported through the partner API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from reissue.api.credentials import create_key
from reissue.api.server import front_door
from reissue.schemas.enums import Stage
from reissue.workers.tracing import tracing_interceptors
from tests.api.conftest import serving
from tests.support import TEST_CONVERTER, Stack, eventually

_EXPORTER = InMemorySpanExporter()


def _provider() -> None:
    """The process's tracer provider, exporting to memory (set once per process)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


@pytest.fixture
async def traced(stack: Stack) -> AsyncIterator[Stack]:
    _provider()
    _EXPORTER.clear()
    client = await Client.connect(
        stack.env.client.service_client.config.target_host,
        data_converter=TEST_CONVERTER,
        interceptors=tracing_interceptors(True),
    )
    try:
        async with stack.another_worker("t", client=client) as traced:
            yield traced
    finally:
        _EXPORTER.clear()


async def test_a_loss_reported_through_the_front_door_is_one_trace(traced: Stack) -> None:
    stack = traced
    app = await stack.application()
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "hotline")
    door = front_door(stack.client, stack.pool, stack.settings, tokens=None)
    async with serving(door) as base, httpx.AsyncClient(base_url=base, timeout=60) as api:
        r = await api.post(
            "/v1/cases",
            json=app.model_dump(mode="json"),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code in (200, 201), r.text
    case = (
        r.json()["case_id"] if "case_id" in r.json() else stack.client.case_id_for(app.card_number)
    )
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)

    async def traced_to_the_end() -> tuple[list[Any], set[str]]:
        """The request's trace, once the spans of the steps that opened the case ended."""
        spans = list(_EXPORTER.get_finished_spans())
        (request,) = [s for s in spans if s.name == "POST /v1/cases" and s.parent is None]
        in_trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
        names = {s.name for s in in_trace}
        assert "RunActivity:notify.local" in names, sorted(names)  # the last step's span
        return in_trace, names

    in_trace, names = await eventually(traced_to_the_end)
    assert "StartUpdateWithStartWorkflow:CardReissueWorkflow" in names, sorted(names)
    assert "RunWorkflow:CardReissueWorkflow" in names, sorted(names)
    # Steps on our registry run as local activities; the bank's call as an activity.
    for step in ("register_loss.local", "freeze_card.local", "freeze_bank_account"):
        assert f"RunActivity:{step}" in names, (step, sorted(names))
    # PostgreSQL under the activity that ran the transaction.
    by_id = {s.context.span_id: s for s in in_trace}
    (db,) = [s for s in in_trace if s.name == "postgresql register_loss"]
    assert (
        db.parent is not None and by_id[db.parent.span_id].name == "RunActivity:register_loss.local"
    )
    # Nothing personal in span names or attributes.
    text = repr([(s.name, dict(s.attributes or {})) for s in in_trace])
    assert app.applicant.resident_id not in text and app.card_number not in text
