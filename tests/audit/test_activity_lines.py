"""Each activity says what it did on a case's timeline (`reissue.schemas.timeline`), or
says where it is defined that the timeline does not show it; no name is matched as text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType

from reissue.ops.audit import build_timeline, load_history_file
from reissue.schemas import activities
from reissue.schemas.activities import FREEZE_BANK_ACCOUNT, ActivityDef, CaseStep, Done, definitions
from reissue.schemas.timeline import described
from tests.support import TEST_CONVERTER

CORPUS = Path(__file__).resolve().parents[1] / "histories"


def _defined() -> list[ActivityDef[Any, Any]]:
    return [d for d in vars(activities).values() if isinstance(d, ActivityDef)]


def _undecided(defined: Iterable[ActivityDef[Any, Any]]) -> list[str]:
    told = described()
    return sorted(
        f"{d.name}: no line in reissue/schemas/timeline.py, and not on_timeline=False"
        if d.on_timeline
        else f"{d.name}: on_timeline=False, yet it has a line"
        for d in defined
        if (d in told) != d.on_timeline
    )


def test_every_activity_decides_whether_the_timeline_shows_it() -> None:
    assert _undecided(_defined()) == []


def test_a_new_activity_that_has_not_decided_would_be_found() -> None:
    new = ActivityDef("new_step", CaseStep, Done)
    quiet = ActivityDef("quiet_step", CaseStep, Done, on_timeline=False)
    assert _undecided([*_defined(), new, quiet]) == [
        "new_step: no line in reissue/schemas/timeline.py, and not on_timeline=False"
    ]


def test_the_registry_holds_every_activity_by_its_name() -> None:
    defined = _defined()
    assert set(definitions()) == {d.name for d in defined}
    for d in defined:
        # (a second definition under a name is an older reading of the same activity)
        assert definitions()[d.name] is next(e for e in defined if e.name == d.name)


async def test_every_step_of_the_corpus_reads_as_its_definition() -> None:
    """With the key, every step a recorded case completed is told as its definition
    says: none is unknown, none unreadable (but a step recorded as an older reading of
    its activity, which today's definition no longer reads)."""
    readings = Counter(d.name for d in _defined())
    unread = []
    for path in sorted(CORPUS.rglob("*.json")):
        timeline = await build_timeline(load_history_file(path), TEST_CONVERTER)
        unread += [
            f"{path.parent.name}/{path.name}: {e.what}: {e.detail}"
            for e in timeline.entries
            if e.what.startswith("Activity ")
            and e.what.endswith(" completed")
            and readings[e.what.split()[1]] < 2
        ]
    assert unread == []


async def test_a_renamed_activity_still_shows_on_the_timeline() -> None:
    """A step whose name this code no longer defines is shown as done, never dropped."""
    history = load_history_file(
        CORPUS / "1.0.0" / "employee_with_unit_standard_production_completes.json"
    )
    renamed = 0
    for ev in history.events:
        scheduled = ev.activity_task_scheduled_event_attributes
        if (
            ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and scheduled.activity_type.name == FREEZE_BANK_ACCOUNT.name
        ):
            scheduled.activity_type.name = "freeze_the_bank_account"
            renamed += 1
    assert renamed == 1
    entries = (await build_timeline(history, TEST_CONVERTER)).entries
    assert [(e.actor, e.what, e.detail) for e in entries if "bank" in e.what.lower()] == [
        ("?", "Activity freeze_the_bank_account completed", "not an activity of this version")
    ]
