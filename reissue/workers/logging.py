"""Logging: structlog for our code and Temporal's, one line per event, the case on every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from reissue.schemas.identifiers import mask_personal_text

__all__ = ["CaseLogInterceptor", "configure_logging", "mask_personal_data", "mask_text"]

# Values under these keys are masked whole; `name=...` wherever it stands.
_NAMED = re.compile(
    r"""((?:["']?)(?:name|applicant_name|full_name)["']?\s*[:=]\s*["']?)([^"',}\s]+)""",
    re.IGNORECASE,
)
_PERSONAL_KEYS = frozenset(
    {
        "name",
        "applicant",
        "applicant_name",
        "full_name",
        "resident_id",
        "id_number",
        "mobile",
        "phone",
    }
)


def mask_text(text: str) -> str:
    """The text with resident ID numbers and mobile numbers masked as everywhere else
    (`identifiers.mask_personal_text`), and `name=...` values."""
    return _NAMED.sub(lambda m: f"{m.group(1)}***", mask_personal_text(text))


def mask_personal_data(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no resident ID, phone number or name leaves in a log line."""
    for key, value in list(event.items()):
        if key.lower() in _PERSONAL_KEYS:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = mask_text(value)
        elif value is not None and not isinstance(value, (int, float, bool)):
            event[key] = mask_text(str(value))
    return event


def configure_logging(
    *,
    fmt: str = "auto",
    level: int = logging.INFO,
    stream: IO[str] | None = None,
    cache_loggers: bool = True,
) -> None:
    """Console output on a terminal, JSON otherwise (or as `fmt` says), personal data masked."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Tests that reconfigure logging turn caching off; services keep it on.
        cache_logger_on_first_use=cache_loggers,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_personal_data,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Keep Temporal's own loggers (workflow.logger, activity.logger) flowing through here.
    logging.getLogger("temporalio").disabled = False
    # HTTP clients log every request line, and partner URLs name cards: not at INFO.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            case_id=info.workflow_id,
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


class CaseLogInterceptor(Interceptor):
    """Binds the case, run and activity to every log line an activity writes."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)
