"""Calling an activity from a workflow through its typed definition (`ActivityDef`):
mypy checks the argument and the result of every call against the activity's own."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

from reissue.schemas.activities import ActivityDef, CaseStep

__all__ = ["ATTEMPT_TIMEOUT", "BANK_HEARTBEAT", "BANK_RETRY", "REGISTRY_RETRY", "call"]

In = TypeVar("In", bound=CaseStep)
R = TypeVar("R", bound=BaseModel)

# One attempt of any activity; retries are the retry policy's business.
ATTEMPT_TIMEOUT = timedelta(seconds=30)
# The registry is ours and fast: short attempts, retried until it answers.
REGISTRY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# The bank is someone else's and may be down for hours: back off further. Its calls
# heartbeat, so a worker that dies mid-call is noticed in seconds.
BANK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
)
BANK_HEARTBEAT = timedelta(seconds=5)


async def call(
    activity: ActivityDef[In, R],
    arg: In,
    *,
    retry: RetryPolicy = REGISTRY_RETRY,
    summary: str | None = None,
) -> R:
    heartbeat = BANK_HEARTBEAT if retry is BANK_RETRY else None
    result: R = await workflow.execute_activity(
        activity.name,
        arg,
        result_type=activity.result,
        start_to_close_timeout=ATTEMPT_TIMEOUT,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
        summary=summary,
    )
    return result
