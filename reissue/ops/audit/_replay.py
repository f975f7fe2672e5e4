"""Replaying histories against today's (or a candidate's) workflow code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from reissue.workflows import WORKFLOWS

__all__ = ["ReplayOutcome", "load_history_file", "replay"]


@dataclass(frozen=True)
class ReplayOutcome:
    """One history replayed: clean, or where and how today's code diverges from it."""

    source: str
    workflow_id: str
    workflow_type: str
    ok: bool
    error: str = ""
    event_id: int | None = None
    event_type: str | None = None


_DIVERGED_AT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_CORE_MESSAGE = re.compile(r'message: "([^"]*)"')


def _diverged_at(message: str) -> tuple[int | None, str | None]:
    m = _DIVERGED_AT.search(message)
    return (int(m.group(1)), m.group(2)) if m else (None, None)


async def replay(
    histories: Iterable[tuple[str, WorkflowHistory]],
    converter: DataConverter,
    *,
    workflows: Sequence[type] = WORKFLOWS,
) -> list[ReplayOutcome]:
    """Replay each history against the given (by default the current) workflow code."""
    replayer = Replayer(workflows=list(workflows), data_converter=converter)
    outcomes = []
    for source, history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        started = history.events[0].workflow_execution_started_event_attributes
        kind = started.workflow_type.name
        if failure is None:
            outcomes.append(ReplayOutcome(source, history.workflow_id, kind, ok=True))
        else:
            message = str(failure)
            core = _CORE_MESSAGE.search(message)
            event_id, event_type = _diverged_at(message)
            outcomes.append(
                ReplayOutcome(
                    source,
                    history.workflow_id,
                    kind,
                    ok=False,
                    error=core.group(1) if core else message,
                    event_id=event_id,
                    event_type=event_type,
                )
            )
    return outcomes


def load_history_file(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text(encoding="utf-8"))
    started = data["events"][0]
    attrs = started.get("workflowExecutionStartedEventAttributes", {})
    workflow_id = attrs.get("workflowId") or path.stem.removesuffix(".history")
    return WorkflowHistory.from_json(workflow_id, data)
