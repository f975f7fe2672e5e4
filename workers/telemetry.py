"""The Temporal runtime of this process: core logs routed through our (masking) logging."""

from __future__ import annotations

import logging
from functools import cache

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

__all__ = ["runtime"]


@cache
def runtime() -> Runtime:
    """One runtime per process. The SDK core writes to stderr on its own unless its
    logs are forwarded; forwarded, they pass the personal-data mask like every line."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )
