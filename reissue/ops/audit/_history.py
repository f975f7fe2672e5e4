"""Reading a case's history: payloads decoded (when the key is at hand), the steps it
completed, each as its definition types it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

from reissue.schemas.activities import ActivityDef, CaseStep

__all__ = ["LOCAL_ACTIVITY_MARKER", "HistoryReader", "typed"]

In = TypeVar("In", bound=CaseStep)
Out = TypeVar("Out", bound=BaseModel)

# The marker a local activity leaves in the history (recorded by the SDK's core).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


class HistoryReader:
    """Reads a case's history event by event: payloads decoded (when the key is at hand),
    the steps it completed (`step`)."""

    def __init__(self, converter: DataConverter) -> None:
        self._converter = converter
        self._scheduled: dict[int, tuple[str, Any]] = {}

    async def one(self, payloads: Sequence[Payload]) -> Any:
        """The first payload as plain JSON data, or None when it cannot be decoded."""
        if not payloads:
            return None
        try:
            values = await self._converter.decode(list(payloads), [dict[str, Any]])
        except Exception:  # encrypted without the key, or not JSON: the entry says so
            return None
        return values[0] if values else None

    async def step(self, ev: HistoryEvent) -> tuple[str, Any, Any] | None:
        """(activity, input, result) when `ev` completes a step: an activity's completion
        (its input from the scheduled event, seen earlier) or a local activity's marker
        (`LocalRun`: both in its result). None for every other event."""
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = ev.activity_task_scheduled_event_attributes
            self._scheduled[ev.event_id] = (a.activity_type.name, await self.one(a.input.payloads))
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = ev.activity_task_completed_event_attributes
            kind, arg = self._scheduled.get(done.scheduled_event_id, ("?", None))
            return kind, arg, await self.one(done.result.payloads)
        elif (
            ev.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and ev.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            details = ev.marker_recorded_event_attributes.details
            if "result" not in details:  # a failed attempt: nothing was done
                return None
            data = await self.one(details["data"].payloads) or {}
            run = await self.one(details["result"].payloads)
            kind = str(data.get("activity_type", "?")).removesuffix(".local")
            if isinstance(run, dict):
                return kind, run.get("arg"), run.get("result")
            return kind, None, None
        return None

    def scheduled(self, event_id: int) -> str:
        """The activity scheduled by event `event_id`."""
        return self._scheduled.get(event_id, ("?", None))[0]

    async def text(self, payload: Payload) -> str | None:
        """A summary string (user metadata), or None when it cannot be decoded."""
        try:
            values = await self._converter.decode([payload], [str])
        except Exception:  # encrypted without the key
            return None
        return str(values[0]) if values else None


def typed(activity: ActivityDef[In, Out], arg: Any, result: Any) -> tuple[In, Out] | None:
    """A step's input and result as `activity` types them; None when the history's
    payloads cannot be read (encrypted without the key) or no longer fit the definition."""
    try:
        return activity.arg.model_validate(arg), activity.result.model_validate(result)
    except ValidationError:
        return None
