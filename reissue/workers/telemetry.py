"""The Temporal runtime of this process: core logs through our (masking) logging, and
the SDK's Prometheus metrics on a port when one is configured."""

from __future__ import annotations

import logging
from functools import cache

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

__all__ = ["runtime"]


@cache
def runtime(metrics_address: str | None = None) -> Runtime:
    """One runtime per process. The SDK core writes to stderr on its own unless its
    logs are forwarded; forwarded, they pass the personal-data mask like every line.
    With `metrics_address` (host:port) the SDK serves Prometheus metrics there."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=PrometheusConfig(bind_address=metrics_address) if metrics_address else None,
        )
    )
