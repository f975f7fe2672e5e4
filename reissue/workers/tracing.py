"""OpenTelemetry traces: from the front door's request through the case's workflow and
activities (Temporal's `TracingInterceptor` carries the context in headers) to each
PostgreSQL transaction an activity runs. Configured from the standard OpenTelemetry
environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, …); without an
endpoint nothing is traced and nothing is added to Temporal calls."""

from __future__ import annotations

import os
from functools import cache

from opentelemetry import trace
from temporalio.contrib.opentelemetry import TracingInterceptor

__all__ = ["configure_tracing", "tracing_enabled", "tracing_interceptors"]


def tracing_enabled() -> bool:
    """Whether this process exports traces (an OTLP endpoint is configured)."""
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@cache
def configure_tracing(service: str) -> bool:
    """Install the OTLP exporter for this process, once; False when not configured."""
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", f"card-reissue-{service}")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def tracing_interceptors(enabled: bool) -> list[TracingInterceptor]:
    """Temporal's tracing interceptor (client and worker side) when tracing is on."""
    return [TracingInterceptor()] if enabled else []
