"""The front door's request metrics: counted by route template and status, with their
latency, and nothing a caller sent (no case ID) in a label."""

from __future__ import annotations

import httpx
from prometheus_client import generate_latest

from reissue.api.credentials import create_key
from reissue.api.metrics import RequestMetrics
from reissue.api.server import front_door
from tests.api.conftest import serving
from tests.support import Stack


async def test_requests_are_counted_by_route_and_status(stack: Stack) -> None:
    metrics = RequestMetrics()
    app = front_door(stack.client, stack.pool, stack.settings, tokens=None, metrics=metrics)
    case = stack.client.case_id_for("A12345678")
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "hotline")
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as api:
        assert (await api.get(f"/v1/cases/{case}")).status_code == 401
        r = await api.get(f"/v1/cases/{case}", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 404, r.text
        assert (await api.get("/console/login")).status_code == 200
    scrape = generate_latest(metrics.registry).decode()
    assert (
        'reissue_api_requests_total{method="GET",route="/v1/cases/{case_id}",status="401"} 1.0'
        in scrape
    )
    assert (
        'reissue_api_requests_total{method="GET",route="/v1/cases/{case_id}",status="404"} 1.0'
        in scrape
    )
    assert 'route="/console' in scrape
    assert (
        'reissue_api_request_duration_seconds_count{method="GET",route="/v1/cases/{case_id}"} 2.0'
        in scrape
    )
    assert case not in scrape and key not in scrape
