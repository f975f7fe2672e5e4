"""Request metrics of the front door (Prometheus): requests by method, route template
and status, and their latency. Labels carry the route's template
(`/v1/cases/{case_id}`), never a case ID or anything a caller sent. (Trace spans of
requests are FastAPI's own, through the OpenTelemetry API.)"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["RequestMetrics"]


def _route(request: Request) -> str:
    """The route's template, under the mount it was found in (`/console`)."""
    template = getattr(request.scope.get("route"), "path", None)
    return request.scope.get("root_path", "") + template if template else "unmatched"


class RequestMetrics:
    """The front door's instruments, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reissue_api_requests",
            "HTTP requests to the front door",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reissue_api_request_duration_seconds",
            "Time the front door took to answer",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def install(self, app: FastAPI) -> None:
        """Count every request `app` answers (the console mounted in it too)."""

        @app.middleware("http")
        async def measure(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                route = _route(request)
                self.requests.labels(request.method, route, str(status)).inc()
                self.latency.labels(request.method, route).observe(time.perf_counter() - started)
